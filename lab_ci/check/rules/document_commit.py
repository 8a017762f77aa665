"""document-commit: ``document.commit`` names one commit by its full SHA.

The preview and the build fetch the documents at exactly that commit; a branch name
(``main``, ``HEAD``) moves under them and a short SHA cannot be fetched from a server.
A full SHA is 40 hexadecimal characters (64 in repositories using SHA-256).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lab_ci.check.rules._document import at, document
from lab_ci.check.rules.base import Problem, RuleContext
from lab_ci.check.rules.examples import KNOWLEDGE, KNOWLEDGE_PATH

ID = "document-commit"
LEVEL = "warning"
SUMMARY = "document.commit must be the full SHA of one commit"
PASSING = KNOWLEDGE
FAILING = KNOWLEDGE.replace("commit: 0123456789abcdef0123456789abcdef01234567", "commit: main")
EXAMPLE = {"path": KNOWLEDGE_PATH}

_FULL = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_SHORT = re.compile(r"[0-9a-fA-F]{4,39}")
_REF_NAME = re.compile(r"[\w][\w./-]{0,59}")


def check(leaf, data, ctx: RuleContext) -> Iterator[Problem]:
    doc = document(data)
    if doc is None or "commit" not in doc:
        return
    commit = doc["commit"]
    if not isinstance(commit, str) or not commit.strip():
        return  # the schema says it is missing or empty
    value = commit.strip()
    if _FULL.fullmatch(value):
        return
    line, col = at(ctx, "commit")
    repo = doc.get("repo") if isinstance(doc.get("repo"), str) else "<repo>"
    if _SHORT.fullmatch(value):
        yield Problem(
            f"`document.commit` is the short SHA `{value}`; the documents are fetched by the full SHA",
            line,
            col,
            ".document.commit",
            hint=f"Write all 40 characters: `git rev-parse {value}` in a clone of the repository prints them.",
        )
    elif _REF_NAME.fullmatch(value):
        yield Problem(
            f"`document.commit` is `{value}`, a branch or tag name, not a commit SHA; a branch moves, so the "
            "documents would change under the leaf",
            line,
            col,
            ".document.commit",
            hint=f"Write the full 40-character SHA of the commit to read: `git ls-remote {repo} {value}` prints it.",
        )
    else:
        yield Problem(
            f"`document.commit` is `{value[:60]}`, not a commit SHA",
            line,
            col,
            ".document.commit",
            hint="Write the full 40-character SHA of the commit holding the documents "
            "(`git rev-parse HEAD` in a clone of the repository prints the latest one).",
        )
