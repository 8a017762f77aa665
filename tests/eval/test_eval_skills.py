"""The skills (MT-Bench-Branch) bookkeeping: answers -> judge -> ratings -> paired deltas
-> gates, with the real rubric and parser and a rule-based judge double (a capable
judge model is unreachable here; the tiny teacher writes no rating)."""

from __future__ import annotations

from eval_helpers import ANTONYMS, RuleJudge

from lab_ci.eval.gates import Gates, MetricGates, apply_gates
from lab_ci.eval.judge import Rubric, judge_answers, parse_rating
from lab_ci.eval.runner import EvalPlan, LeafPlan, ModelScores, compare, judge_model
from lab_ci.eval.store import EvalCache
from lab_ci.sdg.questions import SeedAnswer, seed_questions
from lab_ci.taxonomy.leaf import LeafFile
from lab_ci.taxonomy.seeds import parse_leaf
from labtest import EXAMPLE_TAXONOMY

GROUNDED = "compositional_skills/extraction/commit_messages/summary/qna.yaml"


def leaf_plan(path, role="changed") -> LeafPlan:
    leaf = LeafFile(path, (EXAMPLE_TAXONOMY / path).read_bytes())
    return LeafPlan(leaf, parse_leaf(leaf), role)


def test_rating_parser_accepts_the_rubric_format_and_refuses_anything_else():
    assert parse_rating("Good.\nRating: [[7]]").rating == 7
    assert parse_rating("Rating: 4").rating == 4
    assert parse_rating("fine [[10]]").rating == 10
    for bad, why in (("Rating: [[11]]", "outside 1-10"), ("Rating: [[0]]", "outside 1-10"), ("no idea", "unparseable")):
        j = parse_rating(bad)
        assert j.rating is None and why in j.error, (bad, j)


def test_the_judge_sees_the_question_as_asked_the_reference_and_the_answer():
    rubric = Rubric.load()
    g = leaf_plan(GROUNDED)
    q = seed_questions([g.seeds])[0]
    judge = RuleJudge()
    [j] = judge_answers(judge, rubric, [(q, q.reference)])
    assert j.rating == 9
    [[system, user]] = judge.asked
    assert system.role == "system" and "impartial judge" in system.content
    assert q.prompt in user.content and q.prompt.startswith(g.seeds.examples[0].context.strip())  # context included
    assert g.seeds.task_description in user.content and q.reference in user.content
    # an empty answer is rated 1 without asking
    [empty] = judge_answers(judge, rubric, [(q, "  ")])
    assert empty.rating == 1 and "without asking" in empty.error and len(judge.asked) == 1


def test_paired_judge_scores_deltas_cache_and_gates(tmp_path):
    plan = EvalPlan([leaf_plan(ANTONYMS), leaf_plan(GROUNDED, "guard")])
    for p in plan.leaves:
        plan.questions[p.path] = seed_questions([p.seeds])

    def scores(name, answer_for):
        s = ModelScores({"id": name})
        for leaf, qs in plan.questions.items():
            s.answers[leaf] = [SeedAnswer(q, answer_for(i, q)) for i, q in enumerate(qs)]
        return s

    # the candidate answers antonyms right (but one question with a reply the judge cannot rate)
    cand = scores("cand", lambda i, q: "NO-RATING" if i == 0 else q.reference)
    base = scores("base", lambda i, q: q.reference if i == 1 else "wrong")
    cache = EvalCache(tmp_path / "cache")
    judge, rubric = RuleJudge(), Rubric.load()
    for s in (cand, base):
        judge_model(s, judge, rubric, cache)
    asked = len(judge.asked)
    results = compare(plan, cand, base)
    rows = {r["leaf"]: r for r in results["skills"]["leaves"]}
    a = rows[ANTONYMS]
    assert a["unjudged"] == 1 and a["n"] == len(plan.questions[ANTONYMS]) - 1
    assert a["candidate"] == 9 and a["delta"] > 0 and a["ci"][0] > 0
    assert a["items"][0]["candidate"]["rating"] is None and "unparseable" in a["items"][0]["candidate"]["error"]
    assert results["skills"]["guard"]["leaves"] == 1
    # judging again asks nothing: every judgment is in the cache
    again = scores("cand", lambda i, q: "NO-RATING" if i == 0 else q.reference)
    judge_model(again, RuleJudge(), rubric, EvalCache(tmp_path / "cache"))
    assert [j.rating for j in again.judgments[ANTONYMS]] == [j.rating for j in cand.judgments[ANTONYMS]]
    assert len(judge.asked) == asked
    # gates both ways on the same results
    assert apply_gates(results, Gates(skills=MetricGates(max_leaf_drop=1.0))).passed
    worse = compare(plan, base, cand)  # swapped: the candidate is now the worse model
    out = apply_gates(worse, Gates(skills=MetricGates(max_leaf_drop=1.0)))
    assert not out.passed and ANTONYMS in out.reasons[0]


def test_a_prompt_too_long_for_a_local_judge_fails_that_answer_only(tiny_models):
    """llama.cpp refuses a whole call when one prompt does not fit its context: the other
    answers are judged one by one; if every answer fails, the judge error is raised."""
    import pytest

    from lab_ci.teacher import TeacherError, load_teacher

    rubric = Rubric.load()
    qs = seed_questions([leaf_plan(ANTONYMS).seeds])
    judge = load_teacher(str(tiny_models["teacher"]), n_ctx=1024)
    try:
        long_answer = "cold " * 2000
        got = judge_answers(judge, rubric, [(qs[0], qs[0].reference), (qs[1], long_answer), (qs[2], "hot")])
        assert "the judge failed on this answer" in got[1].error and "n_ctx=1024" in got[1].error
        for j in (got[0], got[2]):  # judged (the tiny teacher writes no rating: unparseable, not failed)
            assert j.text and "judge failed" not in j.error
        with pytest.raises(TeacherError):
            judge_answers(judge, rubric, [(qs[0], long_answer), (qs[1], long_answer)])
    finally:
        judge.close()
