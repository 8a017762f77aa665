"""MMLU-Branch question sets: built from pipeline records, shuffled, keyed, scored."""

from __future__ import annotations

from collections import Counter

from lab_ci.eval.hf import LogLikelihood
from lab_ci.eval.mcq import MCQ, MCQSet, build_mcqs, choose, mcq_key, mcq_pipeline
from lab_ci.taxonomy.leaf import LeafFile, git_blob_id
from lab_ci.taxonomy.seeds import parse_leaf
from labtest import EXAMPLE_TAXONOMY

KNOWLEDGE = "knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml"


def records(i, question, answer, wrongs):
    """The records the pipeline makes for candidate ``s{i}``: one per wrong answer."""
    return [
        {
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "metadata": {"sample_id": f"s{i}.{j}", "seed_ids": ["0.1"], "document_source": "doc.md#0", "wrong": w},
        }
        for j, w in enumerate(wrongs)
    ]


def test_records_become_shuffled_questions_whose_key_follows_the_right_answer():
    recs = [
        r
        for i in range(40)
        for r in records(
            i, f"Question number {i}?", f"Right {i}.", [f"Wrong {i}a.", f"Wrong {i}b.", f"Wrong {i}c.", "x"]
        )
    ]
    items, rejected = build_mcqs(recs, "k/qna.yaml", seed=1)
    assert rejected == {} and len(items) == 40
    for i, m in enumerate(items):
        assert m.options[m.answer] == f"Right {i}." and len(m.options) == 4
        # the first three distinct wrong answers, in the order written
        assert sorted(m.options) == sorted([f"Right {i}.", f"Wrong {i}a.", f"Wrong {i}b.", f"Wrong {i}c."])
        assert m.id == f"s{i}" and m.source == "doc.md#0" and m.seed_ids == ("0.1",)
    positions = Counter(m.answer for m in items)
    assert len(positions) == 4 and max(positions.values()) < 20  # the key's position says nothing
    again, _ = build_mcqs(recs, "k/qna.yaml", seed=1)
    assert again == items  # seeded
    other, _ = build_mcqs(recs, "k/qna.yaml", seed=2)
    assert [m.answer for m in other] != [m.answer for m in items]


def test_repeated_wrong_answers_are_skipped_and_too_few_or_duplicate_questions_rejected():
    recs = [
        # "right." repeats the answer and "Wrong A" repeats "wrong a!": skipped, 3 remain
        *records(0, "Who built the tower?", "Right.", ["right.", "Wrong A", "wrong a!", "Wrong B", "Wrong C"]),
        *records(1, "Q1?", "A.", ["B.", "B", "C."]),  # two distinct wrong answers only
        *records(2, "", "A.", ["B.", "C.", "D."]),
        *records(3, "Who built the tower ?", "A.", ["B.", "C.", "D."]),  # the same question again
    ]
    items, rejected = build_mcqs(recs, "k", seed=0)
    [m] = items
    assert sorted(m.options) == ["Right.", "Wrong A", "Wrong B", "Wrong C"]
    assert rejected == {"too-few-wrong-answers": 1, "empty-question": 1, "duplicate-question": 1}


def test_set_round_trips_and_the_cache_key_covers_its_inputs():
    m = MCQ("s1", "k", "Q?", ("a", "b", "c", "d"), 2, "doc#1", ("0.0",))
    s = MCQSet("k", "key", "t", "1+abc", 0, 5, [m], {"unparseable": 2}, {"repo": "r", "commit": "c", "patterns": ["*"]})
    assert MCQSet.from_dict(s.to_dict()) == s
    data = (EXAMPLE_TAXONOMY / KNOWLEDGE).read_bytes()
    leaf = LeafFile(KNOWLEDGE, data, blob_id=git_blob_id(data))
    seeds = parse_leaf(leaf)
    version = mcq_pipeline().version
    base = mcq_key(leaf, seeds, "teacher-a", version, 0, 20)
    assert base == mcq_key(leaf, seeds, "teacher-a", version, 0, 20)
    changed = data.replace(b"637884c0e1ca1cff965dfa0e75a565b1f391a835", b"1111111111111111111111111111111111111111")
    leaf2 = LeafFile(KNOWLEDGE, changed, blob_id=git_blob_id(changed))
    variants = {
        mcq_key(leaf, seeds, "teacher-b", version, 0, 20),  # another teacher
        mcq_key(leaf, seeds, "teacher-a", "2+x", 0, 20),  # another pipeline version
        mcq_key(leaf, seeds, "teacher-a", version, 1, 20),  # another seed
        mcq_key(leaf, seeds, "teacher-a", version, 0, 21),  # another size
        mcq_key(leaf2, parse_leaf(leaf2), "teacher-a", version, 0, 20),  # another document commit
    }
    assert base not in variants and len(variants) == 5


def test_choice_is_the_best_normalised_option():
    items = [MCQ("s0", "k", "Q?", ("a", "b", "c", "d"), 1), MCQ("s1", "k", "Q?", ("a", "b", "c", "d"), 0)]
    lls = [
        LogLikelihood(-8.0, 4, False),  # mean -2
        LogLikelihood(-3.0, 3, True),  # mean -1: best, and correct
        LogLikelihood(-2.5, 1, False),  # mean -2.5 (the best total, but not per token)
        LogLikelihood(-9.0, 3, False),
        LogLikelihood(-4.0, 2, False),  # mean -2
        LogLikelihood(-2.0, 2, False),  # mean -1: best, wrong
        LogLikelihood(-6.0, 2, False),
        LogLikelihood(-6.0, 2, False),
    ]
    r = choose(items, lls)
    assert (r[0].choice, r[0].correct) == (1, True)
    assert (r[1].choice, r[1].correct) == (1, False)
    assert r[0].to_dict()["scores"] == [-2.0, -1.0, -2.5, -3.0]


def test_seed_questions_use_the_contributor_s_answer_as_key_and_other_answers_as_wrong_options():
    from lab_ci.eval.mcq import merge_questions, seed_mcqs

    data = (EXAMPLE_TAXONOMY / KNOWLEDGE).read_bytes()
    seeds = parse_leaf(LeafFile(KNOWLEDGE, data))
    items = seed_mcqs(seeds, seed=0)
    assert len(items) == len(seeds.examples) == 15
    answers = {e.answer for e in seeds.examples}
    for m, e in zip(items, seeds.examples):
        assert m.origin == "seed" and m.id == f"seed:{e.id}" and m.seed_ids == (e.id,)
        assert m.question == e.question  # a knowledge question is asked without its context
        assert m.options[m.answer] == e.answer
        assert set(m.options) <= answers and len(set(m.options)) == 4
        others = [x for x in seeds.examples if x.answer in m.options and x is not e]
        assert all(x.context != e.context for x in others)  # wrong options from other sections
    assert seed_mcqs(seeds, seed=0) == items and [m.answer for m in seed_mcqs(seeds, seed=1)] != [
        m.answer for m in items
    ]
    # a teacher question that repeats a seed question is left out: the contributor's key wins
    teacher = [
        MCQ("s0", KNOWLEDGE, items[0].question + " ", ("a", "b", "c", "d"), 1),
        MCQ("s1", KNOWLEDGE, "Which colour is the band below the lantern room?", ("red", "b", "c", "d"), 0),
    ]
    merged = merge_questions(items, teacher)
    assert merged[: len(items)] == items and [m.id for m in merged[len(items) :]] == ["s1"]
    # fewer than four distinct answers: no seed questions
    few = parse_leaf(
        LeafFile(
            "knowledge/x/qna.yaml",
            b"version: 3\ndomain: d\ndocument_outline: o\ncreated_by: x\nseed_examples:\n"
            b"  - context: c\n    questions_and_answers:\n"
            b"      - {question: q1, answer: a}\n      - {question: q2, answer: b}\n      - {question: q3, answer: A}\n",
        )
    )
    assert seed_mcqs(few) == []


def test_a_seed_answer_too_long_to_be_an_option_is_left_out():
    """An option must fit any model's context whole (a longer continuation is an error),
    so a contributor's 3,000-character answer is neither a key nor a wrong option."""
    from lab_ci.eval.mcq import MAX_OPTION_CHARS, seed_mcqs

    data = (EXAMPLE_TAXONOMY / KNOWLEDGE).read_bytes()
    long = "Three keepers lived on the island at any time. " * 70
    assert len(long) > MAX_OPTION_CHARS
    data = data.replace(b"Three keepers lived on the island at any time, working in shifts.", long.strip().encode())
    seeds = parse_leaf(LeafFile(KNOWLEDGE, data))
    items = seed_mcqs(seeds)
    assert len(items) == 14 and all(len(o) <= MAX_OPTION_CHARS for m in items for o in m.options)
