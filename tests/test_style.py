"""The tree is ruff-clean: lint and format, with the configuration in pyproject.toml.

ruff is pinned in the ``test`` extra, so a new ruff release cannot fail this test.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check", "--no-fix", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_is_clean(args):
    out = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, (
        f"ruff {' '.join(args)} found problems (run `ruff {args[0]} --fix` / `ruff format`):\n{out.stdout}{out.stderr}"
    )
