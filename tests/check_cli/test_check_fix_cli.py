"""``lab-ci check --fix`` / ``--diff`` / ``--unsafe-fixes`` end to end, on a real git
repository, with the pre-commit hook that runs it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_check_cli_e2e import add_leaf, assert_clean_error, lab_ci, text

from lab_ci.check.fix import same_data
from labtest import commit_all, run_git

MESSY = (
    b"version: 3   \r\n"
    b"created_by:    octocat\r\n"
    b"task_description: Write poems about cats.\r\n"
    b"seed_examples:\r\n"
    b"  - question: Write a haiku about a cat.\r\n"
    b"    answer: |\r\n"
    b"      Soft paws   \r\n"
    b"      on the sill.\r\n" + b"  - question: q2\r\n    answer: a2\r\n  - question: q3\r\n    answer: a3\r\n"
    b"  - question: q4\r\n    answer: a4\r\n\r\n\r\n\r\n\r\n  - question: q5\r\n    answer: a5"
)
LEAF = "compositional_skills/poems/cats/qna.yaml"


def repo_with_messy_leaf(tmp_path: Path) -> Path:
    repo = tmp_path / "tax"
    repo.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    add_leaf(repo, LEAF, MESSY)
    add_leaf(repo, "compositional_skills/poems/cats/attribution.txt", b"Me\n")
    commit_all(repo, "messy leaf")
    return repo


def test_diff_shows_the_fix_without_writing(tmp_path: Path):
    repo = repo_with_messy_leaf(tmp_path)
    p = lab_ci("--diff", cwd=repo)
    out, err = text(p)
    assert p.returncode == 1, (out, err)
    assert out.startswith(f"# {LEAF}: line breaks CRLF -> LF\n--- a/{LEAF}\n+++ b/{LEAF}\n")
    assert "\n-version: 3   \n-created_by:    octocat\n+version: 3\n+created_by: octocat\n" in out
    assert "\\ No newline at end of file" in out
    assert "Soft paws   " not in out.replace("       Soft paws   ", "")  # the text of the block is not touched
    assert f"lab-ci: would fix {LEAF}: " in err and "lab-ci: would fix " in err.splitlines()[-1]
    assert (repo / LEAF).read_bytes() == MESSY


def test_fix_writes_what_keeps_the_data_then_checks(tmp_path: Path):
    repo = repo_with_messy_leaf(tmp_path)
    before = yaml.safe_load(MESSY.decode())
    p = lab_ci("--fix", "--no-cache", "--format", "json", cwd=repo)
    out, err = text(p)
    fixed = (repo / LEAF).read_bytes()
    assert b"\r" not in fixed and fixed.endswith(b"    answer: a5\n")
    assert same_data(yaml.safe_load(fixed.decode()), before)
    # What is left: the spaces inside the | block (part of the answer's text).
    (f,) = json.loads(out)["files"]
    assert [(d["rule"], d["line"]) for d in f["diagnostics"]] == [("trailing-spaces", 7)]
    assert p.returncode == 1 and "lab-ci: fixed " in err
    # Nothing more to do: --diff is empty, exit 0.
    p = lab_ci("--diff", cwd=repo)
    assert p.returncode == 0 and p.stdout == b"", text(p)


def test_unsafe_fixes_clean_the_text_of_blocks_too(tmp_path: Path):
    repo = repo_with_messy_leaf(tmp_path)
    p = lab_ci("--fix", "--unsafe-fixes", "--no-cache", cwd=repo)
    out, err = text(p)
    assert p.returncode == 0, (out, err)
    answer = yaml.safe_load((repo / LEAF).read_text())["seed_examples"][0]["answer"]
    assert answer == "Soft paws\non the sill.\n"


def test_fix_usage_errors(tmp_path: Path):
    repo = repo_with_messy_leaf(tmp_path)
    assert_clean_error(lab_ci("--fix", "--head", "main", cwd=repo), "--fix and --diff work on the files on disk")
    assert_clean_error(lab_ci("--unsafe-fixes", cwd=repo), "--unsafe-fixes goes with --fix or --diff")
    p = lab_ci("--fix", "--diff", cwd=repo)
    assert p.returncode == 2 and b"not allowed with argument" in p.stderr


def test_fix_only_touches_the_changed_leaves_with_base(tmp_path: Path):
    repo = repo_with_messy_leaf(tmp_path)
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    other = "compositional_skills/poems/dogs/qna.yaml"
    add_leaf(repo, other, MESSY)
    p = lab_ci("--fix", "--base", "main", "--no-cache", cwd=repo)
    assert p.returncode == 1, text(p)
    assert (repo / LEAF).read_bytes() == MESSY  # not part of the change
    assert (repo / other).read_bytes() != MESSY
