"""render_markdown is pure: feed it hostile leaves and generated text."""

import re

from lab_ci.preview.model import MARKER, LeafPreview, PrecheckItem, PreviewResult
from lab_ci.preview.render import (
    DEFAULT_LIMIT,
    GITHUB_COMMENT_LIMIT,
    ZWSP,
    code_block,
    html_text,
    md_inline,
    render_markdown,
)

HOSTILE = [
    "@octocat please look",
    "<script>alert(1)</script>",
    "</details><img src=x onerror=alert(1)>",
    "```\n</details>\n@everyone\n```",
    "````` five backticks",
    "[click me](https://evil.example/x) ![img](https://evil.example/t.png)",
    "| col | breaks | table |",
    "<!-- lab-ci:preview -->",
    "&lt;already escaped&gt; & more",
    "line one\nline two\r\n# heading?",
    "\u202eRTL override\x00nul\x1b[31m",
]


def result_with(text):
    rec = {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": text},
            {"role": "assistant", "content": text},
        ],
        "metadata": {"seed_ids": [text], "judge_scores": {"score": text}},
    }
    grounded = {**rec, "fields": {"context": text, "question": text, "answer": text}}
    knowledge = {
        **rec,
        "metadata": {**rec["metadata"], "document_source": text + "#2", "document_heading": text},
        "fields": {"question": text, "answer": text, "document": text, "document_source": text},
    }
    rej = {
        "reason": text,
        "block": text,
        "detail": text,
        "fields": {"question": text, "gen_raw": text, "document_source": text, "document_heading": text},
        "metadata": {"seed_ids": [text]},
    }
    leaf = LeafPreview(
        path="compositional_skills/x/qna.yaml",
        status="previewed",
        pipeline=text,
        pipeline_version=text,
        accepted=[rec, grounded, knowledge],
        rejected=[rej],
        stats={"accepted": 3, "rejected": 1, "candidates": 4, "by_reason": {text: 1}},
        timings={"total_s": 1.5},
        hints=[text],
        precheck=[PrecheckItem(text, text, text, text, 0.5, 0.25)],
    )
    bad = LeafPreview(
        path=text,
        status="invalid",
        reason=text,
        diagnostics=[{"line": 1, "column": 2, "message": text, "rule": text, "source": text, "hint": text}] * 7,
    )
    failed = LeafPreview(path=text, status="failed", reason=text)
    empty = LeafPreview(path=text, status="empty")
    return PreviewResult(
        leaves=[leaf, bad, failed, empty],
        teacher={"id": text, "name": text},
        precheck_model={"name": text},
        base="main",
        head=text,
        full_output=text,
        check_url=text,
    )


def outside_code(md: str) -> str:
    """The comment with fenced code blocks removed (what GitHub interprets)."""
    out, fence = [], None
    for line in md.split("\n"):
        m = re.match(r"^(`{3,})", line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if line.strip() == fence:
                fence = None
            continue
        out.append(line)
    assert fence is None, "a code block was left open"
    return "\n".join(out)


def test_hostile_text_cannot_mention_inject_html_or_break_out():
    for text, limit in [(t, lim) for t in HOSTILE for lim in (DEFAULT_LIMIT, 3000, 900)]:
        md = render_markdown(result_with(text * (40 if limit < DEFAULT_LIMIT else 1)), limit=limit)
        assert len(md) <= limit
        assert md.startswith(MARKER + "\n")
        assert md.count(MARKER) == 1
        visible = outside_code(md)
        # no mentions: every @ outside code is followed by a zero-width space
        assert re.search(r"@(?!\u200b)", visible) is None, text
        # the only HTML is ours
        tags = set(re.findall(r"</?([a-zA-Z]+)", visible))
        assert tags <= {"details", "summary", "sub"}, (text, tags)
        assert visible.count("<details>") == visible.count("</details>")
        # no live links or images
        assert "](" not in visible.replace("\\](", "").replace("](https://", "") or "\\[" in visible
        assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(", visible), text


def test_code_block_fence_is_longer_than_any_backtick_run():
    block = code_block("a ````` b\n```\nc")
    fence = block.split("\n")[0].removesuffix("text")
    assert len(fence) == 6
    assert block.endswith("\n" + fence)
    inner = block.split("\n")[1:-1]
    assert all(line.strip() != fence for line in inner)


def test_inline_and_html_escaping():
    assert md_inline("<b>@x</b> [a](b)") == "&lt;b&gt;@" + ZWSP + "x&lt;\\/b&gt; \\[a\\]\\(b\\)"
    assert html_text("a & <b> @c") == "a &amp; &lt;b&gt; @" + ZWSP + "c"
    assert md_inline("x" * 50, limit=10) == "x" * 9 + "…"


def test_invalid_leaf_says_not_previewed_and_why():
    md = render_markdown(result_with("bad"))
    assert "**Not previewed: the leaf is invalid.**" in md
    assert "line 1, column 2: bad" in md


def test_structure_of_a_previewed_leaf():
    md = render_markdown(result_with("Why is the sky blue?"))
    assert "### compositional\\_skills\\/x\\/qna\\.yaml" in md
    assert "<summary>Accepted samples (3)</summary>" in md
    assert "<summary>Rejected samples (1)</summary>" in md
    assert "Precheck: what" in md and "| 0.50 | 0.25 |" in md
    assert "**What you could improve:**" in md
    assert "3 accepted, 1 rejected of 4 candidates" in md


def test_empty_result():
    md = render_markdown(PreviewResult(leaves=[], teacher={"id": "t", "name": "t"}))
    assert "No changed leaves to preview." in md


# ------------------------------------------------------------------ contributor feedback (issue 12)


def record(user, assistant, seed_ids=("1", "3"), fields=None, **meta):
    return {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": user},
            {"role": "assistant", "content": assistant},
        ],
        "metadata": {"seed_ids": list(seed_ids), "judge_scores": {"pair_score": 3}, **meta},
        **({"fields": fields} if fields is not None else {}),
    }


def previewed(path="compositional_skills/x/qna.yaml", accepted=(), rejected=(), **kw):
    n = len(accepted) + len(rejected)
    return LeafPreview(
        path,
        "previewed",
        pipeline="freeform_skills",
        pipeline_version="2+abc",
        accepted=list(accepted),
        rejected=list(rejected),
        stats={"accepted": len(accepted), "rejected": len(rejected), "candidates": n, "seed_examples": 5},
        timings={"total_s": 0.5},
        **kw,
    )


def result(*leaves, **kw):
    return PreviewResult(leaves=list(leaves), teacher={"id": "gguf:abc:t.gguf", "name": "tiny"}, **kw)


def section(md: str, label: str) -> str:
    """The code block right after ``label:``."""
    m = re.search(rf"^{label}:\n\n```+text\n(.*?)\n```", md, re.MULTILINE | re.DOTALL)
    assert m, f"no {label} block in:\n{md}"
    return m.group(1)


def test_grounded_sample_shows_context_and_question_apart():
    context, question = "The build broke after commit abc: parse_date fails on ISO dates.", "Write a subject line."
    rec = record(
        f"{context}\n\n{question}",
        "Fix ISO date parsing",
        fields={"context": context, "question": question, "answer": "Fix ISO date parsing"},
    )
    md = render_markdown(result(previewed(accepted=[rec])))
    assert section(md, "Context") == context
    assert section(md, "Question") == question  # no longer context + question under one label
    assert section(md, "Answer") == "Fix ISO date parsing"


def test_knowledge_sample_names_its_document_chunk_and_heading():
    rec = record(
        "When was the lighthouse lit?",
        "In 1871.",
        fields={
            "question": "When was the lighthouse lit?",
            "answer": "In 1871.",
            "document": "It was first lit in 1871.",
        },
        document_source="kestrel-island/history.md#2",
        document_heading="Kestrel Island Lighthouse > History",
    )
    md = render_markdown(result(previewed("knowledge/x/qna.yaml", accepted=[rec])))
    assert (
        "Document passage: kestrel\\-island\\/history\\.md, chunk 3, section “Kestrel Island Lighthouse &gt; History”"
        in md
    )
    assert section(md, "Passage") == "It was first lit in 1871."


def test_plurals_seed_numbers_and_no_empty_rejected_block():
    one = render_markdown(result(previewed(accepted=[record("q", "a", seed_ids=["1"])]), samples=1))
    assert "1 leaf previewed" in one and "leaf/leaves" not in one
    assert "1 sample per leaf" in one and "sample(s)" not in one
    assert "1 accepted, 0 rejected of 1 candidate ·" in one
    assert "<summary>Rejected samples" not in one  # no empty "Rejected samples (0)" block
    assert "**Sample 1** · from seed 1 · pair\\_score 3" in one
    many = render_markdown(
        result(
            previewed("a/qna.yaml", rejected=[{"reason": "duplicate", "block": "dedupe", "fields": {"question": "q"}}]),
            previewed("b/qna.yaml", accepted=[record("q", "a", seed_ids=["1", "2", "5"])]),
            previewed("c/qna.yaml"),
        )
    )
    assert "3 leaves previewed" in many and "3 samples per leaf" in many
    assert "from seeds 1, 2 and 5" in many
    assert "No sample was accepted." in many and "<summary>Accepted samples (0)" not in many


def test_teacher_line_only_when_a_teacher_was_used():
    md = render_markdown(PreviewResult(leaves=[LeafPreview("x/qna.yaml", "deleted")], teacher=None))
    assert "Teacher:" not in md and "0 leaves previewed, 1 deleted" in md


def diag(line, rule, source, message, **kw):
    return {"severity": "error", "line": line, "column": 1, "rule": rule, "source": source, "message": message, **kw}


def test_invalid_leaf_lists_structural_errors_first_with_fixes_and_counts_the_rest():
    """pr/195-like: trailing spaces on earlier lines than the structural error."""
    diags = [diag(n, "trailing-spaces", "yamllint", "trailing spaces") for n in range(2, 9)]
    diags.append(diag(30, "required", "schema", "'version' is a required property", hint="Add `version: 3`."))
    diags.append(diag(12, "line-length", "yamllint", "line too long (130 > 120 characters)"))
    md = render_markdown(result(LeafPreview("compositional_skills/x/qna.yaml", "invalid", diagnostics=diags)))
    listed = [line for line in md.splitlines() if line.startswith("- ")]
    assert listed[0].startswith("- line 30, column 1: \\'version\\' is a required property (required)")
    assert "  Fix: Add \\`version\\: 3\\`\\." in md
    assert len(listed) == 6  # 5 errors and the count of the others
    assert listed[-1] == "- … and 4 more errors not shown: trailing\\-spaces × 3, line\\-length × 1"
    assert "`lab-ci check` found 9 errors:" in md
    assert "Shortened" not in md  # the full comment lists five and counts the rest: no note


def test_empty_leaf_is_not_a_failure_and_says_why():
    r = result(LeafPreview("compositional_skills/x/qna.yaml", "empty"))
    md = render_markdown(r)
    assert r.exit_code == 0
    assert "**Not previewed: the file is empty.**" in md and "accepts an empty" in md
    assert "1 empty (nothing to generate from)" in md


def big_leaf(path, n=40, size=3000):
    text = "word " * (size // 5)
    rejected = [
        {"reason": "duplicate", "block": "dedupe", "fields": {"question": text, "answer": text}} for _ in range(n)
    ]
    return previewed(path, accepted=[record(text, text) for _ in range(n)], rejected=rejected)


def test_a_huge_preview_fits_githubs_limit_and_says_what_it_left_out():
    r = result(*(big_leaf(f"compositional_skills/l{i}/qna.yaml") for i in range(5)), full_output="preview.json")
    md = render_markdown(r)
    assert len(md) <= DEFAULT_LIMIT < GITHUB_COMMENT_LIMIT
    assert all(f"l{i}\\/qna\\.yaml" in md for i in range(5))  # every leaf is still there
    note = next(line for line in md.splitlines() if line.startswith("> **Shortened"))
    shown = md.count("**Sample ") + md.count("**Rejected ")
    hidden = int(re.search(r"([\d,]+) samples not shown", note).group(1).replace(",", ""))
    assert shown + hidden == 5 * 80  # every sample is either shown or counted
    assert "the full preview is in preview\\.json" in note
    assert md.count("*… and ") >= 5  # each shortened list says so where it is cut
    # a link when the caller has one; the command otherwise
    linked = render_markdown(result(big_leaf("a/qna.yaml", n=60), full_output="https://ci.example/run/1"))
    assert "[the full preview](https://ci.example/run/1)" in linked
    bare = render_markdown(result(big_leaf("a/qna.yaml", n=60)))
    assert "`lab-ci preview --format json` prints every sample" in bare


def test_thousands_of_leaves_keep_what_fits_and_count_the_rest():
    leaves = [
        LeafPreview(
            f"compositional_skills/area/leaf_{i:04d}/qna.yaml", "invalid", diagnostics=[diag(1, "r", "schema", "m")]
        )
        for i in range(3000)
    ]
    md = render_markdown(result(*leaves), limit=GITHUB_COMMENT_LIMIT)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    kept = md.count("\n### compositional")
    m = re.search(r"### … and ([\d,]+) more leaves \(([\d,]+) invalid\)", md)
    assert m and kept + int(m.group(1).replace(",", "")) == 3000
    assert f"{int(m.group(1).replace(',', '')):,} leaves" in md.split("\n> ")[1]  # counted in the note too
    assert md.startswith(MARKER) and md.rstrip().endswith("</sub>")
