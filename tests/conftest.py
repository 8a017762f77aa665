"""Fixtures shared by every test folder: the real corpus, real git repositories,
and the real tiny models built by our own scripts (once per test run, shared by
pytest-xdist workers through a file lock)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labtest import (  # noqa: F401  (re-exported for fixtures below)
    CACHE_DIR,
    CORPUS_BUNDLE,
    EXAMPLE_TAXONOMY,
    REPO_ROOT,
    SHARED,
    WEBHOOK_PAYLOADS,
    _Lock,
    pytest_configure,  # the collection guard's hooks
    pytest_itemcollected,
    run_git,
)


@pytest.fixture(scope="session")
def corpus_bundle() -> Path:
    if not CORPUS_BUNDLE.is_file():
        pytest.fail(f"corpus bundle not found at {CORPUS_BUNDLE} (set LAB_CI_SHARED)")
    return CORPUS_BUNDLE


@pytest.fixture(scope="session")
def corpus_mirror(corpus_bundle: Path, tmp_path_factory) -> Path:
    """A bare mirror clone of the real taxonomy history (branches main and pr/N)."""
    dest = tmp_path_factory.mktemp("corpus") / "taxonomy-history.git"
    run_git("clone", "--quiet", "--mirror", str(corpus_bundle), str(dest))
    return dest


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    """The tiny teacher (GGUF) and student (HF dir) built by scripts/build_tiny_models.py."""
    out = CACHE_DIR / "models"
    with _Lock(CACHE_DIR / "models.lock"):
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "build_tiny_models.py"), "--out", str(out)],
            check=True,
        )
    return {"teacher": out / "teacher.gguf", "student": out / "student", "dir": out}


@pytest.fixture(scope="session")
def example_docs_repo(tmp_path_factory) -> Path:
    """The example knowledge documents as a local git repository, at the commit the
    example taxonomy's knowledge leaves pin (built by scripts/make_example_docs.py)."""
    dest = tmp_path_factory.mktemp("docs") / "example-documents.git"
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "make_example_docs.py"), "--out", str(dest)],
        check=True,
    )
    return dest


@pytest.fixture
def example_taxonomy_repo(tmp_path: Path) -> Path:
    """A fresh git repository holding a copy of the example taxonomy, one commit on main."""
    dest = tmp_path / "taxonomy"
    shutil.copytree(EXAMPLE_TAXONOMY, dest)
    run_git("init", "--quiet", "--initial-branch=main", cwd=dest)
    run_git("add", "-A", cwd=dest)
    run_git("commit", "--quiet", "-m", "example taxonomy", cwd=dest)
    return dest
