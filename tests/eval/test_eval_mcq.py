"""MMLU-Branch question sets: built from pipeline records, shuffled, keyed, scored."""

from __future__ import annotations

from collections import Counter

from lab_ci.eval.hf import LogLikelihood
from lab_ci.eval.mcq import MCQ, MCQSet, build_mcqs, choose, mcq_key, mcq_pipeline
from lab_ci.sdg.seeds import parse_leaf
from lab_ci.taxonomy.leaf import LeafFile, git_blob_id
from labtest import EXAMPLE_TAXONOMY

KNOWLEDGE = "knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml"


def record(i, question, answer, wrong):
    return {
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "metadata": {
            "sample_id": f"s{i}",
            "seed_ids": ["0.1"],
            "document_source": "doc.md#0",
            **{f"wrong_{k}": w for k, w in enumerate(wrong, 1)},
        },
    }


def test_records_become_shuffled_questions_whose_key_follows_the_right_answer():
    recs = [
        record(i, f"Question {i}?", f"Right {i}.", [f"Wrong {i}a.", f"Wrong {i}b.", f"Wrong {i}c."]) for i in range(40)
    ]
    items, rejected = build_mcqs(recs, "k/qna.yaml", seed=1)
    assert rejected == {} and len(items) == 40
    for i, m in enumerate(items):
        assert m.options[m.answer] == f"Right {i}." and len(m.options) == 4
        assert sorted(m.options) == sorted([f"Right {i}.", f"Wrong {i}a.", f"Wrong {i}b.", f"Wrong {i}c."])
        assert m.id == f"s{i}" and m.source == "doc.md#0" and m.seed_ids == ("0.1",)
    positions = Counter(m.answer for m in items)
    assert len(positions) == 4 and max(positions.values()) < 20  # the key's position says nothing
    again, _ = build_mcqs(recs, "k/qna.yaml", seed=1)
    assert again == items  # seeded
    other, _ = build_mcqs(recs, "k/qna.yaml", seed=2)
    assert [m.answer for m in other] != [m.answer for m in items]


def test_questions_with_empty_or_repeated_options_are_rejected_with_a_reason():
    recs = [
        record(0, "Q?", "A.", ["B.", "", "C."]),
        record(1, "Q?", "Same answer", ["same answer!", "B.", "C."]),  # equal after normalising
        record(2, "", "A.", ["B.", "C.", "D."]),
        record(3, "Good?", "A.", ["B.", "C.", "D."]),
    ]
    items, rejected = build_mcqs(recs, "k", seed=0)
    assert [m.question for m in items] == ["Good?"]
    assert rejected == {"empty-option": 2, "same-options": 1}


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
