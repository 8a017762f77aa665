"""Taxonomy rules beyond the schema, in the manner of yamllint's rules.

Each rule is one module with ``ID`` (stable, used in output and in
``CheckOptions.disable``), ``LEVEL`` (``warning``: rules never change the default
verdict; ``CheckOptions.strict`` makes them errors), a docstring for users, and
``check(leaf, data, ctx)`` yielding :class:`~lab_ci.check.rules.base.Problem` values.
"""

from __future__ import annotations

from types import ModuleType

from lab_ci.check.rules import (
    attribution_empty,
    attribution_missing,
    document_commit,
    document_patterns,
    document_repo,
    duplicate_question,
    placement,
    text_size,
)
from lab_ci.check.rules.base import Problem, RuleContext

#: Every taxonomy rule, by id, in the order they run.
RULES: dict[str, ModuleType] = {
    placement.ID: placement,
    attribution_missing.ID: attribution_missing,
    attribution_empty.ID: attribution_empty,
    duplicate_question.ID: duplicate_question,
    text_size.ID: text_size,
    document_repo.ID: document_repo,
    document_commit.ID: document_commit,
    document_patterns.ID: document_patterns,
}

#: The rules about ``document:`` references: errors when ``CheckOptions.document_errors``.
DOCUMENT_RULES: frozenset[str] = frozenset({document_repo.ID, document_commit.ID, document_patterns.ID})

__all__ = ["DOCUMENT_RULES", "RULES", "Problem", "RuleContext"]
