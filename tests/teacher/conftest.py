"""Teacher test fixtures: tiny random-weight GGUFs written by our own
scripts/make_bench_gguf.py (the real tiny teacher comes from tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def make_gguf(out: Path, quant: str, *extra: str) -> Path:
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "make_bench_gguf.py"),
            "--shape",
            "tiny",
            "--quant",
            quant,
            "--out",
            str(out),
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def random_ggufs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("random-gguf")
    return {
        "f32": make_gguf(d / "tiny-f32.gguf", "f32"),
        "q8_0": make_gguf(d / "tiny-q8_0.gguf", "q8_0"),
        "chatml": make_gguf(d / "tiny-chatml.gguf", "q8_0", "--chat-template", CHATML, "--seed", "3"),
    }
