"""Block logic and bookkeeping with a scripted teacher (no model: pure logic only).
The same pipelines run on the real tiny teacher in test_sdg_pipelines_tiny.py."""

import itertools
import textwrap

from sdg_scripted_teacher import ScriptedTeacher

from lab_ci.sdg.api import generate_leaf
from lab_ci.taxonomy.leaf import LeafFile

SKILL = textwrap.dedent("""
    version: 3
    created_by: someone
    task_description: Give the antonym of a word.
    seed_examples:
      - {question: "What is the opposite of hot?", answer: Cold.}
      - {question: "What is the opposite of up?", answer: Down.}
      - {question: "What is the opposite of big?", answer: Small.}
""").encode()


def leaf(data=SKILL, path="compositional_skills/antonyms/qna.yaml"):
    return LeafFile(path, data)


def test_every_candidate_is_accepted_or_rejected_with_a_reason():
    counter = itertools.count()

    def question(prompt):
        i = next(counter)
        return [
            "[Start of Question] What is the opposite of wet? [End of Question]",  # accepted path
            "garbage with no words that matter",  # fallback whole -> judged 0
            "[Start of Question] What is the opposite of hot? [End of Question]",  # copies a seed
            "[Start of Question] What is the opposite of wet? [End of Question]",
        ][i % 4]  # duplicate of 0

    t = ScriptedTeacher(
        [
            ("Write ONE new question", question),
            ("Judge whether the question below", lambda p: "Score: 0" if "garbage" in p else "ok. Score: 1"),
            ("Answer the next question", "[Start of Response] Dry. [End of Response]"),
            ("Rate the answer", "not parseable at all"),
        ]
    )
    g = generate_leaf(leaf(), t, samples=4, seed=1)
    reasons = sorted(r["reason"] for r in g.rejected)
    assert reasons == ["copies-seed", "duplicate", "question-judged-poor", "unparseable"]
    assert g.accepted == []
    assert g.stats["candidates"] == 4 == len(g.accepted) + len(g.rejected)
    unparseable = next(r for r in g.rejected if r["reason"] == "unparseable")
    assert unparseable["block"] == "judge_pairs"
    assert unparseable["fields"]["judge_pairs_raw"] == "not parseable at all"
    assert unparseable["fields"]["answer"] == "Dry."
    assert unparseable["metadata"]["judge_scores"] == {"question_score": 1}
    # one batched call per LLM block, never one request at a time
    assert all(n == 1 for _, n in t.calls) and len(t.calls) == 4


def test_accepted_records_have_the_training_shape():
    words = iter(["north", "light"])
    t = ScriptedTeacher(
        [
            (
                "Write ONE new question",
                lambda p: f"[Start of Question] Which word means the reverse of {next(words)}? [End of Question]",
            ),
            ("Judge whether the question below", "Score: 1"),
            ("Answer the next question", "[Start of Response] A word. [End of Response]"),
            ("Rate the answer", "Score: 3"),
        ]
    )
    g = generate_leaf(leaf(), t, samples=2, seed=0)
    assert g.pipeline_name == "freeform_skills"
    for rec in g.accepted:
        assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant"]
        meta = rec["metadata"]
        assert meta["leaf"] == "compositional_skills/antonyms/qna.yaml"
        assert meta["teacher"] == "scripted:test"
        assert meta["pipeline"] == "freeform_skills" and meta["pipeline_version"] == g.pipeline_version
        assert meta["judge_scores"] == {"question_score": 1, "pair_score": 3}
        assert set(meta["seed_ids"]) <= {"1", "2", "3"} and meta["seed_ids"]
    assert len(g.accepted) + len(g.rejected) == g.stats["candidates"] == 2


def test_local_leaf_sampling_is_seeded():
    def run(seed):
        t = ScriptedTeacher([("", "x")])
        g = generate_leaf(leaf(), t, samples=5, seed=seed)
        return [r["metadata"]["seed_ids"] for r in g.rejected]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_samples_per_set_share_one_draw_of_examples():
    """Consecutive candidates of a set send the same examples (one prompt prefix); the
    next set draws again; without the option every candidate draws its own."""
    from lab_ci.sdg.blocks import RunContext, SampleSeedsBlock
    from lab_ci.sdg.seeds import parse_leaf

    six = SKILL + b"".join(f'  - {{question: "Opposite of {w}?", answer: X.}}\n'.encode() for w in "abc")
    ctx = RunContext(teacher=None, seeds=parse_leaf(leaf(six)), samples=8, seed=1)
    rows = SampleSeedsBlock("seeds", {"k": 3, "samples_per_set": 4}, ctx).generate([])
    assert len(rows) == 8 and [r["_id"] for r in rows] == [f"s{i}" for i in range(8)]
    for block in (rows[:4], rows[4:]):
        assert len({(tuple(r["seed_ids"]), r["examples"]) for r in block}) == 1
    assert rows[0]["seed_ids"] != rows[4]["seed_ids"]
    single = SampleSeedsBlock("seeds", {"k": 3}, RunContext(teacher=None, seeds=ctx.seeds, samples=8, seed=1)).generate(
        []
    )
    assert len({tuple(r["seed_ids"]) for r in single}) > 2


def test_truncated_answers_are_rejected_as_truncated():
    from lab_ci.teacher.base import Completion

    class Truncating(ScriptedTeacher):
        def chat(self, conversations, params, n=1):
            out = super().chat(conversations, params, n)
            if "Answer the next question" in conversations[0][-1].content:
                return [[Completion(c.text, finish_reason="length") for c in cs] for cs in out]
            return out

    t = Truncating(
        [
            ("Write ONE new question", "[Start of Question] Opposite of tall? [End of Question]"),
            ("Judge whether the question below", "Score: 1"),
            ("Answer the next question", "[Start of Response] Sho"),
        ]
    )
    g = generate_leaf(leaf(), t, samples=1)
    assert [r["reason"] for r in g.rejected] == ["truncated"]


def test_knowledge_leaf_document_errors_name_leaf_and_field(tmp_path):
    import pytest

    from lab_ci.sdg.documents import DocumentFetcher
    from lab_ci.sdg.errors import DocumentError

    base = textwrap.dedent("""
        version: 3
        domain: Birds
        document_outline: Birds.
        seed_examples:
          - context: Birds fly.
            questions_and_answers:
              - {question: "Do birds fly?", answer: "Yes."}
    """)
    t = ScriptedTeacher([("", "x")])
    with pytest.raises(DocumentError, match=r"^knowledge/birds/qna\.yaml: document: "):
        generate_leaf(leaf(base.encode(), "knowledge/birds/qna.yaml"), t, samples=1)
    bad = base + "document: {repo: 'https://github.com/x/y.git', commit: main, patterns: ['*.md']}\n"
    fetcher = DocumentFetcher(cache_dir=tmp_path)
    with pytest.raises(DocumentError, match=r"^knowledge/birds/qna\.yaml: document\.commit: commit must be a hex"):
        generate_leaf(leaf(bad.encode(), "knowledge/birds/qna.yaml"), t, samples=1, documents=fetcher)
    assert fetcher.git_calls == 0 and t.calls == []
