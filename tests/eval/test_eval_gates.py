"""Gates: thresholds read with clear errors, applied both ways (lab_ci.eval.gates)."""

from __future__ import annotations

import pytest

from lab_ci.eval.gates import GateConfigError, Gates, MetricGates, apply_gates


def leaf(path, delta, ci, role="changed", status="evaluated", base=0.5):
    return {
        "leaf": path,
        "role": role,
        "status": status,
        "n": 10,
        "baseline": base,
        "candidate": None if delta is None else base + delta,
        "delta": delta,
        "ci": ci,
        "reason": "" if status == "evaluated" else "the teacher wrote no usable multiple-choice question",
    }


def results(knowledge_leaves=(), skill_leaves=(), guard=None, changed=None):
    return {
        "knowledge": {"leaves": list(knowledge_leaves), "changed": changed or {}, "guard": {}},
        "skills": {"leaves": list(skill_leaves), "changed": {}, "guard": guard or {}},
    }


def test_no_gates_pass_and_say_nothing_was_checked():
    out = apply_gates(results([leaf("k/a", -0.9, [-1, -0.8])]), Gates())
    assert out.passed and out.checks == () and not out.to_dict()["active"]


def test_changed_leaf_drop_fails_with_a_reason_naming_leaf_values_and_gate():
    gates = Gates(knowledge=MetricGates(max_leaf_drop=0.1))
    r = results([leaf("knowledge/a/qna.yaml", -0.3, [-0.5, -0.1]), leaf("knowledge/b/qna.yaml", -0.05, [-0.2, 0.1])])
    out = apply_gates(r, gates)
    assert not out.passed
    [fail] = out.failures
    assert fail.subject == "knowledge/a/qna.yaml" and fail.gate == "knowledge.max_leaf_drop"
    assert "knowledge/a/qna.yaml" in fail.message and "0.20 vs 0.50" in fail.message
    assert "-0.30" in fail.message and "-0.50 to -0.10" in fail.message and "more than 0.1" in fail.message
    assert len(out.checks) == 2 and out.checks[1].passed  # b is within 0.1


def test_rules_use_the_interval_leniently_or_strictly():
    r = results([leaf("k/a", -0.2, [-0.45, 0.05])])  # point estimate past -0.1, interval spans it
    mg = MetricGates(max_leaf_drop=0.1)
    assert not apply_gates(r, Gates(knowledge=mg)).passed  # estimate
    assert apply_gates(r, Gates(knowledge=mg, rule="lenient")).passed  # not certainly worse
    r2 = results([leaf("k/a", 0.0, [-0.15, 0.15])])
    assert apply_gates(r2, Gates(knowledge=mg)).passed
    assert not apply_gates(r2, Gates(knowledge=mg, rule="strict")).passed  # not certainly within


def test_guard_and_changed_mean_gates_both_ways():
    gates = Gates(skills=MetricGates(max_guard_drop=0.5, min_changed_gain=0.0))
    skill_leaves = [leaf("s/a", 1.0, [0.5, 1.5]), leaf("s/g", -1.0, [-2, 0], role="guard")]
    bad = results(skill_leaves=skill_leaves, guard={"delta": -1.0, "ci": [-2, 0], "candidate": 4, "baseline": 5})
    bad["skills"]["changed"] = {"delta": 1.0, "ci": [0.5, 1.5], "candidate": 6, "baseline": 5}
    out = apply_gates(bad, gates)
    assert [f.gate for f in out.failures] == ["skills.max_guard_drop"]
    assert "regression guard" in out.failures[0].message and "dropped by more than 0.5" in out.failures[0].message
    good = results(skill_leaves=skill_leaves, guard={"delta": -0.2, "ci": [-0.6, 0.2], "candidate": 5, "baseline": 5.2})
    good["skills"]["changed"] = {"delta": 1.0, "ci": [0.5, 1.5], "candidate": 6, "baseline": 5}
    assert apply_gates(good, gates).passed
    good["skills"]["changed"]["delta"] = -0.1
    assert [f.gate for f in apply_gates(good, gates).failures] == ["skills.min_changed_gain"]


def test_unevaluated_changed_leaf_fails_unless_told_to_pass():
    r = results([leaf("k/a", None, None, status="unevaluated")])
    out = apply_gates(r, Gates(knowledge=MetricGates(max_leaf_drop=0.1)))
    assert not out.passed and "not evaluated" in out.failures[0].message
    assert "no usable multiple-choice question" in out.failures[0].message
    assert apply_gates(r, Gates(knowledge=MetricGates(max_leaf_drop=0.1), unevaluated="pass")).passed
    # a guard gate with no guard leaves sampled has nothing to compare: it passes, saying so
    out = apply_gates(results(), Gates(skills=MetricGates(max_guard_drop=0.5)))
    assert out.passed and "nothing to compare" in out.checks[0].message


def test_config_is_read_from_the_lab_ci_yaml_shape_with_keyed_errors():
    g = Gates.from_dict({"rule": "lenient", "knowledge": {"max_leaf_drop": 0.1}, "skills": {"max_guard_drop": 1}})
    assert g.rule == "lenient" and g.knowledge.max_leaf_drop == 0.1 and g.skills.max_guard_drop == 1.0
    assert Gates.from_dict(g.to_dict()) == g
    assert Gates.from_dict(None) == Gates() and not Gates().active
    cases = [
        ({"knowledge": {"max_drop": 0.1}}, "eval.gates.knowledge.max_drop", "unknown key"),
        ({"knowledge": {"max_leaf_drop": "x"}}, "eval.gates.knowledge.max_leaf_drop", "must be a number"),
        ({"knowledge": {"max_leaf_drop": True}}, "eval.gates.knowledge.max_leaf_drop", "must be a number"),
        ({"knowledge": {"max_leaf_drop": 2}}, "eval.gates.knowledge.max_leaf_drop", "between 0 and 1"),
        ({"skills": {"max_leaf_drop": -1}}, "eval.gates.skills.max_leaf_drop", "between 0 and 9"),
        ({"rule": "loose"}, "eval.gates.rule", "must be one of estimate, lenient, strict"),
        ({"unevaluated": "skip"}, "eval.gates.unevaluated", "must be one of fail, pass"),
        ({"knowledge": [1]}, "eval.gates.knowledge", "must be a mapping"),
        ({"speed": {}}, "eval.gates.speed", "unknown key"),
        ([], "eval.gates", "must be a mapping"),
    ]
    for data, key, msg in cases:
        with pytest.raises(GateConfigError) as e:
            Gates.from_dict(data, "eval.gates.")
        assert e.value.key == key and msg in str(e.value), (data, str(e.value))


def test_assignments_from_the_command_line():
    g = Gates.from_assignments(["knowledge.max_leaf_drop=0.2", "rule=strict"])
    assert g.knowledge.max_leaf_drop == 0.2 and g.rule == "strict"
    g2 = Gates.from_assignments(["skills.max_guard_drop=0.5"], g)
    assert g2.knowledge.max_leaf_drop == 0.2 and g2.skills.max_guard_drop == 0.5
    for bad, key in (
        ("knowledge.max_leaf_drop", "knowledge.max_leaf_drop"),
        ("x.y=1", "x.y"),
        ("skills.max_leaf_drop=a", "skills.max_leaf_drop"),
    ):
        with pytest.raises(GateConfigError) as e:
            Gates.from_assignments([bad])
        assert key in str(e.value)
