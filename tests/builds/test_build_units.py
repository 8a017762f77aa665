"""Build pieces that need no model: recipe parsing, crash-safe files, round-based
generation cache and resume, phase mixing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab_ci.builds.config import load_config
from lab_ci.builds.generate import GenerationCache, cache_key, generate_leaf_cached, leaf_kind
from lab_ci.builds.mix import mix_phases, take
from lab_ci.builds.store import append_jsonl, read_jsonl, write_json_atomic
from lab_ci.taxonomy.leaf import LeafFile, git_blob_id

SKILL = b"version: 3\ncreated_by: me\ntask_description: t\nseed_examples:\n  - question: q\n    answer: a\n"
GROUNDED = (
    b"version: 3\ncreated_by: me\ntask_description: t\nseed_examples:\n  - context: c\n    question: q\n    answer: a\n"
)


def leaf(path: str, data: bytes) -> LeafFile:
    return LeafFile(path=path, data=data, blob_id=git_blob_id(data))


def test_default_recipe_has_knowledge_then_skills_with_replay():
    cfg = load_config()
    assert [p.name for p in cfg.phases] == ["knowledge", "skills"]
    replay = [d for d in cfg.phases[1].data if d.replay]
    assert replay and replay[0].source == "knowledge" and 0 < replay[0].weight < 1


def test_leaf_kind():
    assert leaf_kind(leaf("knowledge/a/qna.yaml", SKILL)) == "knowledge"
    assert leaf_kind(leaf("compositional_skills/a/qna.yaml", GROUNDED)) == "grounded_skill"
    assert leaf_kind(leaf("compositional_skills/a/qna.yaml", SKILL)) == "freeform_skill"


def test_torn_jsonl_tail_is_skipped(tmp_path: Path):
    p = tmp_path / "x.jsonl"
    append_jsonl(p, [{"a": 1}, {"a": 2}])
    with open(p, "a") as fh:
        fh.write('{"a": 3')  # a kill in the middle of a write
    assert [r["a"] for r in read_jsonl(p)] == [1, 2]


def test_atomic_json_leaves_no_temp_files(tmp_path: Path):
    write_json_atomic(tmp_path / "m.json", {"x": 1})
    write_json_atomic(tmp_path / "m.json", {"x": 2})
    assert json.loads((tmp_path / "m.json").read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


class Rounds:
    """A deterministic generator: sample i of a round with seed s is "s:i"; every third rejected."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls = 0
        self.fail_on_call = fail_on_call

    def __call__(self, n: int, seed: int):
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise KeyboardInterrupt("killed")
        accepted = [
            {"messages": [{"role": "assistant", "content": f"{seed}:{i}"}], "metadata": {"index": i}}
            for i in range(n)
            if i % 3 != 2
        ]
        return accepted, sum(1 for i in range(n) if i % 3 == 2)


def _gen(tmp_path: Path, rounds: Rounds, target: int = 10):
    l = leaf("compositional_skills/a/qna.yaml", SKILL)
    key = cache_key(l, "p1", "t1", 5, 4)
    return generate_leaf_cached(
        l,
        kind="freeform_skill",
        target=target,
        cache=GenerationCache(tmp_path),
        key=key,
        round_size=4,
        max_rounds=10,
        seed=5,
        run_round=rounds,
    )


def test_generation_reaches_target_and_is_cached(tmp_path: Path):
    r = Rounds()
    first = _gen(tmp_path, r)
    assert len(first.samples) == 10 and first.generated_now == 10
    calls = r.calls
    again = _gen(tmp_path, r)
    assert r.calls == calls  # nothing generated the second time
    assert again.generated_now == 0 and again.samples == first.samples


def test_kill_mid_generation_resumes_without_loss_or_duplicates(tmp_path: Path):
    full = Rounds()
    uninterrupted = _gen(tmp_path / "a", full).samples
    with pytest.raises(KeyboardInterrupt):
        _gen(tmp_path / "b", Rounds(fail_on_call=3))  # two rounds finished, the third killed
    resumed_rounds = Rounds()
    resumed = _gen(tmp_path / "b", resumed_rounds)
    assert resumed.samples == uninterrupted
    assert resumed_rounds.calls == full.calls - 2  # only the missing rounds ran
    assert resumed.generated_now == len(uninterrupted) - 6


def test_lines_of_an_unfinished_round_are_dropped(tmp_path: Path):
    r = Rounds()
    res = _gen(tmp_path, r, target=4)
    entry = GenerationCache(tmp_path).entry(res.cache_key)
    # a round that appended its samples but was killed before rounds.json said so
    append_jsonl(entry / "samples.jsonl", [{"messages": [], "metadata": {"round": res.rounds}}])
    res2 = _gen(tmp_path, Rounds(), target=4)
    assert res2.samples == res.samples
    assert sum(1 for _ in read_jsonl(entry / "samples.jsonl")) == len(res.samples)


def test_take_weights():
    import random

    pool = [{"i": i} for i in range(10)]
    assert len(take(pool, 1.0, random.Random(0))) == 10
    assert len(take(pool, 0.3, random.Random(0))) == 3
    assert len(take(pool, 2.5, random.Random(0))) == 25
    assert take(pool, 0, random.Random(0)) == []


def test_mix_is_deterministic_and_replays_knowledge():
    cfg = load_config()
    pools = {
        "knowledge": [
            {"messages": [{"role": "assistant", "content": f"k{i}"}], "metadata": {"leaf": "knowledge/x"}}
            for i in range(10)
        ],
        "freeform_skill": [
            {"messages": [{"role": "assistant", "content": f"s{i}"}], "metadata": {"leaf": "cs/y"}} for i in range(6)
        ],
    }
    a = mix_phases(pools, cfg.phases, seed=1)
    b = mix_phases(pools, cfg.phases, seed=1)
    assert [m.records for m in a] == [m.records for m in b]
    assert a[0].stats["samples"] == 10
    assert a[1].stats["by_source"] == {"freeform_skill": 6, "grounded_skill": 0, "knowledge (replay)": 3}


def test_torchrun_command_single_node_is_standalone():
    from lab_ci.builds.runner import torchrun_command

    cmd = torchrun_command(Path("/o/run.yaml"), Path("/o/r.json"), 2, [])
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=2"]
    assert "--standalone" in cmd
    assert cmd[-6:] == ["-m", "lab_ci.train.run", "--config", "/o/run.yaml", "--result-json", "/o/r.json"]
    multi = torchrun_command(
        Path("r.yaml"), Path("r.json"), 8, ["--nnodes=2", "--node-rank=0", "--rdzv-endpoint=node0:29500"]
    )
    assert "--standalone" not in multi and "--nnodes=2" in multi


def test_invalid_tree_message_names_file_line_column():
    from lab_ci.builds.runner import invalid_tree_message
    from lab_ci.check.diagnostics import Diagnostic, FileResult, Report

    ok = FileResult(path="a/qna.yaml", diagnostics=[])
    bad = FileResult(
        path="b/qna.yaml",
        diagnostics=[
            Diagnostic(severity="warning", source="taxonomy", rule="w", message="meh", line=1, column=1),
            Diagnostic(
                severity="error",
                source="schema",
                rule="schema",
                message="'seed_examples' is required",
                line=3,
                column=5,
            ),
        ],
    )
    assert invalid_tree_message(Report(files=[ok])) is None
    msg = invalid_tree_message(Report(files=[ok, bad]))
    assert "1 invalid leaf file(s)" in msg and "b/qna.yaml:3:5: 'seed_examples' is required" in msg


def test_model_card_groups_postcheck_by_leaf_and_escapes():
    from lab_ci.builds.release import model_card

    prov = {
        "name": "r",
        "lab_ci_version": "0",
        "teacher": {"id": "gguf:abc:t.gguf"},
        "student": {"base": "s"},
        "taxonomy": {"commit": "c0ffee", "leaves": [{"path": "x/qna.yaml", "blob": "b" * 40}]},
        "datasets": [
            {
                "phase": "knowledge",
                "sha256": "f" * 64,
                "stats": {"samples": 3, "by_source": {"knowledge": 3}, "chars": 9},
            }
        ],
        "generation": [{"leaf": "x/qna.yaml", "kind": "knowledge", "samples": 3, "target": 4, "rejected": 1}],
        "hyperparameters": {"lr": 1},
        "training": [{"phase": "knowledge", "steps": 2, "first_loss": 3.0, "final_loss": 2.0}],
        "gguf": "model.gguf",
    }
    rows = [
        {
            "leaf": "x/qna.yaml",
            "question": "q | @you",
            "reference": "a",
            "before": "b",
            "after": "a",
            "score_before": 0.0,
            "score_after": 1.0,
        }
    ]
    card = model_card(prov, rows, "loss.png")
    assert "### `x/qna.yaml`" in card and "Agreement: before 0.00, after 1.00" in card
    assert "q \\| @\u200dyou" in card  # no table breakage, no mention
    assert "c0ffee" in card and "f" * 64 in card and "3.0000 → 2.0000" in card and "model.gguf" in card
