"""The seam for checking document references online (``lab-ci check --documents``).

The static rules (``document-repo``, ``document-commit``, ``document-patterns``) check
what a knowledge leaf *says* about its documents. Whether the repository can be
fetched, the commit exists and each pattern matches a readable file needs the
network, which is the safe document fetcher's job (its own module: host allow-list,
refused private addresses, timeouts, mirrors). It plugs in here: an object with the
:class:`DocumentVerifier` method, passed as ``documents=`` to
:func:`lab_ci.check.engine.check_leaves` (or :func:`lab_ci.check.api.check_taxonomy`).
The engine calls it for each leaf whose ``document:`` passed the static rules and
reports its findings as ``taxonomy/document-fetch`` errors on the ``document:``
lines. Runs with a verifier bypass the result cache (the answer depends on the
remote repository, not only on the leaf's bytes).

Not wired to the command line yet: ``lab-ci check --documents`` arrives with the
fetcher.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

ID = "document-fetch"
LEVEL = "error"
SUMMARY = "the document repository, commit and patterns must be fetchable (online check)"


@dataclass(frozen=True)
class DocumentRef:
    """A knowledge leaf's ``document:``, as written."""

    repo: str
    commit: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class DocumentFinding:
    """One thing the verifier found wrong: about the repository, the commit, or the
    pattern at ``index``; ``message`` and ``hint`` as for any diagnostic (never the
    raw text of a network error: say its category)."""

    field: Literal["repo", "commit", "patterns"]
    message: str
    hint: str
    index: int | None = None


class DocumentVerifier(Protocol):
    def verify(self, ref: DocumentRef) -> list[DocumentFinding]:
        """What is wrong with ``ref`` once fetched; ``[]`` when it is all there."""
        ...


def document_ref(data: Any) -> DocumentRef | None:
    """The leaf's document reference, when it is well-formed enough to fetch."""
    doc = data.get("document") if isinstance(data, Mapping) else None
    if not isinstance(doc, Mapping):
        return None
    repo, commit, patterns = doc.get("repo"), doc.get("commit"), doc.get("patterns")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not (isinstance(repo, str) and isinstance(commit, str) and isinstance(patterns, list)):
        return None
    return DocumentRef(repo.strip(), commit.strip(), tuple(p for p in patterns if isinstance(p, str)))
