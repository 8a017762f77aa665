"""``--format github``: GitHub Actions workflow commands, one annotation per problem
(its hint on a second line of the annotation), and a ``notice`` annotation at each
related location (where the construct that failed began).

    ::error file=knowledge/x/qna.yaml,line=1,col=1,title=lab-ci schema/required::the file has no `version`%0AHint: Add `version: 3` ...
    ::notice file=knowledge/x/qna.yaml,line=7,col=3,title=lab-ci yaml/syntax (related)::scanning a simple key began here (see line 9)

Values are escaped as the Actions runner expects (``%``, CR, LF in data; also ``:`` and
``,`` in properties); other control characters become visible ``\\xNN`` escapes. Paths
must be repository-relative: pass the taxonomy's prefix as ``root_display``.
"""

from __future__ import annotations

from ..diagnostics import Report
from . import rule_id, summary_sentence
from .text import escape_control


def escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF percent-encoded as the runner
    decodes them (so a newline in a file name cannot start a command of its own);
    other control characters (escape sequences, line separators, bidi overrides)
    written as visible ``\\xNN`` escapes."""
    return escape_control(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **props) -> str:
    """``::kind k=v,...::message`` with everything escaped."""
    body = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items() if v is not None)
    return f"::{kind}{' ' + body if body else ''}::{escape_data(message)}"


def render(report: Report, *, root_display: str = "") -> str:
    lines = []
    for f in report.files:
        path = root_display + f.path
        if f.change == "deleted":
            lines.append(command("notice", f"{path}: leaf deleted", title="lab-ci deleted"))
            continue
        if f.change == "renamed" and f.old_path:
            lines.append(
                command("notice", f"renamed from {root_display}{f.old_path}", file=path, title="lab-ci renamed")
            )
        for d in f.diagnostics:
            message = d.message + (f"\nHint: {d.hint}" if d.hint else "")
            title = f"lab-ci {rule_id(d.source, d.rule)}"
            lines.append(command(d.severity, message, file=path, line=d.line, col=d.column, title=title))
            for r in d.related:
                lines.append(
                    command(
                        "notice",
                        f"{r.message} (see line {d.line}: {d.message})",
                        file=path,
                        line=r.line,
                        col=r.column,
                        title=f"{title} (related)",
                    )
                )
    lines.append(summary_sentence(report))
    return "\n".join(lines) + "\n"
