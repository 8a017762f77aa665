"""A killed evaluation resumes where it stopped: what a chunk finished is on disk and
is not computed again; the result equals an uninterrupted run's (real tiny student)."""

from __future__ import annotations

import pytest
from eval_helpers import ANTONYMS, LIGHTHOUSE

from lab_ci.eval.mcq import MCQ, MCQSet
from lab_ci.eval.runner import EvalPlan, LeafPlan, score_model
from lab_ci.eval.store import EvalCache
from lab_ci.taxonomy.leaf import LeafFile
from lab_ci.taxonomy.seeds import parse_leaf
from labtest import EXAMPLE_TAXONOMY


class Killed(Exception):
    pass


def plan_with_questions() -> EvalPlan:
    """The lighthouse leaf with questions made from its seed Q/As (no teacher needed)
    and the antonyms leaf's seed questions."""
    from lab_ci.sdg.questions import seed_questions

    leaves = {p: LeafFile(p, (EXAMPLE_TAXONOMY / p).read_bytes()) for p in (LIGHTHOUSE, ANTONYMS)}
    seeds = {p: parse_leaf(l) for p, l in leaves.items()}
    plan = EvalPlan([LeafPlan(leaves[p], seeds[p], "changed") for p in (LIGHTHOUSE, ANTONYMS)])
    ex = seeds[LIGHTHOUSE].examples
    items = [
        MCQ(f"s{i}", LIGHTHOUSE, e.question, (e.answer, *(x.answer for x in ex[i + 1 : i + 4])), 0)
        for i, e in enumerate(ex[:10])
    ]
    plan.mcqs[LIGHTHOUSE] = MCQSet(LIGHTHOUSE, "k", "t", "v", 0, 10, items)
    plan.questions[ANTONYMS] = seed_questions([seeds[ANTONYMS]])
    return plan


def test_a_kill_after_the_first_chunk_loses_nothing_and_repeats_nothing(tiny_models, tmp_path):
    plan = plan_with_questions()
    cache = EvalCache(tmp_path / "cache")
    said = []

    def kill_after_first_chunk(msg: str) -> None:
        said.append(msg)
        if msg.endswith("questions scored"):
            raise Killed

    with pytest.raises(Killed):
        score_model(tiny_models["student"], plan, cache, chunk=8, max_new_tokens=8, progress=kill_after_first_chunk)
    assert "student: scoring 10 multiple-choice questions" in said and said[-1].endswith("2/10 questions scored")

    said.clear()
    resumed = score_model(tiny_models["student"], plan, cache, chunk=8, max_new_tokens=8, progress=said.append)
    assert "student: scoring 8 multiple-choice questions" in said  # the first chunk's 2 came from disk
    assert "student: answering 6 seed questions" in said

    fresh = score_model(tiny_models["student"], plan, EvalCache(tmp_path / "fresh"), max_new_tokens=8)
    assert resumed.answers == fresh.answers
    for leaf, results in fresh.mcq.items():  # other batches, the same numbers to float rounding
        for a, b in zip(resumed.mcq[leaf], results):
            assert a.choice == b.choice and a.scores == pytest.approx(b.scores, rel=1e-5)

    said.clear()
    score_model(tiny_models["student"], plan, cache, max_new_tokens=8, progress=said.append)
    assert said == []  # all cached: the model is not even loaded
