"""Helpers for the build tests: the ``lab-ci build`` command line on the example
taxonomy with the tiny models, and the check that a release is whole.

A uniquely named module (not a conftest): test folders share one ``sys.path``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from labtest import REPO_ROOT

RECIPE = Path(__file__).with_name("recipe-tiny.yaml")
EXAMPLE_DOCS_URL = "https://github.com/lab-ci/example-documents.git"
ANTONYMS = "compositional_skills/linguistics/antonyms/qna.yaml"
HAIKU = "compositional_skills/writing/freeform/haiku/qna.yaml"


def build_cmd(repo: Path, out: Path, models: dict, docs: Path, *extra: str, cache: Path | None = None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "lab_ci",
        "build",
        "--taxonomy",
        str(repo),
        "--commit",
        "HEAD",
        "--teacher",
        str(models["teacher"]),
        "--student",
        str(models["student"]),
        "--out",
        str(out),
        "--config",
        str(RECIPE),
        "--document-mirror",
        f"{EXAMPLE_DOCS_URL}={docs}",
        "--no-progress",
    ]
    if cache is not None:
        cmd += ["--cache-dir", str(cache)]
    return cmd + list(extra)


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def run_build(cmd: list[str], timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    popen.setdefault("env", env())
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, **popen)


def assert_complete_release(rel: Path) -> dict:
    """``release/`` is whole and self-consistent: release.json lists every other file in
    it, each with the sha256 it has."""
    prov = json.loads((rel / "release.json").read_text())
    on_disk = {str(p.relative_to(rel)) for p in rel.rglob("*") if p.is_file()} - {"release.json"}
    assert set(prov["files"]) == on_disk
    for name, digest in prov["files"].items():
        assert hashlib.sha256((rel / name).read_bytes()).hexdigest() == digest, name
    return prov
