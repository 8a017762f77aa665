"""Moved to :mod:`lab_ci.taxonomy.documents` (fetching a pinned document repository is
reading git objects, the lowest layer, so the checker can use it too). This module
only re-exports it for code not yet updated; import from the new place."""

from ..taxonomy.documents import (  # noqa: F401
    MIRRORS_ENV,
    Document,
    DocumentError,
    DocumentFetcher,
    FetchPolicy,
    default_cache_dir,
    glob_match,
    mirrors_from_env,
    parse_mirrors,
    validate_commit,
    validate_patterns,
    validate_repo_url,
)
