"""Teacher test fixtures: tiny random-weight GGUFs written by our own
scripts/make_bench_gguf.py (the real tiny teacher comes from tests/conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def llama_server(random_ggufs, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(random_ggufs["q8_0"]),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "512",
                "--model_alias",
                "tiny-random",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
