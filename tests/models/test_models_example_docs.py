"""The example documents repository is deterministic and matches what the example
taxonomy's knowledge leaves pin (repo URL, commit, patterns)."""

from __future__ import annotations

import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from labtest import EXAMPLE_TAXONOMY, REPO_ROOT, run_git

SCRIPT = REPO_ROOT / "scripts" / "make_example_docs.py"
UPSTREAM = "https://github.com/lab-ci/example-documents.git"


def _make(out: Path) -> tuple[str, str]:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True, text=True)
    return proc.stdout.strip(), proc.stderr


def _knowledge_leaves() -> list[tuple[Path, dict]]:
    leaves = sorted((EXAMPLE_TAXONOMY / "knowledge").rglob("qna.yaml"))
    return [(p, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in leaves]


def test_models_docs_repo_is_deterministic_and_pinned(tmp_path: Path):
    first, log1 = _make(tmp_path / "a.git")
    again, log2 = _make(tmp_path / "a.git")
    elsewhere, _ = _make(tmp_path / "b.git")
    assert len(first) == 40 and first == again == elsewhere
    assert "created" in log1 and "already up to date" in log2

    leaves = _knowledge_leaves()
    assert len(leaves) >= 2
    files = run_git("ls-tree", "-r", "--name-only", first, cwd=tmp_path / "a.git").splitlines()
    for path, leaf in leaves:
        doc = leaf["document"]
        assert doc["repo"] == UPSTREAM, path
        assert doc["commit"] == first, f"{path} pins {doc['commit']}, the script makes {first}"
        for pattern in doc["patterns"]:
            matched = [f for f in files if fnmatchcase(f, pattern)]
            assert matched, f"{path}: pattern {pattern!r} matches nothing in {files}"
            assert all(f.endswith(".md") for f in matched)


def test_models_docs_repo_clones_through_url_rewrite(example_docs_repo: Path, tmp_path: Path):
    """Consumers map the pinned URL to the local repository with insteadOf."""
    (_, leaf), *_ = _knowledge_leaves()
    dest = tmp_path / "clone"
    run_git(
        "-c",
        f"url.{example_docs_repo}.insteadOf={UPSTREAM}",
        "clone",
        "--quiet",
        UPSTREAM,
        str(dest),
    )
    assert run_git("rev-parse", "HEAD", cwd=dest) == leaf["document"]["commit"]
    text = next(dest.glob(leaf["document"]["patterns"][0])).read_text(encoding="utf-8")
    assert text.startswith("# ") and "\n## " in text


def test_models_docs_repo_refuses_a_non_repo_folder(tmp_path: Path):
    out = tmp_path / "not-a-repo"
    out.mkdir()
    (out / "keep.txt").write_text("precious\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not a bare git repository" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "keep.txt").read_text() == "precious\n"
