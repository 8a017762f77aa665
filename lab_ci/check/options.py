"""Settings for one ``lab-ci check`` run, hashable into a cache key.

The defaults reproduce the reference validator's verdicts exactly
(``instructlab.schema.taxonomy.TaxonomyParser`` with its default settings): all our
extra taxonomy rules are warnings unless ``strict`` is set.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

from lab_ci.taxonomy.limits import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_LINES,
    DEFAULT_MAX_VALUES,
    ReadLimits,
)

#: Schema versions shipped in ``schemas/`` (``schemas/v1`` ... ``schemas/v3``).
SCHEMA_VERSIONS: tuple[int, ...] = (1, 2, 3)
LATEST_SCHEMA_VERSION: int = SCHEMA_VERSIONS[-1]

__all__ = ["CheckOptions", "DEFAULT_MAX_FILE_BYTES", "SCHEMA_VERSIONS", "LATEST_SCHEMA_VERSION"]

#: Context window of the teacher model, in tokens. 4096 is the default
#: ``max_num_tokens`` of the reference generator (instructlab-sdg's LLMBlock) and the
#: default server context of ``ilab model serve``.
DEFAULT_TEACHER_CONTEXT_TOKENS = 4096


@functools.lru_cache(maxsize=32)
def _limits(max_bytes: int, max_lines: int, max_depth: int, max_values: int) -> ReadLimits:
    return ReadLimits(max_bytes, max_lines, max_depth, max_values)


@dataclass(frozen=True)
class CheckOptions:
    """How to check a leaf.

    schema_version: ``"latest"`` (every file against the newest schema, as the
        reference does by default), ``"declared"`` (the ``version:`` each file
        declares, default 1), or a fixed version 1, 2 or 3.
    strict: every warning becomes an error (our taxonomy rules, yamllint warnings,
        YAML hygiene warnings), like ``yamllint --strict``.
    taxonomy_folders: top-level folders of a taxonomy; they also name the schema.
    max_file_bytes: larger files are rejected without parsing.
    max_lines, max_depth, max_values: the reader's other bounds (lines; nesting of
        lists and mappings; values after expanding aliases), see
        :mod:`lab_ci.taxonomy.yamlsrc`.
    teacher_context_tokens: the context window the ``text-size`` rule budgets for.
    disable: ids of taxonomy rules (``lab_ci.check.rules.RULES``) to skip.
    document_errors: the ``document-repo``, ``document-commit`` and
        ``document-patterns`` rules report errors instead of warnings (the bot turns
        this on: a leaf whose documents cannot be fetched fails before its preview).
    """

    schema_version: str | int = "latest"
    strict: bool = False
    taxonomy_folders: tuple[str, ...] = ("compositional_skills", "knowledge")
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_lines: int = DEFAULT_MAX_LINES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_values: int = DEFAULT_MAX_VALUES
    teacher_context_tokens: int = DEFAULT_TEACHER_CONTEXT_TOKENS
    disable: tuple[str, ...] = ()
    document_errors: bool = False

    def __post_init__(self) -> None:
        v = self.schema_version
        if isinstance(v, str) and v.isdigit():
            object.__setattr__(self, "schema_version", int(v))
            v = self.schema_version
        if not (
            v in ("latest", "declared") or (isinstance(v, int) and not isinstance(v, bool) and v in SCHEMA_VERSIONS)
        ):
            from lab_ci.errors import LabCIError

            raise LabCIError(
                f"schema version must be 'latest', 'declared' or one of {list(SCHEMA_VERSIONS)}, not {v!r}"
            )
        object.__setattr__(self, "taxonomy_folders", tuple(self.taxonomy_folders))
        object.__setattr__(self, "disable", tuple(sorted(set(self.disable))))

    def read_limits(self) -> ReadLimits:
        """The bounds the leaf reader works within."""
        return _limits(self.max_file_bytes, self.max_lines, self.max_depth, self.max_values)

    def reference_version(self) -> int:
        """The reference's ``schema_version`` argument: a number, <1 meaning "declared"."""
        if self.schema_version == "latest":
            return LATEST_SCHEMA_VERSION
        if self.schema_version == "declared":
            return 0
        return int(self.schema_version)

    def cache_key(self) -> str:
        """A stable string naming every setting that can change a result."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
