"""The GitHub files lab-ci ships are what GitHub accepts: every workflow (the repository's
own CI and the examples a taxonomy repository copies) against GitHub's workflow schema,
and ``action.yml`` against the action schema, with check-jsonschema's vendored copies of
the SchemaStore schemas (no network)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("examples/workflows/*.yml")])


def check(schema: str, *files: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("check-jsonschema")
    cmd = [str(exe) if exe.exists() else shutil.which("check-jsonschema") or "check-jsonschema"]
    return subprocess.run(
        [*cmd, "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True, timeout=120
    )


def test_there_are_workflows_to_check():
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "lab-ci-check.yml", "lab-ci-preview.yml", "lab-ci-build.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_matches_githubs_schema(path):
    out = check("vendor.github-workflows", path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_action_matches_githubs_schema():
    out = check("vendor.github-actions", ROOT / "action.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_broken_workflow_is_caught(tmp_path):
    """The check is not vacuous: a job without ``runs-on`` and a misspelt key fail it."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    stepz:\n      - run: echo hi\n")
    out = check("vendor.github-workflows", bad)
    assert out.returncode == 1 and "bad.yml" in out.stdout, out.stdout + out.stderr
