"""Safe Markdown for everything the bot posts on GitHub (pure functions).

Anything user-written that the bot echoes back (leaf text, generated samples, file
names, comment text, command arguments) goes through one of these helpers first:

- :func:`text` for inline prose: HTML and Markdown metacharacters are escaped and
  ``@mentions`` / ``#refs`` are defused with a zero-width joiner so nobody is pinged
  and nothing links itself.
- :func:`code` for an inline code span and :func:`fence` for a code block: the fence
  is always longer than any backtick run inside, so the content cannot break out.
- :func:`details` for a collapsible block whose summary is escaped.
- :func:`truncate` to fit GitHub's 65 535-character limit with a visible note.

Plus the check run bodies built from a :class:`lab_ci.check.diagnostics.Report`:
:func:`annotations` (one per diagnostic, on the exact line) and :func:`check_summary`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from lab_ci.check.formats.markdown import defuse_references, escape_markdown

#: GitHub's limit for a check run's output.summary / output.text and a comment body.
GITHUB_TEXT_LIMIT = 65535
#: GitHub accepts at most 50 annotations per create/update check run request.
ANNOTATIONS_PER_REQUEST = 50
#: Annotation message limit (64 KB); we keep messages short anyway.
ANNOTATION_MESSAGE_LIMIT = 4000

ZWJ = "\u200d"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def strip_control(s: str) -> str:
    """Drop control characters and bidi overrides (keeps tab and newlines)."""
    return _CONTROL.sub("", s)


def defuse_mentions(s: str) -> str:
    """``@user`` / ``@org/team`` / ``#123`` / ``owner/repo#1`` / ``GH-1`` -> not a mention
    or link any more (the shared rule of :mod:`lab_ci.check.formats.markdown`)."""
    return defuse_references(s)


def text(s: object, *, max_len: int | None = 2000) -> str:
    """Escape ``s`` for inline Markdown: no HTML, no formatting, no mentions or issue
    links, one line. This IS the shared escaper
    (:func:`lab_ci.check.formats.markdown.escape_markdown`, also behind ``lab-ci check
    --format markdown``); the bot only collapses runs of whitespace first."""
    return escape_markdown(" ".join(str(s).split()), limit=max_len)


def code(s: object, *, max_len: int | None = 300) -> str:
    """An inline code span that cannot be broken out of (mentions are inert in code)."""
    s = " ".join(strip_control(str(s)).split())
    if max_len is not None and len(s) > max_len:
        s = s[: max_len - 1] + "…"
    if not s:
        return "` `"
    longest = max((len(r) for r in re.findall(r"`+", s)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or longest else ""
    return f"{ticks}{pad}{s}{pad}{ticks}"


def fence(s: str, lang: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run in ``s``."""
    s = strip_control(s)
    longest = max((len(r) for r in re.findall(r"`+", s)), default=0)
    ticks = "`" * max(3, longest + 1)
    lang = re.sub(r"[^A-Za-z0-9_+-]", "", lang)
    return f"{ticks}{lang}\n{s.rstrip(chr(10))}\n{ticks}"


def details(summary: str, body: str, *, open_: bool = False) -> str:
    """A ``<details>`` block; ``summary`` is escaped, ``body`` must already be safe."""
    attr = " open" if open_ else ""
    return f"<details{attr}><summary>{text(summary)}</summary>\n\n{body}\n\n</details>"


def truncate(md: str, limit: int = GITHUB_TEXT_LIMIT, *, note: str | None = None) -> str:
    """Cut ``md`` to ``limit`` characters, ending with a visible note, closing any open
    code fence so the note is not swallowed by it."""
    if len(md) <= limit:
        return md
    note = note or "*Output truncated: it exceeded GitHub's 65 535-character limit.*"
    tail_room = len(note) + 200
    cut = md[: max(0, limit - tail_room)]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    closing = _open_fence(cut)
    out = cut + ("\n" + closing if closing else "")
    if cut.count("<details") > cut.count("</details>"):
        out += "\n\n</details>" * (cut.count("<details") - cut.count("</details>"))
    return f"{out}\n\n{note}"


def _open_fence(md: str) -> str | None:
    """The fence string that closes a code block left open at the end of ``md``."""
    open_fence: str | None = None
    for line in md.split("\n"):
        m = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if not m:
            continue
        f = m.group(1)
        if open_fence is None:
            open_fence = f
        elif f[0] == open_fence[0] and len(f) >= len(open_fence) and line.strip() == f:
            open_fence = None
    return open_fence


# -- check run bodies ---------------------------------------------------------------

_LEVEL = {"error": "failure", "warning": "warning"}


def annotations(report, *, path_prefix: str = "") -> list[dict]:
    """One GitHub check run annotation per diagnostic, on the exact line (and column
    when single-line). Annotation fields are plain text (GitHub does not render them
    as Markdown), so they are only stripped of control characters and bounded."""
    out: list[dict] = []
    for f in report.files:
        if f.change == "deleted":
            continue
        for d in f.diagnostics:
            line = max(1, int(d.line))
            ann = {
                "path": path_prefix + f.path,
                "start_line": line,
                "end_line": line,
                "annotation_level": _LEVEL.get(d.severity, "notice"),
                "message": strip_control(d.message)[:ANNOTATION_MESSAGE_LIMIT] or d.rule,
                "title": strip_control(f"{d.source}/{d.rule}")[:255],
            }
            if d.column and d.column >= 1:
                ann["start_column"] = int(d.column)
                ann["end_column"] = int(d.column)
            out.append(ann)
    return out


def batches(items: list, size: int = ANNOTATIONS_PER_REQUEST) -> Iterator[list]:
    """Split ``items`` into GitHub-sized batches (50 annotations per request)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def check_title(report) -> str:
    s = report.summary()
    if s["files"] == 0:
        return "No taxonomy leaves changed"
    if report.valid:
        return f"{s['files']} leaf file(s) valid" + (f", {s['warnings']} warning(s)" if s["warnings"] else "")
    return f"{s['invalid']} of {s['files']} leaf file(s) invalid: {s['errors']} error(s)"


def check_summary(report, *, markdown: str | None = None) -> str:
    """The check run summary: counts, then the per-file Markdown (the output of the
    renderer behind ``lab-ci check --format markdown`` when given, otherwise our own
    table), truncated to GitHub's limit."""
    s = report.summary()
    head = (
        f"**{s['files']}** file(s) checked: **{s['valid']}** valid, **{s['invalid']}** invalid "
        f"({s['errors']} error(s), {s['warnings']} warning(s))."
    )
    body = markdown if markdown is not None else _diagnostics_table(report)
    return truncate(head + "\n\n" + body)


def _diagnostics_table(report) -> str:
    rows = ["| File | Line | Level | Rule | Message |", "|---|---|---|---|---|"]
    for f in report.files:
        for d in f.diagnostics:
            rows.append(
                f"| {code(f.path)} | {d.line}:{d.column} | {d.severity} | {code(d.rule)} | {text(d.message, max_len=400)} |"
            )
    return "\n".join(rows) if len(rows) > 2 else "No problems found."


def bullet_list(items: Iterable[str]) -> str:
    return "\n".join(f"- {text(i)}" for i in items)
