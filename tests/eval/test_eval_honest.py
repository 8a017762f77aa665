"""The measurement can tell a difference, on the real tiny models.

The lighthouse leaf is the changed leaf, git_basics the (unchanged) guard. Their
multiple-choice questions are the contributors' seed questions (15 each: the key is the
contributor's answer, the wrong options three other answers of the leaf): the tiny
teacher's own questions are gibberish (measured with 20 candidates per leaf: 3 and 2
usable questions, e.g. "According to the kestrels that nest on the kestrels."), so they
would only add noise here; tests/eval/test_eval_cli.py runs that path. The tiny student
(scripts/build_tiny_models.py) is scored as it is and after lab_ci.train's loop
fine-tunes it on the lighthouse leaf's seed Q/As (12 epochs, lr 3e-3, 4 samples per
step); then a copy of the trained model with Gaussian noise of one standard deviation
of each tensor added to every weight is scored against the trained model.

Measured before this test was written (training seeds 0-4, noise seed = training seed):
lighthouse accuracy 0.47 untrained, 1.00 trained with every seed: delta +0.53, 95%
interval +0.27 to +0.80 each time. git_basics (not trained on): 0.40 -> 0.27-0.33,
delta -0.07 to -0.13, the interval spanning zero with every seed. Damaged: 1.00 ->
0.20-0.47, delta -0.53 to -0.80, interval upper bound -0.27 to -0.60. The trained
student memorised the very answers that are the keys: this shows the scoring and the
intervals separate a model that knows a leaf from one that does not, not that a tiny
model generalises. The test runs training seeds 0 and 1 and noise seed 0.
"""

from __future__ import annotations

import pytest
from eval_helpers import GIT_BASICS, LIGHTHOUSE, damaged, finetune, leaf_records

from lab_ci.eval.gates import Gates, MetricGates, apply_gates
from lab_ci.eval.runner import compare, plan_eval, prepare_questions, score_model, select_checkpoint
from lab_ci.eval.store import EvalCache
from labtest import EXAMPLE_TAXONOMY

TRAIN_SEEDS = (0, 1)


@pytest.fixture(scope="module")
def setup(tiny_models, tmp_path_factory):
    from lab_ci.taxonomy.collect import collect_leaves

    root = tmp_path_factory.mktemp("honest")
    leaves = collect_leaves(EXAMPLE_TAXONOMY)
    plan = plan_eval(EXAMPLE_TAXONOMY, leaves=leaves, changed=[LIGHTHOUSE], guard_knowledge=1, guard_skills=0)
    assert [(p.path, p.role) for p in plan.leaves] == [(LIGHTHOUSE, "changed"), (GIT_BASICS, "guard")]
    cache = EvalCache(root / "cache")
    prepare_questions(plan, cache, sources=("seeds",))
    lighthouse = next(p.seeds for p in plan.leaves if p.path == LIGHTHOUSE)
    trained = {
        s: finetune(tiny_models["student"], leaf_records(lighthouse), root / f"trained-{s}", seed=s)
        for s in TRAIN_SEEDS
    }
    return {"plan": plan, "cache": cache, "student": tiny_models["student"], "trained": trained, "root": root}


def _row(results: dict, leaf: str) -> dict:
    return next(r for r in results["knowledge"]["leaves"] if r["leaf"] == leaf)


@pytest.mark.parametrize("seed", TRAIN_SEEDS)
def test_training_on_a_leaf_raises_its_accuracy_by_more_than_the_interval(setup, seed):
    plan, cache = setup["plan"], setup["cache"]
    base = score_model(setup["student"], plan, cache)
    cand = score_model(setup["trained"][seed], plan, cache)
    results = compare(plan, cand, base)
    row = _row(results, LIGHTHOUSE)
    assert row["n"] == 15 and row["delta"] > 0 and row["ci"][0] > 0, row  # the whole interval above zero
    control = _row(results, GIT_BASICS)  # not trained on: no credit for it
    assert control["role"] == "guard" and control["ci"][0] <= 0, control
    outcome = apply_gates(results, Gates(knowledge=MetricGates(max_leaf_drop=0.1, min_changed_gain=0.0)))
    assert outcome.passed, outcome.reasons


def test_a_damaged_checkpoint_is_flagged_as_a_regression(setup):
    plan, cache = setup["plan"], setup["cache"]
    trained = setup["trained"][TRAIN_SEEDS[0]]
    broken = damaged(trained, setup["root"] / "damaged")
    results = compare(plan, score_model(broken, plan, cache), score_model(trained, plan, cache))
    row = _row(results, LIGHTHOUSE)
    assert row["ci"][1] < 0, row  # the whole interval below zero
    outcome = apply_gates(results, Gates(knowledge=MetricGates(max_leaf_drop=0.1)))
    assert not outcome.passed
    [fail] = [c for c in outcome.failures if c.subject == LIGHTHOUSE]
    assert "below the baseline by more than 0.1" in fail.message


def test_checkpoint_selection_picks_the_trained_model(setup):
    sel = select_checkpoint(
        [("untrained", setup["student"]), ("trained", setup["trained"][TRAIN_SEEDS[0]])],
        setup["plan"],
        setup["cache"],
        metric="knowledge",
    )
    assert sel.best == "trained" and "trained has the highest" in sel.reason
    values = {r["name"]: r["value"] for r in sel.scores}
    assert values["trained"] > values["untrained"]
