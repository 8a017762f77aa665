"""``--format text``: one line per problem, like ruff and yamllint's parsable format.

    knowledge/x/qna.yaml:3:7: error [schema/required] 'version' is a required property (seed_examples[0])
    knowledge/old/qna.yaml: deleted
    Checked 2 files: 1 valid, 1 invalid (1 error, 0 warnings); 1 leaf deleted.
"""

from __future__ import annotations

from ..diagnostics import Report
from . import rule_id, summary_sentence


def render(report: Report, *, root_display: str = "") -> str:
    lines = []
    for f in report.files:
        path = root_display + f.path
        if f.change == "deleted":
            lines.append(f"{path}: deleted")
            continue
        if f.change == "renamed" and f.old_path:
            lines.append(f"{path}: renamed from {root_display}{f.old_path}")
        for d in f.diagnostics:
            where = f" ({d.yaml_path})" if d.yaml_path else ""
            message = " ".join(d.message.splitlines())
            lines.append(f"{path}:{d.line}:{d.column}: {d.severity} [{rule_id(d.source, d.rule)}] {message}{where}")
    lines.append(summary_sentence(report))
    return "\n".join(lines) + "\n"
