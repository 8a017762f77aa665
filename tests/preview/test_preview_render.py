"""render_markdown is pure: feed it hostile leaves and generated text."""

import re

from lab_ci.preview.model import MARKER, LeafPreview, PrecheckItem, PreviewResult
from lab_ci.preview.render import ZWSP, code_block, html_text, md_inline, render_markdown

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
    rej = {"reason": text, "block": text, "detail": text, "fields": {"question": text, "gen_raw": text}, "metadata": {}}
    leaf = LeafPreview(
        path="compositional_skills/x/qna.yaml",
        status="previewed",
        pipeline=text,
        pipeline_version=text,
        accepted=[rec],
        rejected=[rej],
        stats={"accepted": 1, "rejected": 1, "candidates": 2, "by_reason": {text: 1}},
        timings={"total_s": 1.5},
        hints=[text],
        precheck=[PrecheckItem(text, text, text, text, 0.5, 0.25)],
    )
    bad = LeafPreview(
        path=text, status="invalid", reason=text, diagnostics=[{"line": 1, "column": 2, "message": text, "rule": text}]
    )
    return PreviewResult(
        leaves=[leaf, bad], teacher={"id": text, "name": text}, precheck_model={"name": text}, base="main", head=text
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
    for text in HOSTILE:
        md = render_markdown(result_with(text))
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
    assert "<summary>Accepted samples (1)</summary>" in md
    assert "<summary>Rejected samples (1)</summary>" in md
    assert "Precheck: what" in md and "| 0.50 | 0.25 |" in md
    assert "**What you could improve:**" in md
    assert "1 accepted, 1 rejected of 2 candidates" in md


def test_empty_result():
    md = render_markdown(PreviewResult(leaves=[], teacher={"id": "t", "name": "t"}))
    assert "No changed leaves to preview." in md
