"""Hints are derived from the leaf and the run's statistics (pure)."""

from lab_ci.preview.hints import hints_for
from lab_ci.preview.model import PrecheckItem
from lab_ci.sdg.seeds import LeafSeeds, SeedExample


def seeds(questions, answer="An answer.", kind="skill"):
    return LeafSeeds(
        "compositional_skills/x/qna.yaml",
        kind,
        "task",
        tuple(SeedExample(str(i), q, answer) for i, q in enumerate(questions, 1)),
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


def test_similar_seed_questions_are_named_counted_from_1():
    """The antonyms leaf of the example taxonomy: six "What is the antonym of X?" seeds
    used to give "15 pair(s) of seed questions are very similar", naming none."""
    words = ["hot", "early", "generous", "ancient", "arrive", "narrow"]
    all_alike = seeds([f'What is the antonym of "{w}"?' for w in words])
    (hint,) = [h for h in hints_for(all_alike, {}, [], [], []) if "similar" in h]
    assert (
        hint
        == "15 pairs of seed questions are very similar (seeds 1, 2, 3, 4, 5 and 6 are all alike): vary wording and topics."
    )
    two = seeds(["What is the opposite of hot?", *GOOD[1:4], "What is the opposite of cold?"])
    (hint,) = [h for h in hints_for(two, {}, [], [], []) if "similar" in h]
    assert hint == "1 pair of seed questions is very similar (seeds 1 and 5): vary wording and topics."


def test_long_answers_and_few_seeds_are_named_in_words():
    s = LeafSeeds(
        "compositional_skills/x/qna.yaml",
        "skill",
        "task",
        (SeedExample("1", "Why is the sky blue?", "short"), SeedExample("2", "How do bees fly?", "word " * 300)),
    )
    text = " ".join(hints_for(s, {}, [], [], []))
    assert "Only 2 seed examples" in text and "Seed answer 2 is long" in text
    one = LeafSeeds("compositional_skills/x/qna.yaml", "skill", "task", (SeedExample("1", "Why?", "Because."),))
    assert "Only 1 seed example:" in " ".join(hints_for(one, {}, [], [], []))
