"""Bounds on reading a leaf, and the problem records of the reader: plain data, no
YAML library, so that collecting leaves and reading cached results stay light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: A qna.yaml bigger than this is not parsed at all. The largest of the 1947 files
#: contributed to the real community taxonomy is 621 KB (most are under 20 KB).
DEFAULT_MAX_FILE_BYTES = 1_000_000
#: More lines than this are not parsed (the largest real leaf has 18,486 lines).
DEFAULT_MAX_LINES = 50_000
#: Collections nested deeper than this are refused (real leaves nest 6 levels).
DEFAULT_MAX_DEPTH = 64
#: Values (scalars, lists, mappings; keys count) after expanding every alias. The
#: largest real leaf has 3,463; the one real leaf with aliases expands 98 to 134.
#: Checking costs about 25 us a value (yamllint's token rules are most of it), so
#: this keeps any file within about half a second.
DEFAULT_MAX_VALUES = 20_000
#: Events the pure-Python parser may read when libyaml refused a document (the
#: largest real leaf has about 7,800 tokens).
PY_FALLBACK_MAX_EVENTS = 10_000


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on reading one leaf (see :mod:`lab_ci.taxonomy.yamlsrc`)."""

    max_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_lines: int = DEFAULT_MAX_LINES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_values: int = DEFAULT_MAX_VALUES


DEFAULT_LIMITS = ReadLimits()


@dataclass(frozen=True, slots=True)
class Related:
    """A second place that explains a problem (e.g. where an unclosed block began)."""

    line: int
    column: int
    message: str


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """Something wrong with the file as YAML (the checker reports it as ``yaml/<rule>``)."""

    rule: str
    message: str
    line: int = 1
    column: int = 1
    severity: Literal["error", "warning"] = "error"
    hint: str | None = None
    related: tuple[Related, ...] = ()
    parser_message: str | None = None  # the YAML parser's own words, for syntax errors
