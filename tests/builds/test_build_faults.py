"""``lab-ci build`` when the disk or the paths let it down, and when it is killed while
it swaps the release in: real conditions only (a file size limit, read-only folders
for a process without root's override, a file where a folder should be, real SIGKILLs
at each step of the swap), through the real CLI.

Every failure must be one ``lab-ci: error:`` line naming the path and the cause (exit
2, no traceback), leave no temporary file, and leave the last release whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from build_helpers import assert_complete_release, build_cmd, env, run_build

from lab_ci.builds.store import file_lock
from labtest import child_limits

HINT_EFBIG = "a file size limit (ulimit -f, or the file system's) stopped it; raise it and run the build again"


def _one_error_line(stderr: str) -> str:
    """The build's error line; fails on a traceback or on more than one error line."""
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-3000:]
    errors = [l for l in stderr.splitlines() if l.startswith("lab-ci: error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith((".tmp", ".old")))


# ------------------------------------------------------------------ paths, before any work
@pytest.fixture
def cmd_for(example_taxonomy_repo, tiny_models, example_docs_repo):
    def make(out: Path, *extra: str, cache: Path | None = None) -> list[str]:
        return build_cmd(example_taxonomy_repo, out, tiny_models, example_docs_repo, *extra, cache=cache)

    return make


@pytest.mark.parametrize(
    "case, expected",
    [
        ("out is a file", "--out {out}: is a file, not a folder"),
        ("out below a file", "--out {out}: cannot create the folder: Not a directory (ENOTDIR)"),
        ("out read-only", "--out {out}: cannot write in the folder: Permission denied (EACCES)"),
        ("out below a read-only folder", "--out {out}: cannot create the folder: Permission denied (EACCES)"),
        ("cache is a file", "--cache-dir {cache}: is a file, not a folder"),
        ("cache read-only", "--cache-dir {cache}: cannot write in the folder: Permission denied (EACCES)"),
    ],
)
def test_unusable_out_or_cache_folders_are_one_line_user_errors(tmp_path, cmd_for, case, expected):
    out, cache = tmp_path / "out", tmp_path / "cache"
    read_only = tmp_path / "ro"
    read_only.mkdir()
    if case == "out is a file":
        out.write_text("not a folder")
    elif case == "out below a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    elif case == "out read-only":
        out = read_only
    elif case == "out below a read-only folder":
        out = read_only / "out"
    elif case == "cache is a file":
        cache.write_text("not a folder")
    elif case == "cache read-only":
        cache = read_only
    read_only.chmod(0o555)
    try:
        r = run_build(cmd_for(out, cache=cache), timeout=120, preexec_fn=child_limits(ordinary_user=True))
    finally:
        read_only.chmod(0o755)
    assert r.returncode == 2, r.stderr[-3000:]
    assert _one_error_line(r.stderr) == "lab-ci: error: " + expected.format(out=out, cache=cache)
    assert "== validate" not in r.stderr  # before any work
    assert list(read_only.iterdir()) == []


def test_a_second_build_in_the_same_out_folder_is_refused(tmp_path, cmd_for):
    out = tmp_path / "out"
    with file_lock(out / ".lock", blocking=False) as locked:  # as a running build holds it
        assert locked
        r = run_build(cmd_for(out), timeout=120)
    assert r.returncode == 2, r.stderr[-3000:]
    assert _one_error_line(r.stderr) == f"lab-ci: error: --out {out}: another lab-ci build is running in this folder"
    assert sorted(p.name for p in out.iterdir()) == [".lock", "cache"]


# ------------------------------------------------------------------ a full disk, a killed swap
@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_models, example_docs_repo):
    """One complete build of the example taxonomy (its own repository), to copy from."""
    from labtest import EXAMPLE_TAXONOMY, run_git

    root = tmp_path_factory.mktemp("released")
    repo = root / "taxonomy"
    shutil.copytree(EXAMPLE_TAXONOMY, repo)
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    run_git("add", "-A", cwd=repo)
    run_git("commit", "--quiet", "-m", "example taxonomy", cwd=repo)
    out = root / "out"
    r = run_build(build_cmd(repo, out, tiny_models, example_docs_repo))
    assert r.returncode == 0, r.stderr[-4000:]
    assert_complete_release(out / "release")
    return {"repo": repo, "out": out, "models": tiny_models, "docs": example_docs_repo}


def _copy(released: dict, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(released["out"], out)
    # manifests and the training run file name absolute paths of the original folder (the
    # release is left as it was: its files are checked against their sha256)
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".yaml") and "release" not in f.relative_to(out).parts:
            f.write_text(f.read_text().replace(str(released["out"]), str(out)))
    return out


def _cmd(released: dict, out: Path, *extra: str) -> list[str]:
    return build_cmd(released["repo"], out, released["models"], released["docs"], *extra)


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line_and_a_rerun_resumes(released, tmp_path):
    out = _copy(released, tmp_path)
    shutil.rmtree(out / "train")
    weights = (released["models"]["student"] / "model.safetensors").stat().st_size
    # the checkpoint (weights and two AdamW moments) does not fit; the data, the manifests do
    r = run_build(_cmd(released, out, "--until", "train"), preexec_fn=child_limits(file_size=weights * 3 // 2))
    assert r.returncode == 2, r.stderr[-3000:]
    ckpt = out / "train" / "phase-1" / "checkpoints" / "latest.pt"
    assert _one_error_line(r.stderr) == f"lab-ci: error: {ckpt}: cannot write: File too large (EFBIG); {HINT_EFBIG}"
    assert _leftovers(out) == [] and not ckpt.exists()
    r = run_build(_cmd(released, out, "--until", "train"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert Path(json.loads((out / "train" / "manifest.json").read_text())["final_dir"]).is_dir()


@pytest.mark.slow
def test_a_full_disk_during_the_gguf_export_keeps_the_last_release(released, tmp_path):
    out = _copy(released, tmp_path)
    before = (out / "release" / "release.json").read_bytes()
    gguf = (out / "release" / "model.gguf").stat().st_size
    assert (out / "release" / "model" / "model.safetensors").stat().st_size < gguf - 1
    # every file of the release fits but the GGUF export (f32: the weights and the vocabulary)
    r = run_build(_cmd(released, out), preexec_fn=child_limits(file_size=gguf - 1))
    assert r.returncode == 2, r.stderr[-3000:]
    assert "== release" in r.stderr
    assert _one_error_line(r.stderr) == (
        f"lab-ci: error: {out / 'release.tmp' / 'model.gguf'}: cannot write: File too large (EFBIG); {HINT_EFBIG}"
    )
    assert _leftovers(out) == []
    assert (out / "release" / "release.json").read_bytes() == before
    assert_complete_release(out / "release")


@pytest.mark.slow
@pytest.mark.parametrize("step", ["before-swap", "after-aside", "after-in"])
def test_a_build_killed_during_the_release_swap_leaves_a_complete_release(released, tmp_path, step):
    """A real SIGKILL at each step of the swap (a failpoint: the build kills itself
    there), then the next build: a complete, self-consistent release at every point."""
    out = _copy(released, tmp_path)
    old = (out / "release" / "release.json").read_bytes()
    r = run_build(_cmd(released, out), env={**env(), "LAB_CI_FAILPOINTS": f"release.{step}"})
    assert r.returncode == -9, r.stderr[-3000:]  # killed at the step
    new = (out / "release.tmp" / "release.json").read_bytes() if step != "after-in" else None
    on_disk = out / ("release.old" if step == "after-aside" else "release")
    assert_complete_release(on_disk)
    if step == "after-aside":
        assert not (out / "release").exists()  # the one instant with nothing in place
        assert_complete_release(out / "release.tmp")
    r = run_build(_cmd(released, out, "--until", "validate"))
    assert r.returncode == 0, r.stderr[-3000:]
    prov = assert_complete_release(out / "release")
    if step == "after-in":
        assert (out / "release" / "release.json").read_bytes() != old  # the new release stays
        assert "release: removed release.old" in r.stderr
    else:
        assert (out / "release" / "release.json").read_bytes() == old != new  # the old one is back
        assert "release: " in r.stderr
    assert _leftovers(out) == []
    assert prov["taxonomy"]["commit"] == json.loads(old)["taxonomy"]["commit"]
