"""Which leaves an evaluation looks at: the change, from real git repositories, plus the
seeded regression guard (lab_ci.eval.runner.plan_eval, guard_sample)."""

from __future__ import annotations

import shutil

import pytest

from lab_ci.errors import LabCIError
from lab_ci.eval.runner import guard_sample, plan_eval
from labtest import commit_all

ANTONYMS = "compositional_skills/linguistics/antonyms/qna.yaml"
HAIKU = "compositional_skills/writing/freeform/haiku/qna.yaml"
LIGHTHOUSE = "knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml"
SKILLS = {
    ANTONYMS,
    HAIKU,
    "compositional_skills/arithmetic/unit_conversion/qna.yaml",
    "compositional_skills/extraction/commit_messages/summary/qna.yaml",
}


def roles(plan):
    return {p.path: p.role for p in plan.leaves}


def test_changed_leaves_and_a_guard_of_unchanged_ones(example_taxonomy_repo):
    repo = example_taxonomy_repo
    p = repo / ANTONYMS
    p.write_text(p.read_text().replace('"hot"', '"warm"'))
    # a new skill leaf, and a deleted one
    new = repo / "compositional_skills/linguistics/synonyms/qna.yaml"
    new.parent.mkdir(parents=True)
    new.write_bytes(p.read_bytes())
    shutil.copy(p.parent / "attribution.txt", new.parent / "attribution.txt")
    shutil.rmtree(repo / "compositional_skills/writing/freeform/haiku")
    commit_all(repo, "change")
    plan = plan_eval(repo, base="HEAD~1", head="HEAD", seed=0, guard_skills=2, guard_knowledge=1)
    r = roles(plan)
    assert {k for k, v in r.items() if v == "changed"} == {
        ANTONYMS,
        "compositional_skills/linguistics/synonyms/qna.yaml",
    }
    guard = {k for k, v in r.items() if v == "guard"}
    skill_guard = {g for g in guard if g.startswith("compositional_skills/")}
    assert len(skill_guard) == 2 and skill_guard <= SKILLS - {ANTONYMS, HAIKU}  # unchanged, still there
    assert len(guard - skill_guard) == 1 and next(iter(guard - skill_guard)).startswith("knowledge/")
    assert HAIKU not in r and not plan.skipped  # a deleted leaf is not evaluated
    # the same seed gives the same guard; the working tree (no --head) is the same tree here
    assert roles(plan_eval(repo, base="HEAD~1", head="HEAD", guard_skills=2, guard_knowledge=1)) == r
    assert roles(plan_eval(repo, base="HEAD~1", guard_skills=2, guard_knowledge=1)) == r


def test_without_base_every_leaf_is_evaluated_and_nothing_is_a_guard(example_taxonomy_repo):
    plan = plan_eval(example_taxonomy_repo, head="HEAD", guard_skills=3)
    assert len(plan.leaves) == 6 and set(roles(plan).values()) == {"changed"}
    assert {p.kind for p in plan.leaves} == {"skill", "knowledge"}


def test_a_changed_leaf_without_seed_questions_is_skipped_with_the_reason(example_taxonomy_repo):
    repo = example_taxonomy_repo
    (repo / ANTONYMS).write_text("version: 3\ntask_description: x\ncreated_by: me\nseed_examples: []\n")
    commit_all(repo, "broken")
    plan = plan_eval(repo, base="HEAD~1", head="HEAD", guard_skills=0)
    assert plan.leaves == []
    [s] = plan.skipped
    assert s["leaf"] == ANTONYMS and s["role"] == "changed" and "no question/answer pairs" in s["reason"]


def test_the_number_of_leaves_is_bounded(example_taxonomy_repo):
    with pytest.raises(LabCIError, match="6 leaves to evaluate .* at most 3"):
        plan_eval(example_taxonomy_repo, head="HEAD", max_leaves=3)


def test_guard_sample_is_stable_when_leaves_are_added():
    paths = [f"skills/s{i}/qna.yaml" for i in range(50)]
    first = guard_sample(paths, 5, seed=1)
    assert len(first) == 5 and first == guard_sample(list(reversed(paths)), 5, seed=1)
    assert guard_sample(paths, 5, seed=2) != first
    changed = 0
    for j in range(20):  # one more leaf in the taxonomy replaces at most one guard leaf
        grown = guard_sample(paths + [f"skills/new{j}/qna.yaml"], 5, seed=1)
        assert len(set(grown) - set(first)) <= 1
        changed += grown != first
    assert changed < 20
    assert guard_sample(paths, 0, seed=1) == [] and len(guard_sample(paths[:3], 5, seed=1)) == 3
