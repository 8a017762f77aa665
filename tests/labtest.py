"""Paths and helpers shared by every test folder.

Imported as ``from labtest import ...``: each test folder may have its own conftest.py,
so ``from conftest import`` would be ambiguous between them.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LAB_CI_SHARED", REPO_ROOT.parent / "shared"))
CORPUS_BUNDLE = SHARED / "corpus" / "taxonomy-history.bundle"
WEBHOOK_PAYLOADS = SHARED / "github" / "webhook-payloads"
EXAMPLE_TAXONOMY = REPO_ROOT / "taxonomy"
CACHE_DIR = Path(os.environ.get("LAB_CI_TEST_CACHE", REPO_ROOT / ".cache"))


def run_git(*args: str, cwd: Path | None = None, env: dict | None = None) -> str:
    full_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "lab-ci tests",
        "GIT_AUTHOR_EMAIL": "tests@lab-ci.invalid",
        "GIT_COMMITTER_NAME": "lab-ci tests",
        "GIT_COMMITTER_EMAIL": "tests@lab-ci.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        **(env or {}),
    }
    out = subprocess.run(["git", *args], cwd=cwd, env=full_env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


class _Lock:
    """An exclusive file lock, so xdist workers build shared artifacts once."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def __enter__(self):
        self.fh = open(self.path, "w")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def write_file(root: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` at ``root/rel``, making folders as needed."""
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def commit_all(repo: Path, msg: str = "c") -> str:
    """Stage everything, commit (even when empty) and return the new commit id."""
    run_git("add", "-A", cwd=repo)
    run_git("commit", "--quiet", "--allow-empty", "-m", msg, cwd=repo)
    return run_git("rev-parse", "HEAD", cwd=repo)
