"""The problem record every checker emits, and the report that collects them.

One record shape for YAML syntax errors, yamllint problems, JSON Schema errors and
our own taxonomy rules, in the spirit of yamllint's ``LintProblem`` and ruff's
messages: a position (1-based line and column), a rule id, a level, a one-sentence
message in plain words, a hint saying what to change, the reference validator's own
wording where it has one, and related locations (where an unclosed block began).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lab_ci.taxonomy.limits import Related

Severity = Literal["error", "warning"]
Source = Literal["yaml", "yamllint", "schema", "taxonomy"]

#: ``lab-ci check`` exit codes, stable for scripts (as in ruff).
EXIT_OK = 0  # every checked file is valid (warnings allowed)
EXIT_INVALID = 1  # at least one file is invalid
EXIT_ERROR = 2  # usage error or abnormal end


@dataclass(frozen=True, slots=True)
class Covered:
    """A reference-validator error that a summary diagnostic stands for (e.g. the
    per-example errors an old-format knowledge leaf causes)."""

    rule: str
    yaml_path: str | None
    line: int
    column: int
    reference_message: str | None

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "yaml_path": self.yaml_path,
            "line": self.line,
            "column": self.column,
            "reference_message": self.reference_message,
        }


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem.

    ``message``: one sentence in plain words naming the field and what was found.
    ``hint``: what to change. ``reference_message``: the reference validator's wording
    of the same problem (JSON Schema and yamllint problems; for YAML syntax errors the
    parser's own words, with which the reference crashes). ``related``: other places
    that explain it. ``covers``: the reference's errors this one stands for, when it
    replaces several of them (``schema/old-format``)."""

    severity: Severity
    source: Source
    rule: str
    message: str
    line: int = 1
    column: int = 1
    yaml_path: str | None = None
    hint: str | None = None
    reference_message: str | None = None
    related: tuple[Related, ...] = ()
    covers: tuple[Covered, ...] = ()

    def sort_key(self) -> tuple:
        return (self.line, self.column, self.source, self.rule, self.message)

    def with_severity(self, severity: Severity) -> Diagnostic:
        return Diagnostic(
            severity,
            self.source,
            self.rule,
            self.message,
            self.line,
            self.column,
            self.yaml_path,
            self.hint,
            self.reference_message,
            self.related,
            self.covers,
        )

    def to_dict(self) -> dict:
        return {
            "severity": self.severity,
            "source": self.source,
            "rule": self.rule,
            "message": self.message,
            "hint": self.hint,
            "line": self.line,
            "column": self.column,
            "yaml_path": self.yaml_path,
            "reference_message": self.reference_message,
            "related": [{"line": r.line, "column": r.column, "message": r.message} for r in self.related],
            **({"covers": [c.to_dict() for c in self.covers]} if self.covers else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Diagnostic:
        return cls(
            severity=d["severity"],
            source=d["source"],
            rule=d["rule"],
            message=d["message"],
            line=int(d["line"]),
            column=int(d["column"]),
            yaml_path=d.get("yaml_path"),
            hint=d.get("hint"),
            reference_message=d.get("reference_message"),
            related=tuple(Related(int(r["line"]), int(r["column"]), r["message"]) for r in d.get("related") or ()),
            covers=tuple(
                Covered(c["rule"], c.get("yaml_path"), int(c["line"]), int(c["column"]), c.get("reference_message"))
                for c in d.get("covers") or ()
            ),
        )


#: How a file came to be checked: from a path/tree walk ("checked"), or from a
#: diff between two revisions ("added", "modified", "renamed", "deleted").
Change = Literal["checked", "added", "modified", "renamed", "deleted"]


@dataclass(slots=True)
class FileResult:
    path: str  # posix path relative to the taxonomy root
    diagnostics: list[Diagnostic] = field(default_factory=list)
    change: Change = "checked"
    old_path: str | None = None  # for renames
    blob_id: str | None = None  # git blob id of the checked content, when known

    @property
    def valid(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "warning")

    def sorted(self) -> FileResult:
        self.diagnostics.sort(key=Diagnostic.sort_key)
        return self

    def to_dict(self) -> dict:
        d = {
            "path": self.path,
            "valid": self.valid,
            "diagnostics": [x.to_dict() for x in self.diagnostics],
        }
        if self.change != "checked":
            d["change"] = self.change
        if self.old_path is not None:
            d["old_path"] = self.old_path
        return d


@dataclass(slots=True)
class Report:
    files: list[FileResult] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return all(f.valid for f in self.files)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.valid else EXIT_INVALID

    def summary(self) -> dict:
        checked = [f for f in self.files if f.change != "deleted"]
        return {
            "files": len(checked),
            "valid": sum(1 for f in checked if f.valid),
            "invalid": sum(1 for f in checked if not f.valid),
            "errors": sum(f.errors for f in self.files),
            "warnings": sum(f.warnings for f in self.files),
        }

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "files": [f.to_dict() for f in self.files],
            "summary": self.summary(),
        }
