"""The command-line options of every command that fetches knowledge documents
(``lab-ci check --documents``, ``preview``, ``eval``, ``build``), declared once.

Light to import (the ``lab-ci`` command declares every sub-command at start-up); the
fetcher itself (:mod:`lab_ci.taxonomy.documents`, about 40 ms of imports) loads only
when a command runs and fetches.
"""

from __future__ import annotations

import argparse
from typing import Any

MIRRORS_ENV = "LAB_CI_DOCUMENT_MIRRORS"


def add_document_options(
    p: argparse.ArgumentParser | Any, *, allow_file: bool = True, cache: bool = True, when: str = ""
) -> None:
    """``--document-mirror`` (repeatable), and ``--allow-file-documents`` and
    ``--document-cache`` unless turned off; ``when`` prefixes their help (``"with
    --documents: "``)."""
    p.add_argument(
        "--document-mirror",
        action="append",
        default=[],
        metavar="URL=PATH",
        help=f"{when}fetch the document repository URL from PATH instead (a local git repository or an https "
        f"mirror; repeatable; also ${MIRRORS_ENV} as URL=PATH;URL=PATH)",
    )
    if allow_file:
        p.add_argument(
            "--allow-file-documents",
            action="store_true",
            help=f"{when}allow knowledge leaves to name file:// or local-path document repositories (local testing)",
        )
    if cache:
        p.add_argument(
            "--document-cache",
            metavar="DIR",
            help=f"{when}document cache folder (default: $XDG_CACHE_HOME/lab-ci/documents)",
        )


def mirrors_from_args(args: argparse.Namespace) -> dict[str, str]:
    """The mirrors of ``$LAB_CI_DOCUMENT_MIRRORS``, then ``--document-mirror`` (which wins)."""
    from .documents import mirrors_from_env, parse_mirrors  # the fetcher's imports: only when used

    return {**mirrors_from_env(), **parse_mirrors(args.document_mirror)}


def fetcher_from_args(args: argparse.Namespace, **kw):
    """A :class:`lab_ci.taxonomy.documents.DocumentFetcher` for the options above."""
    from .documents import DocumentFetcher

    return DocumentFetcher(
        cache_dir=getattr(args, "document_cache", None),
        allow_file=getattr(args, "allow_file_documents", False),
        mirrors=mirrors_from_args(args),
        **kw,
    )
