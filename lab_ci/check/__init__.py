"""``lab-ci check``: validate taxonomy ``qna.yaml`` leaves.

Public API: :class:`CheckOptions`, :func:`check_leaf`, :func:`check_leaves`
(loaded on first use, so importing ``lab_ci.check.cli`` stays cheap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["CheckOptions", "check_leaf", "check_leaves"]

if TYPE_CHECKING:
    from lab_ci.check.engine import check_leaf, check_leaves
    from lab_ci.check.options import CheckOptions


def __getattr__(name: str):
    if name == "CheckOptions":
        from lab_ci.check.options import CheckOptions

        return CheckOptions
    if name in ("check_leaf", "check_leaves"):
        from lab_ci.check import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
