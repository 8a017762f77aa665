"""Paths and helpers shared by every test folder.

Imported as ``from labtest import ...``: each test folder may have its own conftest.py,
so ``from conftest import`` would be ambiguous between them.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
from pathlib import Path

import pytest

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


# ------------------------------------------------------------------ the collection guard
# The guard against test files that pytest never collects.
#
# pytest silently skips folders it is told to (``norecursedirs``: by default ``build``,
# ``dist``, ``venv``, dot-folders...), files that do not match ``python_files``, and
# modules whose tests it cannot see (a misnamed function, a module-level skip). Once,
# a fifth of the build tests sat in ``tests/build`` and never ran in CI. The hooks below
# record every file that yielded at least one test; :func:`uncollected` lists the
# ``tests/**/test_*.py`` files that yielded none.
#
# The check only means something when the whole suite was asked for: with a subset
# (``pytest tests/check``, a node id, ``--ignore`` or ``--lf`` on the command line),
# :func:`subset_reason` says so and the guard steps aside. Options that hide files from
# the configuration (``addopts``, ``norecursedirs``) are not a subset: those are what the
# guard is there to catch. It works under pytest-xdist: every worker collects the whole
# suite, so the worker that runs the guard saw every file.
#
# ``tests/conftest.py`` re-exports the two hooks; ``tests/test_collection_guard.py`` is
# the guard itself and the test of the guard.


_COLLECTED = pytest.StashKey[set[Path]]()

#: command-line options that narrow collection on purpose
_SUBSET_OPTIONS = ("--ignore", "--ignore-glob", "--lf", "--last-failed", "--pyargs")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_COLLECTED] = set()


def pytest_itemcollected(item: pytest.Item) -> None:
    item.config.stash[_COLLECTED].add(Path(item.path).resolve())


def list_test_files(tests_root: Path) -> list[Path]:
    """Every ``test_*.py`` below ``tests_root`` (dot-folders and caches excepted)."""
    root = tests_root.resolve()
    return sorted(
        p
        for p in root.rglob("test_*.py")
        if not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts)
    )


def subset_reason(config: pytest.Config, tests_root: Path) -> str | None:
    """Why this run is a deliberate subset of the suite, or None for a whole-suite run."""
    root = tests_root.resolve()
    for arg in config.args:
        path = arg.split("::", 1)[0]
        where = (config.invocation_params.dir / path).resolve()
        if "::" in arg or not root.is_relative_to(where):
            return f"a subset of the suite was asked for ({arg})"
    given = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    for opt in given:
        name = str(opt).split("=", 1)[0]
        if name in _SUBSET_OPTIONS:
            return f"{name} narrows the collection on purpose"
    return None


def uncollected(config: pytest.Config, tests_root: Path) -> list[Path]:
    """The test files under ``tests_root`` that yielded no test in this session."""
    seen = config.stash[_COLLECTED]
    return [p for p in list_test_files(tests_root) if p not in seen]


def check_collection(config: pytest.Config, tests_root: Path) -> None:
    """The guard: fail naming every uncollected test file (skip when running a subset)."""
    reason = subset_reason(config, tests_root)
    if reason:
        pytest.skip(f"the collection guard needs the whole suite: {reason}")
    missing = uncollected(config, tests_root)
    if missing:
        names = "\n  ".join(str(p.relative_to(tests_root.resolve())) for p in missing)
        pytest.fail(
            f"{len(missing)} test file(s) under {tests_root.name}/ were not collected "
            f"(a folder pytest skips, such as 'build'? no test named test_*? a module-level skip?):\n  {names}",
            pytrace=False,
        )
