"""``--format text``: one line per problem, like ruff and yamllint's parsable format,
then its hint and any related location (where the construct began) on lines of their
own, indented:

    knowledge/x/qna.yaml:9:3: error [yaml/syntax] line 7 (`Enjoy!`) is indented less than ...
      hint: Indent the text of the block by 4 spaces, from line 7 on; ...
      knowledge/x/qna.yaml:7:3: note: scanning a simple key began here
    knowledge/old/qna.yaml: deleted
    Checked 2 files: 1 valid, 1 invalid (1 error, 0 warnings); 1 leaf deleted.

Every path and message is passed through :func:`escape_control`: a file name holding a
newline (``b\\n::error file=x::pwned``) prints as ``b\\n::error...`` on the same line, so it
can neither forge another report line nor a GitHub Actions workflow command, and
terminal escape sequences are inert.
"""

from __future__ import annotations

import re

from ..diagnostics import Report
from . import rule_id, summary_sentence

#: C0 controls (tab and newline included), DEL, C1 controls, Unicode line/paragraph
#: separators, bidi embedding/override/isolate characters and the BOM.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape_one(m: re.Match) -> str:
    c = ord(m.group(0))
    if c == 0x0A:
        return "\\n"
    if c == 0x0D:
        return "\\r"
    if c == 0x09:
        return "\\t"
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def escape_control(text: str) -> str:
    """``text`` on one line with every control character written as an escape
    (``\\n``, ``\\x1b``, ``\\u202e``); everything else unchanged."""
    return _CONTROL.sub(_escape_one, text)


def render(report: Report, *, root_display: str = "") -> str:
    lines = []
    for f in report.files:
        path = escape_control(root_display + f.path)
        if f.change == "deleted":
            lines.append(f"{path}: deleted")
            continue
        if f.change == "renamed" and f.old_path:
            lines.append(f"{path}: renamed from {escape_control(root_display + f.old_path)}")
        for d in f.diagnostics:
            # A multi-line message (YAML errors quote lines) reads as one line.
            message = escape_control(" ".join(d.message.splitlines()))
            rule = escape_control(rule_id(d.source, d.rule))
            lines.append(f"{path}:{d.line}:{d.column}: {d.severity} [{rule}] {message}")
            if d.hint:
                lines.append(f"  hint: {escape_control(' '.join(d.hint.splitlines()))}")
            for r in d.related:
                lines.append(f"  {path}:{r.line}:{r.column}: note: {escape_control(r.message)}")
    lines.append(summary_sentence(report))
    return "\n".join(lines) + "\n"
