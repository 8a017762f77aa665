"""Output formats for ``lab-ci check --format``: one small pure module each.

Every module has ``render(report, *, root_display="") -> str``: it turns a
:class:`~lab_ci.check.diagnostics.Report` into text, with no I/O. ``root_display`` is put
before every taxonomy-relative path (``"taxonomy/"`` when the taxonomy is a subfolder).
"""

from __future__ import annotations

import importlib

from ..diagnostics import Report

FORMATS: tuple[str, ...] = ("text", "json", "github", "sarif", "markdown")


def render(fmt: str, report: Report, *, root_display: str = "") -> str:
    """Render ``report`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    module = importlib.import_module(f"{__name__}.{fmt}")
    return module.render(report, root_display=root_display)


def summary_sentence(report: Report) -> str:
    """``Checked 5 files: 3 valid, 2 invalid (4 errors, 1 warning); 1 leaf deleted.``"""
    s = report.summary()
    deleted = sum(1 for f in report.files if f.change == "deleted")
    n = s["files"]
    text = f"Checked {n} file{'s' if n != 1 else ''}: {s['valid']} valid, {s['invalid']} invalid"
    text += f" ({_plural(s['errors'], 'error')}, {_plural(s['warnings'], 'warning')})"
    if deleted:
        text += f"; {_plural(deleted, 'leaf', 'leaves')} deleted"
    return text + "."


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def rule_id(source: str, rule: str) -> str:
    """The id a diagnostic's rule is shown under: ``yamllint/trailing-spaces``."""
    return f"{source}/{rule}"
