"""``--format markdown``: the summary a pull-request comment or job summary embeds.

A heading with the counts, then a table per file with problems (line, column, severity,
rule, message with its hint and related locations); a file with many problems is
folded in ``<details>``. Everything users wrote (file names, messages quoting YAML)
goes through :func:`escape_markdown`, so it can neither inject HTML, mention people,
nor break out of the table.

The report always fits GitHub's 65,535-character limit for comments and check-run
summaries: :func:`render` stops adding files at ``limit`` characters (default 60,000,
leaving room for whoever embeds it) and says how many files and problems it left out.
"""

from __future__ import annotations

import re

from ..diagnostics import FileResult, Report
from . import _plural, rule_id

#: Files with more problems than this are folded in <details>.
FOLD_AFTER = 5
#: At most this many rows per file (the rest is counted).
MAX_ROWS = 50
#: Longer messages and hints are cut.
MAX_MESSAGE = 300
MAX_HINT = 400
#: GitHub refuses comment bodies and check-run summaries longer than this.
GITHUB_LIMIT = 65_535
#: What :func:`render` stays within by default: GitHub's limit, with room to embed it.
DEFAULT_LIMIT = 60_000
#: At most this many files with problems get a table; the rest are counted.
MAX_FILES = 100
#: More files without problems than this are listed folded.
FOLD_CLEAN_AFTER = 10

ZWJ = "\u200d"
_ZWJ = ZWJ
#: Control characters, Unicode line separators, bidi embeddings/overrides/isolates and
#: the BOM: all become spaces.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
#: CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that
#: can start inline markup (code, emphasis, links, images, tables, strike, math).
_PUNCT = re.compile(r"([\\`*_\[\]()#!|~$^{}])")
#: What could start a block at the beginning of a line (a list item: ``- x``, ``+ x``,
#: ``1. x``, ``1) x``); ``#`` and ``>`` are handled by _PUNCT and the entities.
_BLOCK_START = re.compile(r"^(\s*)([-+]|\d+[.)])(?=\s|$)")
#: GitHub autolinks: ``@user``/``@org/team`` mentions, ``#123``/``owner/repo#123``
#: issue references and ``GH-123``. A zero-width joiner after ``@``/``#`` (and between
#: ``GH`` and ``-``) keeps the text readable but links and pings nothing.
_REFERENCE = re.compile(r"([@#])(?=\w)|@|(?<![A-Za-z0-9])(GH)(?=-\d)", re.IGNORECASE)


def defuse_references(text: str) -> str:
    """``@user``, ``#123``, ``owner/repo#1`` and ``GH-1`` made inert with a zero-width
    joiner (every ``@`` gets one, even when alone)."""
    return _REFERENCE.sub(lambda m: (m.group(2) or m.group(1) or m.group(0)) + ZWJ, text)


def escape_markdown(text: str, *, limit: int | None = None) -> str:
    """``text`` as inert inline Markdown on one line, for a table cell, a list item or
    prose: HTML characters as entities, inline markup characters (and a leading list
    marker) backslash-escaped, ``@mentions`` and ``#123`` / ``owner/repo#1`` / ``GH-1``
    references defused with a zero-width joiner, newlines and control characters
    (bidi overrides included) as spaces; cut to ``limit`` characters (with ``…``).

    The one escaper for everything lab-ci posts to GitHub (check summaries, the bot's
    comments and check runs)."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = _CONTROL.sub(" ", text.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _PUNCT.sub(r"\\\1", text)
    text = _BLOCK_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)
    return defuse_references(text)


def escape_html(text: str) -> str:
    """``text`` for raw HTML (a ``<summary>``, where Markdown is not parsed): one line,
    entities for ``& < > "``, no mentions or issue references."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = _CONTROL.sub(" ", text.replace("\r", " ").replace("\n", " "))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return defuse_references(text)


def _heading(report: Report) -> str:
    s = report.summary()
    counts = f"{_plural(s['errors'], 'error')}, {_plural(s['warnings'], 'warning')}"
    if not s["files"]:
        deleted = sum(1 for f in report.files if f.change == "deleted")
        gone = f" ({_plural(deleted, 'leaf', 'leaves')} deleted)" if deleted else ""
        return f"### ✅ lab-ci check: no leaves to check{gone}"
    if s["invalid"]:
        return f"### ❌ lab-ci check: {s['invalid']} of {_plural(s['files'], 'file')} invalid ({counts})"
    return f"### ✅ lab-ci check: {_plural(s['files'], 'file')} valid ({counts})"


def _cell(d, previous=None) -> str:
    """The message, then its hint and related locations on lines of their own (a hint
    the row above already gave is not repeated)."""
    msg = escape_markdown(d.message, limit=MAX_MESSAGE)
    if d.hint and previous is not None and previous.hint == d.hint:
        msg += "<br>**Hint:** as above."
    elif d.hint:
        msg += f"<br>**Hint:** {escape_markdown(d.hint, limit=MAX_HINT)}"
    for r in d.related[:3]:
        msg += f"<br>↳ line {r.line}, column {r.column}: {escape_markdown(r.message, limit=120)}"
    return msg


def _table(f: FileResult) -> list[str]:
    rows = ["| Line | Column | Severity | Rule | Message |", "|---:|---:|---|---|---|"]
    previous = None
    for d in f.diagnostics[:MAX_ROWS]:
        msg = _cell(d, previous)
        previous = d
        icon = "error" if d.severity == "error" else "warning"
        rows.append(f"| {d.line} | {d.column} | {icon} | {escape_markdown(rule_id(d.source, d.rule))} | {msg} |")
    if len(f.diagnostics) > MAX_ROWS:
        rows.append(f"| | | | | … and {len(f.diagnostics) - MAX_ROWS} more |")
    return rows


def _title(f: FileResult, root_display: str) -> str:
    title = f"**{escape_markdown(root_display + f.path)}**"
    if f.change == "renamed" and f.old_path:
        title += f" (renamed from {escape_markdown(root_display + f.old_path)})"
    elif f.change in ("added", "modified"):
        title += f" ({f.change})"
    return title


def _summary_line(f: FileResult, root_display: str, status: str) -> str:
    """The same as :func:`_title` plus status, as HTML for a ``<summary>``."""
    text = f"<b>{escape_html(root_display + f.path)}</b>"
    if f.change == "renamed" and f.old_path:
        text += f" (renamed from {escape_html(root_display + f.old_path)})"
    elif f.change in ("added", "modified"):
        text += f" ({f.change})"
    return text + f": {status}"


def _file_block(f: FileResult, root_display: str) -> list[str]:
    status = f"{'valid' if f.valid else 'invalid'}, {_plural(f.errors, 'error')}, {_plural(f.warnings, 'warning')}"
    if len(f.diagnostics) > FOLD_AFTER:
        return (
            ["<details>", f"<summary>{_summary_line(f, root_display, status)}</summary>", ""]
            + _table(f)
            + [
                "",
                "</details>",
                "",
            ]
        )
    return [f"{_title(f, root_display)}: {status}", ""] + _table(f) + [""]


def _size(lines: list[str]) -> int:
    return sum(len(x) + 1 for x in lines)


def render(report: Report, *, root_display: str = "", limit: int = DEFAULT_LIMIT) -> str:
    """The report as Markdown, at most ``limit`` characters (at least 1,000): files that
    do not fit are left out and counted."""
    limit = max(1000, min(limit, GITHUB_LIMIT))
    out = [_heading(report), ""]
    deleted = [f for f in report.files if f.change == "deleted"]
    noisy = [f for f in report.files if f.change != "deleted" and f.diagnostics]
    clean = [f for f in report.files if f.change != "deleted" and not f.diagnostics]
    reserve = 600  # for the lines saying what was left out
    used = _size(out)
    shown = 0
    for f in noisy[:MAX_FILES]:
        block = _file_block(f, root_display)
        if used + _size(block) > limit - reserve:
            break
        out += block
        used += _size(block)
        shown += 1
    if shown < len(noisy):
        rest = noisy[shown:]
        errors, warnings = sum(f.errors for f in rest), sum(f.warnings for f in rest)
        out += [
            f"… and {_plural(len(rest), 'more file')} with problems ({_plural(errors, 'error')}, "
            f"{_plural(warnings, 'warning')}) not shown here: see the full report (`lab-ci check`, or the job's "
            "log and SARIF).",
            "",
        ]
    if clean:
        if len(clean) > FOLD_CLEAN_AFTER:
            block = ["<details>", f"<summary>{_plural(len(clean), 'file')} without problems</summary>", ""]
            block += [f"- {_title(f, root_display)}" for f in clean] + ["", "</details>", ""]
        else:
            block = [f"{_title(f, root_display)}: valid" for f in clean] + [""]
        if _size(out) + _size(block) > limit - 300:
            block = [
                f"{_plural(len(clean), 'file')} without problems (not listed: the report is at its size limit).",
                "",
            ]
        out += block
    if deleted:
        block = []
        for f in deleted:
            block += [f"**{escape_markdown(root_display + f.path)}**: leaf deleted", ""]
        if _size(out) + _size(block) > limit - 100:
            block = [
                f"{_plural(len(deleted), 'leaf', 'leaves')} deleted (not listed: the report is at its size limit).",
                "",
            ]
        out += block
    text = "\n".join(out).rstrip("\n") + "\n"
    if len(text) > limit:  # a last resort; the budget above keeps to the limit
        text = text[: limit - 2] + "…\n"
    return text
