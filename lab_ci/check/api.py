"""The programmatic face of ``lab-ci check``, used by the CLI, the bot and the later stages.

``collect_leaves`` gathers the leaves (from disk, one revision, or a change between two
revisions, see :mod:`lab_ci.taxonomy.collect`); ``check_taxonomy`` checks them with the
engine. ``display_root`` says how to prefix taxonomy-relative paths for people and for
GitHub (annotations and SARIF want repository-relative paths).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..taxonomy.collect import collect_leaves
from .diagnostics import Report

__all__ = ["collect_leaves", "check_taxonomy", "repo_prefix", "display_root"]


def check_taxonomy(
    taxonomy: Path | str,
    *,
    paths: list[str] | None = None,
    base: str | None = None,
    head: str | None = None,
    options=None,
    jobs: int = 1,
    use_cache: bool = True,
    cwd: Path | None = None,
    documents=None,
) -> Report:
    """Collect the leaves and check them: a :class:`Report`, files sorted by path.

    ``options`` is a :class:`lab_ci.check.options.CheckOptions` (default: its defaults).
    ``documents``: a :class:`lab_ci.check.documents.DocumentVerifier` to verify document
    references online (no cache then).
    Raises :class:`lab_ci.errors.LabCIError` for bad input (missing path, bad revision).
    """
    from .engine import check_leaves
    from .options import CheckOptions

    options = options if options is not None else CheckOptions()
    # Reading is bounded by the same limit the engine enforces: a huge blob is read
    # only far enough for the engine's "file-too-large" error.
    leaves = collect_leaves(
        taxonomy,
        paths=paths,
        base=base,
        head=head,
        cwd=cwd,
        max_bytes=options.max_file_bytes,
        folders=options.taxonomy_folders,
    )
    cache = None
    if use_cache:
        try:
            from .cache import ResultCache
        except ModuleNotFoundError as e:  # a build without the cache module
            if e.name != f"{__package__}.cache":
                raise
            logging.getLogger(__name__).warning("result cache unavailable; checking without it")
        else:
            cache = ResultCache()
    return check_leaves(leaves, options, jobs=jobs, cache=cache, documents=documents)


def repo_prefix(taxonomy: Path | str) -> str:
    """The taxonomy's folder inside its git repository (``""`` or ``"sub/dir/"``);
    ``""`` when it is not in a git repository."""
    from ..errors import LabCIError
    from ..taxonomy.gitrepo import GitTaxonomy

    try:
        with GitTaxonomy.open(taxonomy) as gt:
            return gt.prefix
    except LabCIError:
        return ""


def display_root(taxonomy: Path | str, fmt: str, cwd: Path | None = None) -> str:
    """The prefix to put before taxonomy-relative paths in output format ``fmt``:
    repository-relative for ``github`` and ``sarif`` (GitHub resolves them against the
    repository), relative to the current folder for the others (absolute when the
    taxonomy is not below it)."""
    if fmt in ("github", "sarif"):
        return repo_prefix(taxonomy)
    cwd = (cwd or Path.cwd()).resolve()
    root = Path(taxonomy).resolve()
    if root == cwd:
        return ""
    if cwd in root.parents:
        return root.relative_to(cwd).as_posix() + "/"
    return root.as_posix().rstrip("/") + "/"
