"""What the three ``document-*`` rules share: finding the ``document:`` mapping of a
knowledge leaf and the position of its fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab_ci.check.rules.base import RuleContext


def document(data: Any) -> Mapping | None:
    """The leaf's ``document`` mapping, or None (no document, or not a mapping: the
    schema reports that)."""
    if not isinstance(data, Mapping):
        return None
    doc = data.get("document")
    return doc if isinstance(doc, Mapping) else None


def at(ctx: RuleContext, *keys) -> tuple[int, int]:
    return ctx.at("document", *keys)
