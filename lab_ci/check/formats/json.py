"""``--format json``: exactly one object, :meth:`Report.to_dict` (paths taxonomy-relative).

    {"version": 1, "files": [{"path": ..., "valid": ..., "diagnostics": [...]}],
     "summary": {"files": n, "valid": n, "invalid": n, "errors": n, "warnings": n}}

Changed-leaf runs add ``"change"`` (and ``"old_path"`` for renames) to a file's object.
``root_display`` is not applied: consumers join paths with the taxonomy themselves.

Laid out for people too: two-space indentation down to each diagnostic, which sits on
one line. The leaves are written by the C encoder (``json.dumps`` with ``indent`` uses
the pure-Python one, most of a warm re-check's time on a large tree).
"""

from __future__ import annotations

import json as _json

from ..diagnostics import Report

_compact = _json.JSONEncoder(separators=(", ", ": ")).encode


def _file(f: dict) -> str:
    fields = []
    for key, value in f.items():
        if key == "diagnostics":
            if value:
                rows = ",\n".join("        " + _compact(d) for d in value)
                fields.append(f'      "diagnostics": [\n{rows}\n      ]')
            else:
                fields.append('      "diagnostics": []')
        else:
            fields.append(f"      {_compact(key)}: {_compact(value)}")
    return "    {\n" + ",\n".join(fields) + "\n    }"


def render(report: Report, *, root_display: str = "") -> str:
    d = report.to_dict()
    files = ",\n".join(_file(f) for f in d["files"])
    files = f"[\n{files}\n  ]" if files else "[]"
    return (
        f'{{\n  "version": {_compact(d["version"])},\n  "files": {files},\n  "summary": {_compact(d["summary"])}\n}}\n'
    )
