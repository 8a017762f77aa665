"""scripts/build_llama_server.sh without compiling anything: the pin it reads, the stamp
it trusts, what it says when there is nothing to use (a build takes ~10 minutes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "build_llama_server.sh"


def checkout(tmp_path: Path, pyproject: str) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / SCRIPT.name)
    (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(root / "scripts" / SCRIPT.name), *args], capture_output=True, text=True, timeout=60
    )


def test_no_pin_is_a_clear_error(tmp_path):
    root = checkout(tmp_path, '[project]\nname = "x"\n')
    r = run(root)
    assert r.returncode == 1
    assert "pins no 'llama-cpp-python[server]==X.Y.Z'" in r.stderr


def test_print_says_how_to_build_when_nothing_is_built(tmp_path):
    root = checkout(tmp_path, 'preview = ["llama-cpp-python[server]==0.3.36"]\n')
    r = run(root, "--print")
    assert r.returncode == 1 and r.stdout == ""
    assert "llama-server is not built (run: bash scripts/build_llama_server.sh)" in r.stderr


def test_a_binary_built_with_other_flags_is_not_trusted(tmp_path):
    root = checkout(tmp_path, 'preview = ["llama-cpp-python[server]==0.3.36"]\n')
    bin_dir = root / ".cache" / "llama-server" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "llama-server"
    fake.write_text("#!/bin/sh\necho version: 1\n")
    fake.chmod(0o755)
    (root / ".cache" / "llama-server" / "stamp").write_text("0123456789abcdef\n")  # another pin or flags
    assert run(root, "--print").returncode == 1
    # with the stamp of this pin and these flags it is used as it is, without building
    flags = (
        "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
        if subprocess.check_output(["uname", "-m"], text=True).strip() == "x86_64"
        else ""
    )
    want = subprocess.run(
        ["bash", "-c", f'echo "llama-cpp-python==0.3.36; cflags: {flags}; cmake: " | sha256sum | cut -c1-16'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (root / ".cache" / "llama-server" / "stamp").write_text(want)
    r = run(root, "--print")
    assert r.returncode == 0 and r.stdout.strip() == str(fake)
