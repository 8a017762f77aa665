"""Hints are derived from the leaf and the run's statistics (pure)."""

from lab_ci.preview.hints import hints_for
from lab_ci.preview.model import PrecheckItem
from lab_ci.sdg.seeds import LeafSeeds, SeedExample


def seeds(questions, answer="An answer.", kind="skill"):
    return LeafSeeds(
        "compositional_skills/x/qna.yaml",
        kind,
        "task",
        tuple(SeedExample(str(i), q, answer) for i, q in enumerate(questions)),
    )


GOOD = [
    "How do volcanoes form?",
    "Name three primary colours.",
    "Why is the sea salty?",
    "What causes thunder?",
    "How do bees make honey?",
]


def test_a_healthy_leaf_gets_no_hints():
    stats = {"candidates": 3, "accepted": 3, "by_reason": {}}
    assert hints_for(seeds(GOOD), stats, [], [{}] * 3, []) == []


def test_few_similar_long_seeds():
    s = seeds(["What is the opposite of hot?", "What is the opposite of cold?"], answer="word " * 300)
    text = " ".join(hints_for(s, {"candidates": 1, "accepted": 1, "by_reason": {}}, [], [{}], []))
    assert "Only 2 seed examples" in text and "very similar" in text and "long" in text


def test_rejection_patterns_and_precheck():
    stats = {"candidates": 4, "accepted": 0, "by_reason": {"duplicate": 2, "truncated": 2, "unparseable": 0}}
    pc = [PrecheckItem("0", "q", "a b", "a b", 1.0, 1.0)]
    text = " ".join(hints_for(seeds(GOOD), stats, [], [], pc))
    assert "repeat each other" in text and "cut off" in text and "No sample was accepted" in text
    assert "already answers your seed questions well" in text
