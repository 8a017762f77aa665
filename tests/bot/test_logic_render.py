"""Escaping of user-written text the bot echoes, and check run bodies (pure)."""

import re

import pytest

from lab_ci.bot import render
from lab_ci.check.diagnostics import Diagnostic, FileResult, Report

HOSTILE = [
    "@octocat please look",
    "cc @org/security-team",
    "fixes #1 and GH-2",
    "<img src=x onerror=alert(1)>",
    "</details><script>alert(1)</script>",
    "```\n</details>\n@everyone\n```",
    "[click](javascript:alert(1))",
    "**bold** _it_ `code` ~~strike~~ | pipe |",
    "\u202eevil\u202c bidi\x00\x07",
    "<!-- lab-ci:preview -->",
]


@pytest.mark.parametrize("s", HOSTILE)
def test_text_defuses_everything(s):
    out = render.text(s)
    assert "<" not in out and ">" not in out.replace("&gt;", "")
    assert not re.search(r"@\w", out), out  # no mention survives
    assert not re.search(r"(?<![\\&])#\d", out)
    assert "\n" not in out and "\u202e" not in out and "\x00" not in out
    assert "`" not in out.replace("\\`", "")


def test_text_keeps_plain_words_readable():
    assert render.text("seed examples: 5") == "seed examples: 5"
    assert render.text("a.b") == "a.b"  # the shared escaper leaves dots alone
    assert render.text("x" * 50, max_len=10) == "x" * 9 + "…"


@pytest.mark.parametrize("s", ["plain", "has ` one", "has `` two ``", "```", "`edge`"])
def test_code_span_cannot_be_escaped(s):
    out = render.code(s)
    ticks = re.match(r"`+", out).group(0)
    inner = out[len(ticks) : -len(ticks)]
    assert out.endswith(ticks)
    assert ticks not in inner  # the content holds no run as long as the delimiter


@pytest.mark.parametrize("s", HOSTILE + ["````` five", "a\n```\nb"])
def test_fence_is_longer_than_any_backtick_run(s):
    out = render.fence(s, "yaml")
    first = out.split("\n", 1)[0]
    fence = re.match(r"`+", first).group(0)
    body = out[len(first) + 1 : -len(fence)]
    assert out.endswith("\n" + fence)
    assert all(len(run) < len(fence) for run in re.findall(r"`+", body))


def test_details_escapes_summary():
    out = render.details("</summary><b>@admin</b>", render.fence("x"))
    assert out.startswith("<details><summary>&lt;/summary&gt;")
    assert out.count("</details>") == 1 and "@admin" not in out


def test_truncate_fits_and_closes_fences():
    md = "intro\n```\n" + ("line\n" * 20000) + "```\nend"
    out = render.truncate(md, 10000)
    assert len(out) <= 10000
    assert out.rstrip().endswith("limit.*")
    assert out.count("```") % 2 == 0  # the fence was closed before the note
    assert render.truncate("short") == "short"
    big = render.truncate("<details><summary>x</summary>\n\n" + "y\n" * 40000)
    assert len(big) <= render.GITHUB_TEXT_LIMIT and big.count("<details") == big.count("</details>")


def _report(n_errors: int) -> Report:
    f = FileResult("compositional_skills/a/qna.yaml", change="added")
    for i in range(n_errors):
        f.diagnostics.append(Diagnostic("error", "schema", "required", f"missing {i} <b>", line=i + 1, column=3))
    w = FileResult(
        "knowledge/b/qna.yaml",
        [Diagnostic("warning", "yamllint", "trailing-spaces", "trailing spaces", line=7, column=12)],
        change="modified",
    )
    gone = FileResult("knowledge/c/qna.yaml", [Diagnostic("warning", "yaml", "x", "y")], change="deleted")
    return Report([f, w, gone])


def test_annotations_on_exact_lines_and_batches_of_50():
    anns = render.annotations(_report(120))
    assert len(anns) == 121  # deleted files get none
    a0 = anns[0]
    assert a0 == {
        "path": "compositional_skills/a/qna.yaml",
        "start_line": 1,
        "end_line": 1,
        "start_column": 3,
        "end_column": 3,
        "annotation_level": "failure",
        "message": "missing 0 <b>",
        "title": "schema/required",
    }
    warn = anns[-1]
    assert (warn["path"], warn["start_line"], warn["start_column"], warn["annotation_level"]) == (
        "knowledge/b/qna.yaml",
        7,
        12,
        "warning",
    )
    chunks = list(render.batches(anns))
    assert [len(c) for c in chunks] == [50, 50, 21]
    assert [a for c in chunks for a in c] == anns


def test_check_title_and_summary():
    r = _report(2)
    assert render.check_title(r) == "1 of 2 leaf files invalid: 2 errors"
    assert render.check_title(Report([])) == "No taxonomy leaves changed"
    s = render.check_summary(r)
    assert "**2** files checked" in s and "<b>" not in s
    huge = render.check_summary(_report(3000))
    assert len(huge) <= render.GITHUB_TEXT_LIMIT and "truncated" in huge


def test_check_summary_with_hostile_file_names_and_messages():
    from lab_ci.check.formats.markdown import render as md_render

    f = FileResult(
        "compositional_skills/@admin <b>x</b>/```/qna.yaml",
        [Diagnostic("error", "schema", "type", "@octocat </details><script>x</script> #12", line=3)],
        change="added",
    )
    r = Report([f])
    s = render.check_summary(r, markdown=md_render(r))
    assert not re.search(r"@\w", s) and "<script" not in s and "</details>" not in s and "<b>" not in s
    ann = render.annotations(r)[0]  # annotations are plain text in GitHub's UI, kept verbatim
    assert ann["path"] == f.path and ann["start_line"] == 3


@pytest.mark.parametrize("s", HOSTILE + ["see octo/repo#12 and GH-3", "- list marker", "1. numbered"])
def test_bot_and_check_summary_use_one_escaper(s):
    """D1: the bot's inline text and `lab-ci check --format markdown` escape alike."""
    from lab_ci.check.formats.markdown import escape_markdown

    assert render.text(s) == escape_markdown(" ".join(s.split()), limit=2000)
    assert not re.search(r"(?<![\\&])#\d|/\w+#\d|GH-\d", render.text(s))
