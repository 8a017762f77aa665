"""The taxonomy rules, one by one, on small inline leaves."""

from __future__ import annotations

import pytest
from checkleaf_samples import KNOWLEDGE, SKILL, leaf

from lab_ci.check import CheckOptions, check_leaf
from lab_ci.check.rules import RULES
from lab_ci.check.rules.text_size import estimate_tokens
from lab_ci.taxonomy.leaf import LeafFile

OPTS = CheckOptions()


def taxonomy(result):
    return {d.rule: d for d in result.diagnostics if d.source == "taxonomy"}


def test_every_rule_is_documented_and_warns_by_default():
    assert set(RULES) == {
        "placement",
        "attribution-missing",
        "attribution-empty",
        "duplicate-question",
        "text-size",
        "document-repo",
        "document-commit",
        "document-patterns",
    }
    for rule_id, rule in RULES.items():
        assert rule.ID == rule_id and rule.LEVEL == "warning"
        assert rule.__doc__ and rule.__doc__.startswith(rule_id + ":")


@pytest.mark.parametrize(
    "path, bad",
    [
        ("compositional_skills/poems/cats/qna.yaml", False),
        ("knowledge/space/moon/qna.yaml", False),
        ("docs/poems/qna.yaml", True),
        ("qna.yaml", True),
        ("compositional_skills/qna.yaml", True),
    ],
)
def test_placement(path, bad):
    text = KNOWLEDGE if path.startswith("knowledge") else SKILL
    r = check_leaf(leaf(text, path), OPTS)
    assert ("placement" in taxonomy(r)) == bad


def test_attribution_missing_and_empty():
    assert "attribution-missing" in taxonomy(check_leaf(leaf(SKILL, attribution=None), OPTS))
    r = check_leaf(leaf(SKILL, attribution=b"  \n\n"), OPTS)
    assert "attribution-empty" in taxonomy(r) and "attribution-missing" not in taxonomy(r)
    r = check_leaf(
        LeafFile(path="compositional_skills/poems/cats/qna.yaml", data=SKILL.encode(), attribution_kind="directory"),
        OPTS,
    )
    assert "a directory" in taxonomy(r)["attribution-missing"].message
    assert not taxonomy(check_leaf(leaf(SKILL), OPTS))


def test_duplicate_question_in_skill():
    text = SKILL.replace("Write a limerick about a cat.", "write a  HAIKU about a cat.")
    d = taxonomy(check_leaf(leaf(text), OPTS))["duplicate-question"]
    assert d.yaml_path == ".seed_examples[1].question" and d.line == 7 and d.column == 15
    assert d.message == "seed example 2 asks the same question as seed example 1"
    assert [(r.line, r.column) for r in d.related] == [(5, 15)] and d.hint


def test_duplicate_question_in_knowledge():
    text = KNOWLEDGE.replace("Is the Moon natural, part 3b?", "What is the Moon, part 1a?")
    r = check_leaf(leaf(text, "knowledge/space/moon/qna.yaml"), OPTS)
    d = taxonomy(r)["duplicate-question"]
    assert d.yaml_path == ".seed_examples[3].questions_and_answers[1].question"
    assert r.valid


def test_text_size_skill():
    long_answer = "word " * 2000  # ~10000 chars, ~2500 tokens > 2048
    text = SKILL.replace("answer: Soft paws on the sill.", f"answer: {long_answer.strip()}")
    d = taxonomy(check_leaf(leaf(text), OPTS))["text-size"]
    assert d.yaml_path == ".seed_examples[0]" and d.line == 5 and "2048" in d.message
    # a bigger teacher window makes it fit
    assert "text-size" not in taxonomy(check_leaf(leaf(text), CheckOptions(teacher_context_tokens=8192)))


def test_text_size_knowledge():
    context = "The Moon " * 350  # 3150 chars, ~788 tokens: > 500 alone, > 750 with its Q&A
    text = KNOWLEDGE.replace("The Moon is Earth's only natural satellite, fact 2.", context.strip())
    r = check_leaf(leaf(text, "knowledge/space/moon/qna.yaml"), OPTS)
    found = [d for d in r.diagnostics if d.rule == "text-size"]
    assert {d.yaml_path for d in found} == {".seed_examples[2].context", ".seed_examples[2]"}
    assert r.valid
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2


def test_disable_skips_a_rule():
    r = check_leaf(leaf(SKILL, attribution=None), CheckOptions(disable=("attribution-missing",)))
    assert "attribution-missing" not in taxonomy(r)


def test_same_question_about_different_contexts_is_not_a_duplicate():
    grounded = "version: 3\ncreated_by: me\ntask_description: summarize\nseed_examples:\n" + "".join(
        f"  - context: Commit {i} changes file {i}.\n    question: Summarize this commit.\n"
        f"    answer: It changes file {i}.\n"
        for i in range(5)
    )
    r = check_leaf(leaf(grounded), OPTS)
    assert "duplicate-question" not in taxonomy(r)
    same_context = grounded.replace("Commit 1 changes file 1.", "Commit 0 changes file 0.")
    d = taxonomy(check_leaf(leaf(same_context), OPTS))["duplicate-question"]
    assert d.yaml_path == ".seed_examples[1].question"
