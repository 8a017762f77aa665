"""Every built-in pipeline end to end on the real tiny teacher (llama.cpp runtime).

A 0.7M-parameter teacher writes poor text, so many candidates are rejected: these
tests assert on the structure and bookkeeping, not on quality."""

import json

import pytest

from lab_ci.sdg.api import PIPELINE_VERSION, generate_leaf, write_jsonl
from lab_ci.taxonomy.documents import DocumentFetcher
from lab_ci.taxonomy.leaf import LeafFile

EXAMPLE_DOCS_URL = "https://github.com/lab-ci/example-documents.git"
FREEFORM = "compositional_skills/linguistics/antonyms/qna.yaml"
GROUNDED = "compositional_skills/extraction/commit_messages/summary/qna.yaml"
KNOWLEDGE = "knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml"


@pytest.fixture(scope="module")
def teacher(tiny_models):
    from lab_ci.teacher import load_teacher

    t = load_teacher(str(tiny_models["teacher"]))
    yield t
    t.close()


def leaf(path):
    from labtest import EXAMPLE_TAXONOMY

    return LeafFile(path, (EXAMPLE_TAXONOMY / path).read_bytes())


def check_generation(gen, path, pipeline, teacher):
    assert gen.pipeline_name == pipeline
    assert gen.pipeline_version == PIPELINE_VERSION[pipeline]
    assert len(gen.accepted) + len(gen.rejected) == gen.stats["candidates"]
    assert gen.stats["accepted"] == len(gen.accepted) and gen.stats["rejected"] == len(gen.rejected)
    assert sum(gen.stats["by_reason"].values()) == len(gen.rejected)
    assert gen.stats["usage"]["requests"] >= gen.stats["candidates"]  # the teacher really ran
    assert gen.stats["usage"]["completion_tokens"] > 0
    for rec in gen.accepted:
        assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"] for m in rec["messages"])
        meta = rec["metadata"]
        assert meta["leaf"] == path and meta["teacher"] == teacher.info.id
        assert meta["pipeline"] == pipeline and meta["pipeline_version"] == gen.pipeline_version
        assert meta["seed_ids"] and all(v is not None for v in meta["judge_scores"].values())
        assert meta["judge_scores"]
    for rej in gen.rejected:
        assert rej["reason"] and rej["block"]
        assert rej["metadata"]["leaf"] == path and rej["metadata"]["seed_ids"]
        if rej["reason"] in ("low-score", "question-judged-poor", "answer-judged-poor", "irrelevant", "unfaithful"):
            assert rej["metadata"]["judge_scores"], rej
        if rej["reason"] == "unparseable":
            assert any(k.endswith("_raw") for k in rej["fields"])
    assert "total_s" in gen.timings and gen.timings["blocks_s"]


def test_freeform_skills_on_tiny_teacher(teacher, tmp_path):
    gen = generate_leaf(leaf(FREEFORM), teacher, samples=2, seed=0, max_tokens=32)
    check_generation(gen, FREEFORM, "freeform_skills", teacher)
    assert gen.stats["candidates"] == 2
    # JSONL round trip of the accepted records
    n = write_jsonl(gen.accepted, tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert n == len(lines) == len(gen.accepted)
    assert [json.loads(x) for x in lines] == gen.accepted
    # the same seed gives the same data
    again = generate_leaf(leaf(FREEFORM), teacher, samples=2, seed=0, max_tokens=32)
    assert again.accepted == gen.accepted and again.rejected == gen.rejected


def test_grounded_skills_on_tiny_teacher(teacher):
    gen = generate_leaf(leaf(GROUNDED), teacher, samples=2, seed=1, max_tokens=32)
    check_generation(gen, GROUNDED, "grounded_skills", teacher)
    for rec in gen.accepted:  # the context goes into the user turn
        assert "\n\n" in rec["messages"][1]["content"]


def test_knowledge_on_tiny_teacher_with_mirrored_documents(teacher, example_docs_repo, tmp_path):
    fetcher = DocumentFetcher(cache_dir=tmp_path / "docs", mirrors={EXAMPLE_DOCS_URL: str(example_docs_repo)})
    gen = generate_leaf(leaf(KNOWLEDGE), teacher, samples=2, seed=0, documents=fetcher, max_tokens=32)
    check_generation(gen, KNOWLEDGE, "knowledge", teacher)
    assert gen.stats["documents"] >= 1 and gen.stats["chunks"] >= 1
    for rec in gen.accepted + [r for r in gen.rejected]:
        src = rec["metadata"].get("document_source") or rec.get("fields", {}).get("document_source")
        if src:
            assert src.startswith("kestrel-island/")
    assert fetcher.git_calls > 0


def test_user_pipeline_without_judges_accepts_real_generations(teacher, tmp_path):
    """A pipeline from --pipeline-dir (no judges) on the real teacher: records are accepted
    and carry the override's name and version."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "ask.txt").write_text(
        "{{examples}}\n\n[Start of Question]\n{{seed_question}}\n[End of Question]\n"
    )
    (tmp_path / "quick.yaml").write_text(
        'version: "0.1"\nname: quick\nblocks:\n'
        "  - {name: seeds, type: sample_seeds, config: {k: 2}}\n"
        "  - name: answer\n    type: llm\n"
        '    config: {prompt: ask.txt, fields: {answer: {start: "[Start of Response]", end: "[End of Response]", fallback: whole}}}\n'
        '  - {name: out, type: to_messages, config: {user: "{{seed_question}}", assistant: "{{answer}}"}}\n'
    )
    gen = generate_leaf(
        leaf(FREEFORM), teacher, samples=2, seed=0, pipeline="quick", pipeline_dirs=[tmp_path], max_tokens=24
    )
    assert gen.pipeline_name == "quick" and gen.pipeline_version.startswith("0.1+")
    assert len(gen.accepted) + len(gen.rejected) == 2
    assert gen.accepted, gen.rejected  # 'fallback: whole' takes any non-empty text
    for rec in gen.accepted:
        assert [m["role"] for m in rec["messages"]] == ["user", "assistant"]
        assert rec["messages"][1]["content"].strip()
        assert rec["metadata"]["pipeline"] == "quick"


@pytest.mark.parametrize(
    "path, pipeline, shared",
    [
        (FREEFORM, "freeform_skills", "examples"),
        (GROUNDED, "grounded_skills", "context"),
    ],
)
def test_answer_prompts_reuse_the_question_prompts_kv_cells(teacher, path, pipeline, shared):
    """The answer prompt repeats the question prompt's first part on purpose (task,
    seed examples and, grounded, the new context): the local teacher keeps the
    question call's prompt cells and the answer call evaluates only what follows.
    The question and answer fields are set by hand: the tiny teacher's own output
    would decide which rows get that far."""
    from lab_ci.sdg.blocks import BLOCK_TYPES, RunContext
    from lab_ci.sdg.pipeline import load_pipeline
    from lab_ci.sdg.text import render
    from lab_ci.taxonomy.seeds import parse_leaf
    from lab_ci.teacher.base import Message
    from lab_ci.teacher.templates import format_chat

    pipe = load_pipeline(pipeline)
    seeds = parse_leaf(leaf(path))
    ctx = RunContext(teacher=teacher, seeds=seeds, samples=4, seed=0, max_tokens_cap=4, prompts=pipe.prompts)
    blocks = {b.name: BLOCK_TYPES[b.type](b.name, b.config, ctx) for b in pipe.blocks}
    rows = blocks["seeds"].generate([])
    rows = [{**r, "question": seeds.examples[0].question, "context": seeds.examples[0].context or ""} for r in rows]
    q_prompt = blocks["gen_questions"].template
    a_prompt = blocks["gen_answers"].template
    head = q_prompt[: q_prompt.index(f"{{{{{shared}}}}}") + len(f"{{{{{shared}}}}}")]
    assert a_prompt.startswith(head), (
        f"{pipeline}: the answer prompt must start like the question prompt up to {{{{{shared}}}}}"
    )

    teacher.forget_prompts()
    blocks["gen_questions"].generate(rows)
    blocks["judge_questions"].generate(rows)  # a call in between: reuse reaches two calls back
    blocks["gen_answers"].generate(rows)
    stats = teacher.last_stats
    # every row reuses at least its question prompt's chat text up to the end of {{shared}}
    system = blocks["gen_questions"].system
    heads = [
        format_chat([Message("system", system), Message("user", render(head, r))], teacher.chat_format) for r in rows
    ]
    heads = [h[: h.index(render(head, r)) + len(render(head, r))] for h, r in zip(heads, rows)]
    assert stats["reused_tokens"] >= sum(len(teacher.tokenize(h)) - 2 for h in heads), stats
    assert stats["evaluated_tokens"] + stats["reused_tokens"] <= stats["prompt_tokens"]
    assert ctx.usage["prompt_tokens_reused"] >= stats["reused_tokens"]
    assert ctx.usage["prompt_tokens_evaluated"] < ctx.usage["prompt_tokens"]
