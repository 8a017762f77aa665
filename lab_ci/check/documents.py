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

:class:`FetchingVerifier` is the verifier ``lab-ci check --documents`` and the bot use:
it asks :meth:`lab_ci.taxonomy.documents.DocumentFetcher.inspect` (the safe fetch:
https and the host allow-list, private and loopback addresses refused, mirrors
honoured, time and size bounds, the ``LAB_CI_DOCUMENT_*`` policy) and turns what it
finds into findings: the commit is missing, a pattern matches nothing, or matches only
files that are not readable text. A fetch failure is reported by its category
("host not allowed", "commit not found", ...), never with git's own words.
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


def _category_hint(category: str | None, allowed: tuple[str, ...]) -> str:
    from lab_ci.taxonomy import documents as fetch
    from lab_ci.taxonomy import gitrun

    hosts = ", ".join(allowed) or "none"
    return {
        fetch.HOST_NOT_ALLOWED: f"lab-ci fetches documents only from these hosts: {hosts}. Put the documents in a "
        "public repository on one of them.",
        fetch.ADDRESS_NOT_ALLOWED: "The host's address is private, local or reserved; put the documents in a public "
        "repository on a public code host.",
        gitrun.COMMIT_NOT_FOUND: "Push the commit to the repository, or write the full SHA of a commit it has "
        "(`git rev-parse HEAD` in the documents' repository prints it).",
        gitrun.NOT_FOUND: "Check the URL (`https://github.com/<owner>/<repository>`) and that the repository is public.",
        gitrun.TOO_LARGE: "The repository is larger than lab-ci fetches; keep the documents in a small repository.",
    }.get(category or "", "Check that the repository is public and reachable, then run the check again.")


class FetchingVerifier:
    """A :class:`DocumentVerifier` on the safe document fetcher (``fetcher``: a
    :class:`lab_ci.taxonomy.documents.DocumentFetcher`)."""

    def __init__(self, fetcher):
        self.fetcher = fetcher

    def verify(self, ref: DocumentRef) -> list[DocumentFinding]:
        from lab_ci.taxonomy.documents import DocumentError

        try:
            tree = self.fetcher.inspect(ref.repo, ref.commit, list(ref.patterns))
        except DocumentError as e:
            field = (e.field or "document.repo").removeprefix("document.")
            if field not in ("repo", "commit", "patterns"):
                field = "repo"
            return [
                DocumentFinding(
                    field,  # type: ignore[arg-type]
                    _sentence(e.reason),
                    _category_hint(e.category, tuple(self.fetcher.policy.allowed_hosts))
                    if e.category
                    else "Write an https URL of a public repository, a full commit SHA and globs from its root.",
                )
            ]
        out = []
        short = tree.commit[:12]
        for i, pattern in enumerate(tree.patterns):
            matched = tree.matches(pattern)
            if any(f.readable for f in matched):
                continue
            index = i if i < len(ref.patterns) else None
            if not matched:
                out.append(
                    DocumentFinding(
                        "patterns",
                        f"the pattern `{pattern[:100]}` matches no file of the repository at commit {short}",
                        "Write a glob from the repository's root that names the documents, e.g. `*.md` or "
                        "`docs/*.md`; `*` does not cross `/` (use `**/*.md` for every folder).",
                        index,
                    )
                )
                continue
            why = ", ".join(f"`{f.path[:80]}` ({_STATUS.get(f.status, f.status)})" for f in matched[:3])
            more = f" and {len(matched) - 3} more" if len(matched) > 3 else ""
            out.append(
                DocumentFinding(
                    "patterns",
                    f"the pattern `{pattern[:100]}` matches only files lab-ci cannot read: {why}{more}",
                    "Documents must be UTF-8 text files (Markdown is best) under "
                    f"{self.fetcher.max_file_bytes:,} bytes each; convert them and commit the text.",
                    index,
                )
            )
        return out


_STATUS = {
    "binary": "binary",
    "not-utf8": "not UTF-8 text",
    "too-large": "over the file size limit",
    "symlink": "a symbolic link",
    "submodule": "a submodule",
}


def _sentence(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text


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
