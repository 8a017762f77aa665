"""Scale-out: ``torchrun --nproc_per_node=2 -m lab_ci.train.run`` over gloo on CPU
computes what one process computes (same global batch), with DDP and with FSDP,
and the CLI entry point reports bad input as one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from train_helpers import arithmetic_records, write_jsonl

from lab_ci.train.loop import TrainConfig
from lab_ci.train.phases import PhaseSpec, train_phases

TORCHRUN = Path(sys.executable).with_name("torchrun")
TRAIN = {
    "max_seq_len": 128,
    "max_tokens_per_batch": 128,
    "effective_batch_size": 8,
    "learning_rate": 3.0e-3,
    "device": "cpu",
    "seed": 1,
}


def _setup(tmp_path, tiny_student):
    k = write_jsonl(tmp_path / "k.jsonl", arithmetic_records(24, seed=1))
    s = write_jsonl(tmp_path / "s.jsonl", arithmetic_records(16, seed=2, system=False))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        json.dumps(
            {  # JSON is YAML
                "student": str(tiny_student),
                "out": "out",
                "train": TRAIN,
                "phases": [
                    {"name": "knowledge", "data": ["k.jsonl"]},
                    {"name": "skills", "data": ["s.jsonl", "k.jsonl"]},
                ],
            }
        )
    )
    phases = [PhaseSpec("knowledge", (k,)), PhaseSpec("skills", (s, k))]
    return cfg, phases


def _torchrun(cfg: Path, out: Path, strategy: str):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run(
        [
            str(TORCHRUN),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "lab_ci.train.run",
            "--config",
            str(cfg),
            "--out",
            str(out),
            "--strategy",
            strategy,
            "--result-json",
            str(out / "result.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    clues = [l for l in proc.stderr.splitlines() if any(w in l for w in ("Error", "error", "terminate", "what()"))]
    assert proc.returncode == 0, "\n".join(clues[:20]) + "\n...\n" + proc.stderr[-3000:]
    return json.loads((out / "result.json").read_text())


@pytest.mark.parametrize("strategy", ["ddp", pytest.param("fsdp", marks=pytest.mark.slow)])
def test_two_process_gloo_matches_single_process(tmp_path, tiny_student, strategy):
    cfg, phases = _setup(tmp_path, tiny_student)
    single = train_phases(tiny_student, phases, tmp_path / "single", TrainConfig.from_dict(TRAIN))
    result = _torchrun(cfg, tmp_path / "multi", strategy)
    assert result["completed"] and len(result["phases"]) == 2
    for i in (1, 2):
        one = [json.loads(x) for x in (tmp_path / "single" / f"phase-{i}" / "metrics.jsonl").read_text().splitlines()]
        two = [json.loads(x) for x in (tmp_path / "multi" / f"phase-{i}" / "metrics.jsonl").read_text().splitlines()]
        assert len(one) == len(two) == (3 if i == 1 else 5)
        for a, b in zip(one, two):
            assert (a["samples"], a["loss_tokens"]) == (b["samples"], b["loss_tokens"])
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    a = load_file(single.final_dir / "model.safetensors")
    b = load_file(tmp_path / "multi" / "phase-2" / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    # only rank 0 wrote: one metrics line per step, no stray temporary files
    assert not list((tmp_path / "multi").rglob("*.tmp"))


def test_run_cli_reports_bad_config_as_one_line(tmp_path, tiny_student):
    cfg, _ = _setup(tmp_path, tiny_student)
    (tmp_path / "k.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "lab_ci.train.run", "--config", str(cfg)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert f"lab-ci: error: {tmp_path / 'k.jsonl'}:1: no non-empty assistant message" in proc.stderr
    assert "Traceback" not in proc.stderr
    cfg.write_text("student: x\nout: o\nphases: [{name: k, data: [k.jsonl]}]\ntrain: {epochs: two}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lab_ci.train.run", "--config", str(cfg)], capture_output=True, text=True, timeout=120
    )
    assert (
        proc.returncode == 2
        and "training option 'epochs': 'two' is not of type 'integer'" in proc.stderr
        and "Traceback" not in proc.stderr
    )
