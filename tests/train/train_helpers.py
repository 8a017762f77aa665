"""Helpers and fixtures for the training tests: a tiny random llama student with a BPE
tokenizer trained on the spot (no downloads), and small messages JSONL files.

A uniquely named module rather than a ``conftest.py``: test folders share one
``sys.path``, so a second ``conftest`` module would make ``from conftest import``
ambiguous for other folders. Test modules import the fixtures they use from here."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest


def arithmetic_records(n: int, seed: int = 0, system: bool = True) -> list[dict]:
    """Deterministic Q/A records with varied lengths (a learnable toy task)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        pad = " Please answer carefully." * rng.randint(0, 4)
        msgs = [
            {"role": "user", "content": f"What is {a} plus {b}?{pad}"},
            {"role": "assistant", "content": f"{a} plus {b} is {a + b}."},
        ]
        if system:
            msgs.insert(0, {"role": "system", "content": "You are a careful calculator."})
        out.append({"messages": msgs, "metadata": {"i": i}})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    """An HF dir: random LlamaForCausalLM (hidden 32, 2 layers) + LAB-template BPE tokenizer."""
    from lab_ci.train.tiny import make_tiny_llama, train_bpe_tokenizer

    texts = [m["content"] for r in arithmetic_records(200, seed=99) for m in r["messages"]]
    tok = train_bpe_tokenizer(texts, vocab_size=320)
    return make_tiny_llama(tmp_path_factory.mktemp("student") / "student", tok, hidden=32, layers=2)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_student):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_student)


@pytest.fixture
def small_config():
    from lab_ci.train.loop import TrainConfig

    return TrainConfig.from_dict(
        dict(
            max_seq_len=128,
            max_tokens_per_batch=256,
            effective_batch_size=8,
            epochs=1,
            learning_rate=3e-3,
            warmup_steps=1,
            seed=1,
            device="cpu",
        )
    )
