#!/usr/bin/env python3
"""Create the example knowledge-documents git repository, with a deterministic commit.

The example taxonomy's knowledge leaves (``taxonomy/knowledge/...``) pin
``document.repo: https://github.com/lab-ci/example-documents.git`` and a commit id.
That URL does not exist: consumers map it to the local repository this script makes,
for example with git's ``url.<local path>.insteadOf`` rewriting or a mirror option.

The repository is **bare** (no working tree; consumers clone or fetch from it). It
holds the files of ``scripts/example-documents/`` in one commit on branch ``main``,
made with fixed author, committer, dates and message, so its id depends only on the
documents' content. Running the script again on a repository that already holds that
commit does nothing.

Usage: ``scripts/make_example_docs.py --out DIR`` (prints the commit id).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent / "example-documents"
BRANCH = "main"
UPSTREAM_URL = "https://github.com/lab-ci/example-documents.git"
COMMIT_MESSAGE = "Add lab-ci example knowledge documents\n"
IDENTITY = {
    "GIT_AUTHOR_NAME": "lab-ci",
    "GIT_AUTHOR_EMAIL": "lab-ci@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_NAME": "lab-ci",
    "GIT_COMMITTER_EMAIL": "lab-ci@example.invalid",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
}


class DocsRepoError(RuntimeError):
    """The output path exists but is not a repository this script can update."""


def document_files(docs_dir: Path = DOCS_DIR) -> list[tuple[str, Path]]:
    """(repository path, file) for every document, sorted by repository path."""
    files = [p for p in docs_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted((p.relative_to(docs_dir).as_posix(), p) for p in files)


def _git(git_dir: Path, *args: str, input: bytes | None = None) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        **IDENTITY,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_DIR": str(git_dir),
        "GIT_INDEX_FILE": str(git_dir / "lab-ci-make-docs.index"),
    }
    result = subprocess.run(
        ["git", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", *args],
        env=env,
        input=input,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().strip()


def existing_commit(git_dir: Path) -> str | None:
    """The commit ``main`` points to in an existing bare repository, or None."""
    if not (git_dir / "HEAD").is_file():
        return None
    try:
        return _git(git_dir, "rev-parse", "--verify", "--quiet", f"refs/heads/{BRANCH}^{{commit}}")
    except subprocess.CalledProcessError:
        return None


def build_commit(git_dir: Path, docs_dir: Path = DOCS_DIR) -> str:
    """Write the documents as one root commit into the bare repository; return its id.

    Uses git plumbing (blobs, an index, a tree, commit-tree) so no working tree,
    hooks or user configuration can change the result.
    """
    _git(git_dir, "read-tree", "--empty")
    for repo_path, file in document_files(docs_dir):
        blob = _git(git_dir, "hash-object", "-w", "--stdin", input=file.read_bytes())
        _git(git_dir, "update-index", "--add", "--cacheinfo", f"100644,{blob},{repo_path}")
    tree = _git(git_dir, "write-tree")
    (git_dir / "lab-ci-make-docs.index").unlink(missing_ok=True)
    return _git(git_dir, "commit-tree", tree, "-m", COMMIT_MESSAGE.rstrip("\n"))


def make_docs_repo(out: Path, docs_dir: Path = DOCS_DIR) -> tuple[str, bool]:
    """Create or update the bare repository at ``out``; return (commit id, changed)."""
    out = out.resolve()
    if out.exists() and not (out / "HEAD").is_file():
        if any(out.iterdir()):
            raise DocsRepoError(f"{out} exists and is not a bare git repository")
    if not (out / "HEAD").is_file():
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(out)],
            env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
            check=True,
            capture_output=True,
        )
    sha = build_commit(out, docs_dir)
    if existing_commit(out) == sha:
        return sha, False
    _git(out, "update-ref", f"refs/heads/{BRANCH}", sha)
    _git(out, "symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")
    return sha, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="bare repository to create or update")
    args = parser.parse_args(argv)
    try:
        sha, changed = make_docs_repo(args.out)
    except (DocsRepoError, subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"make_example_docs: error: {exc} {detail.decode(errors='replace').strip()}", file=sys.stderr)
        return 2
    state = "created" if changed else "already up to date"
    print(f"example documents repository {args.out}: {state}, {BRANCH} = {sha}", file=sys.stderr)
    print(sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
