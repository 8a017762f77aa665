"""``lab-ci check`` end to end: a real process on real git repositories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from labtest import REPO_ROOT, run_git

BROKEN = b"version: 3\ntask_description: [unclosed\n"
NO_SEEDS = b"version: 3\ntask_description: missing the rest\ncreated_by: someone\n"


def lab_ci(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "HOME": str(cwd.parent / "home"),
        "XDG_CACHE_HOME": str(cwd.parent / "cache"),
        **(env or {}),
    }
    full_env.pop("LAB_CI_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "lab_ci", "check", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        timeout=120,
    )


def text(p: subprocess.CompletedProcess) -> tuple[str, str]:
    return p.stdout.decode(), p.stderr.decode()


def assert_clean_error(p: subprocess.CompletedProcess, needle: str) -> None:
    out, err = text(p)
    assert p.returncode == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("lab-ci: error: "), err
    assert needle in lines[0], err


def add_leaf(repo: Path, rel: str, data: bytes) -> Path:
    p = repo / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_example_taxonomy_all_formats(example_taxonomy_repo: Path):
    repo = example_taxonomy_repo
    p = lab_ci("--no-cache", "--format", "json", cwd=repo)
    assert p.returncode == 0, text(p)
    report = json.loads(p.stdout)
    leaves = sorted(str(x.relative_to(repo).as_posix()) for x in repo.rglob("qna.yaml"))
    assert [f["path"] for f in report["files"]] == leaves
    assert report["summary"]["invalid"] == 0 and report["summary"]["files"] == len(leaves)
    add_leaf(repo, "compositional_skills/broken/qna.yaml", BROKEN)
    for fmt in ("text", "json", "github", "sarif", "markdown"):
        p = lab_ci("--no-cache", "--format", fmt, cwd=repo)
        out, err = text(p)
        assert p.returncode == 1, (fmt, out, err)
        name = "compositional\\_skills/broken/qna.yaml" if fmt == "markdown" else "compositional_skills/broken/qna.yaml"
        assert name in out
        if fmt == "json":
            data = json.loads(out)
            bad = [f for f in data["files"] if not f["valid"]]
            assert [f["path"] for f in bad] == ["compositional_skills/broken/qna.yaml"]
            assert any(d["severity"] == "error" for d in bad[0]["diagnostics"])
        elif fmt == "sarif":
            log = json.loads(out)
            assert log["version"] == "2.1.0"
            assert any(r["level"] == "error" for r in log["runs"][0]["results"])
        elif fmt == "github":
            assert any(
                x.startswith("::error file=compositional_skills/broken/qna.yaml,line=") for x in out.splitlines()
            )
        elif fmt == "text":
            assert out.splitlines()[-1].startswith(f"Checked {len(leaves) + 1} files:")
        elif fmt == "markdown":
            assert out.startswith("### ❌ lab-ci check: 1 of")


def test_changed_leaves_only_with_base(example_taxonomy_repo: Path):
    repo = example_taxonomy_repo
    add_leaf(repo, "compositional_skills/new/qna.yaml", NO_SEEDS)  # untracked
    victim = sorted(repo.rglob("qna.yaml"))[0]
    deleted = victim.relative_to(repo).as_posix()
    victim.unlink()
    p = lab_ci("--no-cache", "--base", "main", "--format", "json", cwd=repo)
    assert p.returncode == 1, text(p)
    files = {f["path"]: f for f in json.loads(p.stdout)["files"]}
    assert set(files) == {"compositional_skills/new/qna.yaml", deleted}
    assert files["compositional_skills/new/qna.yaml"]["change"] == "added"
    assert files[deleted]["change"] == "deleted"
    out, _ = text(lab_ci("--no-cache", "--base", "main", cwd=repo))
    assert f"{deleted}: deleted" in out
    # Committed on a branch: --head names it; main's own leaves are not re-checked.
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    run_git("add", "-A", cwd=repo)
    run_git("commit", "--quiet", "-m", "pr", cwd=repo)
    p = lab_ci("--no-cache", "--base", "main", "--head", "pr", "--format", "json", cwd=repo)
    assert {f["path"] for f in json.loads(p.stdout)["files"]} == set(files)
    # Nothing changed: nothing checked, exit 0.
    p = lab_ci("--no-cache", "--base", "pr", "--format", "json", cwd=repo)
    assert p.returncode == 0 and json.loads(p.stdout)["summary"]["files"] == 0


def test_paths_attribution_and_output_file(example_taxonomy_repo: Path):
    repo = example_taxonomy_repo
    knowledge = sorted(repo.glob("knowledge/**/attribution.txt"))
    assert knowledge, "the example taxonomy has knowledge leaves with attribution.txt"
    attr = knowledge[0].relative_to(repo).as_posix()
    out_file = repo.parent / "report.json"
    p = lab_ci("--no-cache", attr, "--format", "json", "--output", str(out_file), cwd=repo)
    assert p.returncode in (0, 1) and p.stdout == b""
    data = json.loads(out_file.read_text())
    assert [f["path"] for f in data["files"]] == [attr.replace("attribution.txt", "qna.yaml")]
    # A path relative to a subfolder, with --taxonomy pointing up.
    sub = repo / "knowledge"
    p = lab_ci(
        "--no-cache", "--taxonomy", "..", Path(attr).relative_to("knowledge").as_posix(), "--format", "json", cwd=sub
    )
    assert [f["path"] for f in json.loads(p.stdout)["files"]] == [attr.replace("attribution.txt", "qna.yaml")]


def test_jobs_and_strict(example_taxonomy_repo: Path):
    repo = example_taxonomy_repo
    for i in range(8):  # enough files that --jobs really fans out to processes
        add_leaf(repo, f"compositional_skills/broken{i}/qna.yaml", BROKEN if i % 2 else NO_SEEDS)
    one = lab_ci("--no-cache", "--format", "json", cwd=repo)
    two = lab_ci("--no-cache", "--format", "json", "--jobs", "2", cwd=repo)
    assert one.returncode == two.returncode == 1
    assert json.loads(one.stdout) == json.loads(two.stdout)
    # A leaf with warnings only (its attribution.txt removed): valid by default, invalid
    # with --strict.
    leaf = "compositional_skills/linguistics/antonyms/qna.yaml"
    (repo / leaf).with_name("attribution.txt").unlink()
    warned = lab_ci("--no-cache", "--format", "json", leaf, cwd=repo)
    assert warned.returncode == 0, text(warned)
    (only,) = json.loads(warned.stdout)["files"]
    assert only["valid"] and {d["rule"] for d in only["diagnostics"]} == {"attribution-missing"}
    strict = lab_ci("--no-cache", "--strict", leaf, cwd=repo)
    assert strict.returncode == 1, text(strict)


def test_cache_gives_the_same_report(example_taxonomy_repo: Path):
    repo = example_taxonomy_repo
    add_leaf(repo, "compositional_skills/broken/qna.yaml", BROKEN)
    first = lab_ci("--format", "json", cwd=repo)
    again = lab_ci("--format", "json", cwd=repo)
    assert first.returncode == again.returncode == 1
    assert json.loads(first.stdout) == json.loads(again.stdout)


def test_bad_input_is_one_line_exit_2(example_taxonomy_repo: Path, tmp_path: Path):
    repo = example_taxonomy_repo
    assert_clean_error(lab_ci("--base", "no-such-rev", cwd=repo), "unknown revision 'no-such-rev'")
    assert_clean_error(lab_ci("--head", "no-such-rev", cwd=repo), "unknown revision")
    assert_clean_error(lab_ci(str(tmp_path), cwd=repo), "outside the taxonomy")
    assert_clean_error(lab_ci("knowledge/nope/qna.yaml", cwd=repo), "no such file")
    assert_clean_error(lab_ci("--taxonomy", str(tmp_path / "missing"), cwd=repo), "does not exist")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_clean_error(lab_ci("--base", "main", cwd=plain), "not inside a git repository")
    assert_clean_error(lab_ci(os.fsdecode(b"knowledge/\xff.yaml"), cwd=repo), "not valid UTF-8")
    assert_clean_error(
        lab_ci("--no-cache", "--output", str(tmp_path / "no" / "dir" / "x.json"), cwd=repo), "cannot write"
    )
    # argparse usage errors: exit 2 as well.
    for args in (["--schema-version", "nine"], ["--format", "xml"], ["--jobs", "-1"]):
        p = lab_ci(*args, cwd=repo)
        assert p.returncode == 2 and b"Traceback" not in p.stderr
    p = lab_ci("--schema-version", "7", cwd=repo)
    assert_clean_error(p, "schema version")


def test_lab_ci_repository_taxonomy_subfolder_paths_are_repo_relative():
    p = subprocess.run(
        [sys.executable, "-m", "lab_ci", "check", "--no-cache", "--taxonomy", "taxonomy", "--format", "sarif"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )
    assert p.returncode in (0, 1), p.stderr
    results = json.loads(p.stdout)["runs"][0]["results"]
    for r in results:
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("taxonomy/")


def test_a_folder_named_like_a_workflow_command_cannot_inject_one(example_taxonomy_repo: Path):
    repo = example_taxonomy_repo
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    evil = "knowledge/b\n::error file=x::pwned"
    add_leaf(repo, f"{evil}/qna.yaml", BROKEN)
    run_git("add", "-A", cwd=repo)
    run_git("commit", "--quiet", "-m", "a hostile folder name", cwd=repo)
    for fmt in ("text", "github"):
        for args in (["--base", "main", "--head", "pr"], ["--base", "main"], []):
            p = lab_ci("--no-cache", "--format", fmt, *args, cwd=repo)
            out, err = text(p)
            assert p.returncode == 1, err
            assert "pwned" in out  # the file is reported...
            lines = out.splitlines()
            # ...but never on a line of its own, so never as a workflow command.
            assert not any("pwned" in x and x.startswith("::error file=x") for x in lines)
            if fmt == "text":
                assert not any(x.startswith("::") for x in lines)
                assert any(x.startswith("knowledge/b\\n::error file=x::pwned/qna.yaml:") for x in lines)
            else:
                assert all(
                    x.startswith(
                        (
                            "::error file=knowledge/b%0A%3A%3Aerror file=x%3A%3Apwned/qna.yaml,",
                            "::warning file=knowledge/b%0A",
                            "::notice file=knowledge/b%0A",
                        )
                    )
                    for x in lines
                    if x.startswith("::") and "pwned" in x
                )


def test_bare_repository_needs_a_revision(example_taxonomy_repo: Path, tmp_path: Path):
    bare = tmp_path / "mirror.git"
    run_git("clone", "--quiet", "--bare", str(example_taxonomy_repo), str(bare))
    assert_clean_error(lab_ci("--taxonomy", str(bare), cwd=tmp_path), "is a bare repository")
    p = lab_ci("--no-cache", "--taxonomy", str(bare), "--head", "main", "--format", "json", cwd=tmp_path)
    assert p.returncode in (0, 1) and json.loads(p.stdout)["summary"]["files"] > 0
