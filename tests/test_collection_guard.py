"""Every test file runs: the guard, and a test of the guard on a small suite of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import labtest
from labtest import REPO_ROOT

TESTS = Path(__file__).resolve().parent


def test_every_test_file_is_collected(request):
    labtest.check_collection(request.config, TESTS)


GUARD = "import labtest\n\ndef test_guard(request):\n    labtest.check_collection(request.config, __import__('pathlib').Path(__file__).parent)\n"


def _suite(root: Path, ini: str = "") -> Path:
    """A small project: a passing test, one in a folder named build, one misnamed."""
    files = {
        "pytest.ini": f"[pytest]\ntestpaths = tests\n{ini}",
        "tests/conftest.py": "from labtest import pytest_configure, pytest_itemcollected  # noqa\n",
        "tests/test_guard.py": GUARD,
        "tests/ok/test_ok.py": "def test_ok():\n    assert 1 + 1 == 2\n",
        "tests/build/test_hidden.py": "def test_hidden():\n    assert True\n",
        "tests/ok/test_misnamed.py": "def check_something():\n    assert True\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess:
    # only the plugins these runs use: the installed ones (hypothesis, timeout...) cost seconds
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTEST_ADDOPTS": "", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist.plugin", "-p", "no:cacheprovider", "-rs", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_guard_names_files_pytest_skips_under_xdist(tmp_path):
    root = _suite(tmp_path)
    r = _pytest(root, "-n", "2")
    assert r.returncode == 1, r.stdout[-3000:]
    assert "2 test file(s) under tests/ were not collected" in r.stdout
    assert "build/test_hidden.py" in r.stdout and "ok/test_misnamed.py" in r.stdout
    assert "1 failed, 1 passed" in r.stdout  # test_ok passed; the guard failed

    # once every file yields a test (and pytest is told not to skip 'build'), it passes
    root = _suite(tmp_path, "norecursedirs = .* venv\n")
    (root / "tests/ok/test_misnamed.py").write_text("def test_something():\n    assert True\n")
    r = _pytest(root, "-n", "2")
    assert r.returncode == 0, r.stdout[-3000:]
    assert "4 passed" in r.stdout


def test_the_guard_steps_aside_for_a_subset(tmp_path):
    root = _suite(tmp_path)
    r = _pytest(root, "tests/ok")  # the guard is not even collected
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-3000:]
    for subset in (["tests/test_guard.py"], ["--ignore=tests/ok"], ["tests/test_guard.py::test_guard"]):
        r = _pytest(root, *subset)
        assert r.returncode == 0, r.stdout[-3000:]
        assert "the collection guard needs the whole suite" in r.stdout


def test_scripts_test_sh_fails_when_pytest_collects_nothing():
    """pytest's exit code 5 (no tests ran) fails scripts/test.sh: a typo in a path or a
    marker must not look like a green run."""
    r = subprocess.run(
        ["bash", "scripts/test.sh", "-n", "0", "-p", "no:cacheprovider", "tests/cli", "-k", "no_such_test_anywhere"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert "scripts/test.sh: pytest collected no tests; failing on purpose" in r.stderr
