"""document-patterns: ``document.patterns`` names the document files, as relative globs.

Each pattern is matched against the files of the document repository at
``document.commit``: a blank pattern matches nothing, and an absolute path or one
climbing out with ``..`` can never match a file in the repository.
"""

from __future__ import annotations

from collections.abc import Iterator

from lab_ci.check.rules._document import at, document
from lab_ci.check.rules.base import Problem, RuleContext
from lab_ci.check.rules.examples import KNOWLEDGE, KNOWLEDGE_PATH

ID = "document-patterns"
LEVEL = "warning"
SUMMARY = "document.patterns must name files inside the repository"
PASSING = KNOWLEDGE
FAILING = KNOWLEDGE.replace("patterns: [moon.md]", "patterns: [/home/octocat/moon.md]")
EXAMPLE = {"path": KNOWLEDGE_PATH}


def check(leaf, data, ctx: RuleContext) -> Iterator[Problem]:
    doc = document(data)
    if doc is None or "patterns" not in doc:
        return
    patterns = doc["patterns"]
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list):
        return  # the schema says so
    for i, p in enumerate(patterns):
        if not isinstance(p, str):
            continue
        line, col = at(ctx, "patterns", i)
        where = f".document.patterns[{i}]"
        if not p.strip():
            yield Problem(
                f"pattern {i + 1} of `document.patterns` is blank",
                line,
                col,
                where,
                hint="Write a file pattern such as `*.md`, or remove it.",
            )
        elif p.startswith(("/", "~")) or ":\\" in p or ".." in p.replace("\\", "/").split("/"):
            yield Problem(
                f"pattern {i + 1} of `document.patterns` (`{p[:80]}`) is not a path inside the repository",
                line,
                col,
                where,
                hint="Write the path relative to the repository's top folder, e.g. `docs/moon.md` or `*.md`.",
            )
