"""``--format json``: exactly one object, :meth:`Report.to_dict` (paths taxonomy-relative).

    {"version": 1, "files": [{"path": ..., "valid": ..., "diagnostics": [...]}],
     "summary": {"files": n, "valid": n, "invalid": n, "errors": n, "warnings": n}}

Changed-leaf runs add ``"change"`` (and ``"old_path"`` for renames) to a file's object.
``root_display`` is not applied: consumers join paths with the taxonomy themselves.
"""

from __future__ import annotations

import json as _json

from ..diagnostics import Report


def render(report: Report, *, root_display: str = "") -> str:
    return _json.dumps(report.to_dict(), indent=2) + "\n"
