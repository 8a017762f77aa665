"""Files written whole or not at all (lab_ci.train.files), under real conditions: a file
size limit (RLIMIT_FSIZE: EFBIG, like a full disk), /dev/full (ENOSPC), read-only
folders, a file where a folder should be, and real SIGKILLs at each step of a folder
swap."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lab_ci.errors import LabCIError
from lab_ci.train.checkpoint import atomic_save
from lab_ci.train.files import atomic_dir, atomic_file, describe, recover_dir, replace_dir, writable_dir, write_cause
from labtest import REPO_ROOT, child_limits, file_size_limit

LIMIT = 64 * 1024


def test_a_checkpoint_that_does_not_fit_is_one_error_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "checkpoints" / "latest.pt"
    atomic_save({"w": torch.zeros(16)}, path)
    before = path.read_bytes()
    with file_size_limit(LIMIT), pytest.raises(LabCIError) as e:
        atomic_save({"w": torch.zeros(4 * LIMIT)}, path)  # torch reports only "unexpected pos"
    assert str(e.value) == f"{path}: cannot write: File too large (EFBIG)"
    assert path.read_bytes() == before  # the last good checkpoint is kept
    assert sorted(p.name for p in path.parent.iterdir()) == ["latest.pt"]


def test_a_text_file_that_does_not_fit_keeps_the_old_one(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("old")
    with file_size_limit(LIMIT), pytest.raises(LabCIError) as e:
        with atomic_file(path, "w") as fh:
            fh.write("x" * (2 * LIMIT))
    assert str(e.value) == f"{path}: cannot write: File too large (EFBIG)"
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_the_cause_behind_a_writer_that_hides_it_on_a_full_device():
    """/dev/full answers every write with ENOSPC, as a full disk does. Only writers that
    open it in place may be pointed at it (safetensors would rename a file over it)."""
    full = Path("/dev/full")
    assert stat.S_ISCHR(full.stat().st_mode), "/dev/full is not the full device on this machine"
    with pytest.raises(RuntimeError) as e:  # torch's own file writer: no errno in its error
        torch.save({"w": torch.zeros(1 << 16)}, str(full))
    assert describe(write_cause(e.value, full)) == "No space left on device (ENOSPC)"
    with pytest.raises(OSError) as e, open(full, "wb", buffering=0) as fh:
        fh.write(b"\0" * 4096)
    assert describe(write_cause(e.value, full)) == "No space left on device (ENOSPC)"
    assert write_cause(ValueError("a bug, not the disk"), full) is None
    assert stat.S_ISCHR(full.stat().st_mode)


def test_the_cause_behind_safetensors_own_error(tmp_path):
    from safetensors.torch import save_file

    with file_size_limit(LIMIT), pytest.raises(Exception) as e:  # its own error type, the errno in its text
        save_file({"w": torch.zeros(LIMIT)}, str(tmp_path / "model.safetensors"))
    assert "os error 27" in str(e.value)
    assert describe(write_cause(e.value, tmp_path / "probe")) == "File too large (EFBIG)"


def test_a_folder_that_does_not_fit_names_the_file_and_keeps_the_old_folder(tmp_path):
    dest = tmp_path / "final"
    with atomic_dir(dest) as d:
        (d / "a.txt").write_text("old")
    with file_size_limit(LIMIT), pytest.raises(LabCIError) as e:
        with atomic_dir(dest) as d:
            (d / "small.txt").write_text("new")
            (d / "big.bin").write_bytes(b"\0" * (2 * LIMIT))  # the error does not say which file
    assert str(e.value) == f"{dest}: cannot write: File too large (EFBIG)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt"]
    src = tmp_path / "src.bin"
    src.write_bytes(b"\0" * (2 * LIMIT))
    with file_size_limit(LIMIT), pytest.raises(LabCIError) as e:
        with atomic_dir(dest) as d:
            shutil.copyfile(src, d / "copy.bin")  # a copy's error names both files
    assert str(e.value) == f"{dest / 'copy.bin'}: cannot write: File too large (EFBIG)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "src.bin"]


SWAP = """
import sys
from pathlib import Path
from lab_ci.train.files import replace_dir
new, dest = Path(sys.argv[1]), Path(sys.argv[2])
replace_dir(new, dest, failpoints="test")
"""


def _folder(path: Path, version: str) -> Path:
    path.mkdir()
    for i in range(5):
        (path / f"f{i}.txt").write_text(version)
    return path


def _version(path: Path) -> str:
    """The version every file of a complete folder holds (fails on a mixed or partial one)."""
    names = sorted(p.name for p in path.iterdir())
    assert names == [f"f{i}.txt" for i in range(5)], names
    versions = {(path / n).read_text() for n in names}
    assert len(versions) == 1, versions
    return versions.pop()


@pytest.mark.parametrize(
    "step, after_recovery",
    [("before-swap", "old"), ("after-aside", "old"), ("after-in", "new")],
)
def test_a_swap_killed_at_any_step_leaves_a_complete_folder(tmp_path, step, after_recovery):
    dest = _folder(tmp_path / "release", "old")
    new = _folder(tmp_path / "release.tmp", "new")
    r = subprocess.run(
        [sys.executable, "-c", SWAP, str(new), str(dest)],
        env={**os.environ, "LAB_CI_FAILPOINTS": f"test.{step}"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == -9, r.stderr  # SIGKILL at the step
    # at this instant a complete folder is on disk: in its place, or set aside
    on_disk = dest if dest.exists() else tmp_path / "release.old"
    assert _version(on_disk) in ("old", "new")
    assert recover_dir(dest) is not None
    assert _version(dest) == after_recovery
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]
    # and the next replacement goes through
    replace_dir(_folder(tmp_path / "release.tmp", "newer"), dest)
    assert _version(dest) == "newer" and sorted(p.name for p in tmp_path.iterdir()) == ["release"]


def test_recovery_finishes_deleting_a_half_deleted_old_folder(tmp_path):
    dest = _folder(tmp_path / "release", "new")
    old = _folder(tmp_path / "release.old", "old")
    for p in sorted(old.iterdir())[:3]:  # killed in the middle of deleting it
        p.unlink()
    assert recover_dir(dest) == "removed release.old, left by an interrupted replacement of release"
    assert _version(dest) == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["release"]
    assert recover_dir(dest) is None  # nothing left to do


def test_writable_dir_names_the_option_the_path_and_the_cause(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(LabCIError) as e:
        writable_dir(a_file, "--out")
    assert str(e.value) == f"--out {a_file}: is a file, not a folder"
    with pytest.raises(LabCIError) as e:
        writable_dir(a_file / "sub", "--cache-dir")
    assert str(e.value) == f"--cache-dir {a_file / 'sub'}: cannot create the folder: Not a directory (ENOTDIR)"
    assert writable_dir(tmp_path / "a" / "b", "--out").is_dir()
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == []  # the probe is gone


READ_ONLY = """
import sys
from pathlib import Path
from lab_ci.errors import LabCIError
from lab_ci.train.files import writable_dir
try:
    writable_dir(Path(sys.argv[1]), "--out")
except LabCIError as e:
    print(e)
"""


def test_a_read_only_folder_is_refused_even_when_the_tests_run_as_root(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        outs = [
            subprocess.run(
                [sys.executable, "-c", READ_ONLY, str(p)],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                preexec_fn=child_limits(ordinary_user=True),
            ).stdout.strip()
            for p in (ro, ro / "sub")
        ]
    finally:
        ro.chmod(0o755)
    assert outs == [
        f"--out {ro}: cannot write in the folder: Permission denied (EACCES)",
        f"--out {ro / 'sub'}: cannot create the folder: Permission denied (EACCES)",
    ]
    assert list(ro.iterdir()) == []


def test_the_training_cli_reports_a_full_disk_as_one_line(tmp_path, tiny_student):
    """``python -m lab_ci.train.run`` with a file size limit its checkpoint does not fit
    (it holds the weights and two AdamW moments): one line naming the file, exit 2, no
    traceback, no temporary file; with --error-file the line goes there instead."""
    from train_helpers import arithmetic_records, write_jsonl

    write_jsonl(tmp_path / "d.jsonl", arithmetic_records(16, seed=3))
    train = {"save_every_steps": 1, "effective_batch_size": 8, "max_seq_len": 128, "max_tokens_per_batch": 256}
    (tmp_path / "run.yaml").write_text(
        f"student: {tiny_student}\nout: out\ntrain: {train}\nphases: [{{name: k, data: [d.jsonl]}}]\n"
    )
    weights = (tiny_student / "model.safetensors").stat().st_size
    cmd = [sys.executable, "-m", "lab_ci.train.run", "--config", str(tmp_path / "run.yaml")]
    limits = child_limits(file_size=weights * 3 // 2)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=limits, cwd=REPO_ROOT)
    ckpt = tmp_path / "out" / "phase-1" / "checkpoints" / "latest.pt"
    assert r.returncode == 2, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1] == f"lab-ci: error: {ckpt}: cannot write: File too large (EFBIG)"
    assert "Traceback" not in r.stderr
    assert list(ckpt.parent.iterdir()) == []
    error_file = tmp_path / "error.txt"
    r = subprocess.run(
        [*cmd, "--error-file", str(error_file)], capture_output=True, text=True, timeout=300, preexec_fn=limits
    )
    assert r.returncode == 2 and "lab-ci: error" not in r.stderr, r.stderr[-3000:]
    assert error_file.read_text() == f"{ckpt}: cannot write: File too large (EFBIG)\n"


def test_a_gguf_export_cut_one_byte_short_is_an_error_not_a_truncated_file(tmp_path, tiny_student):
    """numpy's tofile (which the gguf writer uses) can lose its last buffered bytes with
    no error; the exporter compares the file on disk with what it wrote."""
    from lab_ci.train.gguf_export import export_gguf

    size = export_gguf(tiny_student, tmp_path / "ref.gguf", quant="f32").stat().st_size
    out = tmp_path / "out" / "model.gguf"
    with file_size_limit(size - 1), pytest.raises(LabCIError) as e:
        export_gguf(tiny_student, out, quant="f32")
    assert str(e.value) == f"{out}: cannot write: File too large (EFBIG)"
    assert list(out.parent.iterdir()) == []
