"""The pre-commit hook and the GitHub Action, run the way their hosts run them."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from labtest import REPO_ROOT, run_git

BIN = str(Path(sys.executable).parent)
BROKEN = b"version: 3\ntask_description: [unclosed\n"


def env_with_lab_ci(tmp: Path, **extra) -> dict:
    return {
        **os.environ,
        "PATH": BIN + os.pathsep + os.environ["PATH"],
        "HOME": str(tmp),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        **extra,
    }


def hook(hook_id: str) -> dict:
    hooks = {h["id"]: h for h in yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"lab-ci-check", "lab-ci-fix"}
    return hooks[hook_id]


def test_pre_commit_hook_checks_the_leaf_of_a_staged_attribution(example_taxonomy_repo: Path, tmp_path: Path):
    hook = globals()["hook"]("lab-ci-check")
    assert hook["language"] == "python" and hook["pass_filenames"] is True
    files = re.compile(hook["files"])
    assert files.search("knowledge/a/qna.yaml") and files.search("knowledge/a/attribution.txt")
    assert not files.search("knowledge/a/qna.yaml.bak") and not files.search("README.md")
    # misnamed leaves reach lab-ci (which names them), in the taxonomy folders only
    assert files.search("knowledge/a/qna.yml") and files.search("sub/compositional_skills/b/movie_qna.YAML")
    assert not files.search("docs/template_qna.yaml") and not files.search(".github/workflows/ci.yml")
    repo = example_taxonomy_repo
    attr = sorted(repo.glob("knowledge/**/attribution.txt"))[0]
    leaf = attr.with_name("qna.yaml")
    leaf.write_bytes(BROKEN)  # the attribution is staged; its leaf is broken
    staged = [attr.relative_to(repo).as_posix()]
    # pre-commit runs `entry args... filenames...` from the repository root.
    argv = shlex.split(hook["entry"]) + hook.get("args", []) + ["--format", "json"] + staged
    p = subprocess.run(argv, cwd=repo, env=env_with_lab_ci(tmp_path), capture_output=True, timeout=120)
    assert p.returncode == 1, p.stderr
    data = json.loads(p.stdout)
    assert [f["path"] for f in data["files"]] == [leaf.relative_to(repo).as_posix()]
    assert not data["files"][0]["valid"]
    # The qna.yaml and its attribution.txt staged together: the leaf is checked once.
    p = subprocess.run(
        argv + [leaf.relative_to(repo).as_posix()],
        cwd=repo,
        env=env_with_lab_ci(tmp_path),
        capture_output=True,
        timeout=120,
    )
    assert len(json.loads(p.stdout)["files"]) == 1


def _check_step() -> dict:
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = {s.get("id"): s for s in action["runs"]["steps"]}
    assert "${{ github.event.pull_request.base.sha }}" in action["inputs"]["base"]["default"]
    assert any("GITHUB_ACTION_PATH" in s.get("run", "") for s in action["runs"]["steps"])
    return steps["check"]


def run_action_step(repo: Path, tmp_path: Path, **inputs) -> tuple[subprocess.CompletedProcess, Path, Path]:
    step = _check_step()
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    env = {k: v for k, v in step["env"].items()}
    defaults = {
        "TAXONOMY": ".",
        "BASE": "main",
        "HEAD_REV": "",
        "SCHEMA_VERSION": "latest",
        "STRICT": "false",
        "FORMAT": "github",
        "SARIF_FILE": "lab-ci.sarif",
    }
    env = {k: str(inputs.get(k, defaults[k])) for k in env}
    p = subprocess.run(
        ["bash", "-c", step["run"]],
        cwd=repo,
        capture_output=True,
        timeout=300,
        env=env_with_lab_ci(tmp_path, GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output), **env),
    )
    return p, summary, output


def test_action_check_step_annotates_summarises_and_fails(example_taxonomy_repo: Path, tmp_path: Path):
    repo = example_taxonomy_repo
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    bad = repo / "compositional_skills/new_skill/qna.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(BROKEN)
    run_git("add", "-A", cwd=repo)
    run_git("commit", "--quiet", "-m", "add a broken leaf", cwd=repo)
    p, summary, output = run_action_step(repo, tmp_path)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.decode().splitlines()
    assert any(x.startswith("::error file=compositional_skills/new_skill/qna.yaml,line=") for x in lines)
    assert summary.read_text().startswith("### ❌ lab-ci check: 1 of 1 file invalid")
    outputs = dict(x.split("=", 1) for x in output.read_text().splitlines())
    assert outputs == {"exit-code": "1", "sarif-file": "lab-ci.sarif"}
    sarif = json.loads((repo / "lab-ci.sarif").read_text())
    assert (
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == "compositional_skills/new_skill/qna.yaml"
    )


def test_action_check_step_passes_and_reports_usage_errors(example_taxonomy_repo: Path, tmp_path: Path):
    repo = example_taxonomy_repo
    p, summary, output = run_action_step(repo, tmp_path, SARIF_FILE="")
    assert p.returncode == 0, p.stderr
    assert summary.read_text().startswith("### ✅ lab-ci check: no leaves to check")
    assert output.read_text().strip() == "exit-code=0"
    p, summary, output = run_action_step(repo, tmp_path, BASE="0123456789abcdef0123456789abcdef01234567")
    assert p.returncode == 2
    assert p.stderr.decode().strip().startswith("lab-ci: error: unknown revision")
    assert "exit-code=2" in output.read_text()


def test_pre_commit_hook_passes_staged_symlinked_leaves(example_taxonomy_repo: Path, tmp_path: Path):
    """pre-commit's own filter (identify's tags; a file is kept when its tags hold every
    one of ``types`` and, if set, one of ``types_or``) keeps a symlinked qna.yaml, and
    lab-ci then reports it as a symlink instead of it being skipped silently."""
    from identify.identify import tags_from_path

    hook = globals()["hook"]("lab-ci-check")
    types = set(hook.get("types", ["file"]))  # pre-commit's defaults
    types_or = set(hook.get("types_or", []))
    repo = example_taxonomy_repo
    target = sorted(repo.glob("knowledge/**/qna.yaml"))[0]
    link = repo / "knowledge/linked/qna.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(os.path.relpath(target, link.parent))
    for path in (link, target):
        tags = tags_from_path(str(path))
        assert types <= tags and (not types_or or tags & types_or), (path, tags)
    argv = shlex.split(hook["entry"]) + hook.get("args", []) + ["--format", "json", link.relative_to(repo).as_posix()]
    p = subprocess.run(argv, cwd=repo, env=env_with_lab_ci(tmp_path), capture_output=True, timeout=120)
    assert p.returncode == 1, p.stderr
    (f,) = json.loads(p.stdout)["files"]
    assert f["path"] == "knowledge/linked/qna.yaml" and "symbolic link" in f["diagnostics"][0]["message"]


def test_pre_commit_fix_hook_rewrites_the_staged_leaf(example_taxonomy_repo: Path, tmp_path: Path):
    """The lab-ci-fix hook, run as pre-commit runs it: the staged leaf gets its trailing
    spaces and blank lines at the end fixed, its data unchanged; the check then passes."""
    fix = hook("lab-ci-fix")
    assert fix["files"] == hook("lab-ci-check")["files"] and fix["entry"] == "lab-ci check --fix"
    repo = example_taxonomy_repo
    leaf = sorted(repo.glob("compositional_skills/**/qna.yaml"))[0]
    clean = leaf.read_bytes()
    messy = clean.replace(b"\n", b"   \n", 2) + b"\n\n"
    leaf.write_bytes(messy)
    argv = shlex.split(fix["entry"]) + [leaf.relative_to(repo).as_posix()]
    p = subprocess.run(argv, cwd=repo, env=env_with_lab_ci(tmp_path), capture_output=True, timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert leaf.read_bytes() == clean and b"lab-ci: fixed 3 problems in 1 file." in p.stderr
