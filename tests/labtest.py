"""Paths and helpers shared by every test folder.

Imported as ``from labtest import ...``: each test folder may have its own conftest.py,
so ``from conftest import`` would be ambiguous between them.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import resource
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


# ------------------------------------------------------------------ real limits, real kills
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def child_limits(file_size: int | None = None, ordinary_user: bool = False) -> Callable[[], None]:
    """A ``preexec_fn`` that puts a child process under real limits before it starts.

    ``file_size``: RLIMIT_FSIZE in bytes; a write past it fails with EFBIG ("File too
    large"), the way a write fails on a full disk (Python ignores SIGXFSZ). No
    privileges needed. ``ordinary_user``: file permissions apply to the child even when
    the tests run as root (as in many CI containers): it loses CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH, so a chmod 0o555 folder is read-only to it as to any user.
    """
    root = os.geteuid() == 0

    def apply() -> None:
        if file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        if ordinary_user and root:
            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
                if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "cannot drop CAP_DAC_OVERRIDE (no CAP_SETPCAP?)")

    return apply


@contextmanager
def file_size_limit(size: int) -> Iterator[None]:
    """RLIMIT_FSIZE for this process while the block runs (writes past it: EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def kill_when(cmd: list[str], ready: Callable[[], bool], timeout: float = 300, **popen) -> str:
    """Start ``cmd`` in a process group of its own and SIGKILL the whole group as soon as
    ``ready()`` (observable state: a file, a manifest, a log line) holds; return its
    stderr. Fails if the process ends before, or ``ready()`` never holds."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child never blocks on it
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, **popen)

        def stderr() -> str:
            err.seek(0)
            return err.read().decode(errors="replace")

        deadline = time.monotonic() + timeout
        try:
            while not ready():
                if proc.poll() is not None:
                    pytest.fail(
                        f"the process ended (exit {proc.returncode}) before the kill point:\n{stderr()[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(f"the kill point was not reached in {timeout:.0f} s:\n{stderr()[-3000:]}")
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            return stderr()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


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
