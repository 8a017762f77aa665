"""The training loop on a tiny llama: learning, gradient accumulation, exact resume,
config checking and phased training."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import arithmetic_records, write_jsonl

from lab_ci.errors import LabCIError
from lab_ci.train.loop import StopTraining, TrainConfig, lr_lambda, train
from lab_ci.train.phases import PhaseSpec, train_phases


def _metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _weights(model_dir):
    return load_file(model_dir / "model.safetensors")


def test_loss_goes_down(tmp_path, tiny_student, small_config):
    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(48, seed=1))
    cfg = TrainConfig.from_dict({"epochs": 3, "learning_rate": 1e-2}, base=small_config)
    res = train(tiny_student, [data], tmp_path / "out", cfg)
    m = _metrics(res.metrics_path)
    assert res.completed and res.global_step == 18 == len(m)
    last_epoch = [e["loss"] for e in m if e["epoch"] == 2]
    assert sum(last_epoch) / len(last_epoch) < 0.7 * m[0]["loss"]
    assert all(e["samples"] == 8 for e in m)
    # the final dir is a loadable HF model with the tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(res.final_dir)
    tok = AutoTokenizer.from_pretrained(res.final_dir)
    assert tok.eos_token == "<|endoftext|>" and model.config.num_hidden_layers == 2
    summary = json.loads((res.final_dir / "lab-ci-train.json").read_text())
    assert summary["global_step"] == 18 and summary["data"]["samples"] == 48


def test_gradient_accumulation_matches_one_big_batch(tmp_path, tiny_student, small_config):
    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(32, seed=2))
    runs = {}
    for name, budget in (("big", 4096), ("small", 128)):
        cfg = TrainConfig.from_dict(
            {"effective_batch_size": 16, "max_tokens_per_batch": budget, "max_steps": 2}, base=small_config
        )
        res = train(tiny_student, [data], tmp_path / name, cfg)
        runs[name] = _metrics(res.metrics_path)
    big, small = runs["big"], runs["small"]
    assert big[0]["micro_batches"] == 1 and small[0]["micro_batches"] >= 4
    assert big[0]["loss_tokens"] == small[0]["loss_tokens"]
    for b, s in zip(big, small):
        assert s["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert small[0]["grad_norm"] == pytest.approx(big[0]["grad_norm"], rel=1e-4)


def test_killed_run_resumes_bit_exact(tmp_path, tiny_student, small_config):
    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(24, seed=3))
    cfg = TrainConfig.from_dict({"epochs": 2, "save_every_steps": 2}, base=small_config)
    whole = train(tiny_student, [data], tmp_path / "whole", cfg)

    def kill_at_5(step, entry):
        if step == 5:
            raise StopTraining("simulated kill")

    with pytest.raises(StopTraining):
        train(tiny_student, [data], tmp_path / "killed", cfg, on_step=kill_at_5)
    assert len(_metrics(tmp_path / "killed" / "metrics.jsonl")) == 5
    resumed = train(tiny_student, [data], tmp_path / "killed", cfg)
    assert resumed.resumed_from_step == 4  # last checkpoint before the kill
    assert resumed.global_step == whole.global_step == 6
    a, b = _weights(whole.final_dir), _weights(resumed.final_dir)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [m["loss"] for m in _metrics(whole.metrics_path)] == [m["loss"] for m in _metrics(resumed.metrics_path)]


def test_resume_refuses_changed_options(tmp_path, tiny_student, small_config):
    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(16, seed=4))
    train(tiny_student, [data], tmp_path / "o", TrainConfig.from_dict({"max_steps": 1}, base=small_config))
    changed = TrainConfig.from_dict({"max_steps": 2, "learning_rate": 1e-4}, base=small_config)
    with pytest.raises(LabCIError, match="learning_rate"):
        train(tiny_student, [data], tmp_path / "o", changed)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epochs": "3"}, "training option 'epochs': '3' is not of type 'integer'"),
        ({"epochs": True}, "training option 'epochs': True is not of type 'integer'"),
        ({"epochs": 0}, "training option 'epochs': 0 is less than the minimum of 1"),
        ({"learning_rate": "fast"}, "training option 'learning_rate': 'fast' is not of type 'number'"),
        ({"learning_rate": 0}, "training option 'learning_rate': 0.0 is less than or equal to the minimum of 0"),
        ({"nope": 1}, "unknown training option 'nope' (known: adam_beta1, "),
        ({"strategy": "zero3"}, "training option 'strategy': 'zero3' is not one of ['ddp', 'fsdp']"),
        ({"max_seq_len": 9000}, "max_seq_len must not exceed max_tokens_per_batch"),
    ],
)
def test_config_overrides_are_checked_against_the_schema(values, message):
    with pytest.raises(LabCIError) as e:
        TrainConfig.from_dict(values)
    assert str(e.value).startswith(message)


def test_config_accepts_ints_for_floats_and_yaml_exponents():
    cfg = TrainConfig.from_dict({"learning_rate": "2e-5", "weight_decay": 0})
    assert cfg.learning_rate == 2e-5 and isinstance(cfg.weight_decay, float)


def test_warmup_then_cosine_schedule():
    cfg = TrainConfig(warmup_steps=2, lr_schedule="cosine", min_lr_ratio=0.1)
    f = lr_lambda(cfg, total_steps=10)
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == pytest.approx(1.0) and f(10) == pytest.approx(0.1)
    assert all(f(i) >= f(i + 1) for i in range(1, 10))


def test_phases_chain_skip_and_resume(tmp_path, tiny_student, small_config):
    knowledge = write_jsonl(tmp_path / "k.jsonl", arithmetic_records(16, seed=5))
    skills = write_jsonl(tmp_path / "s.jsonl", arithmetic_records(16, seed=6, system=False))
    phases = [
        PhaseSpec("knowledge", (knowledge,), epochs=1),
        PhaseSpec("skills", (skills, knowledge), epochs=1, learning_rate=1e-3),
    ]
    out = tmp_path / "run"
    # stop partway through phase 2, as a kill would
    stopper = TrainConfig.from_dict({"max_steps": 1}, base=small_config)
    first = train_phases(tiny_student, phases, out, stopper)
    assert not first.completed and first.final_dir is None
    assert [p.name for p in first.phases] == ["knowledge"] and first.phases[0].global_step == 1
    # resume: phase 1 goes on from its checkpoint, then phase 2 runs from phase 1's model
    done = train_phases(tiny_student, phases, out, small_config)
    assert done.completed and done.final_dir == out / "phase-2" / "final"
    assert [p.global_step for p in done.phases] == [2, 4]
    p2 = json.loads((out / "phase-2" / "final" / "lab-ci-train.json").read_text())
    assert p2["base_model"] == str(out / "phase-1" / "final")
    assert p2["config"]["learning_rate"] == 1e-3 and p2["data"]["samples"] == 32
    # a third call has nothing left to do
    again = train_phases(tiny_student, phases, out, small_config)
    assert [p.skipped for p in again.phases] == [True, True]
    assert again.final_dir == done.final_dir


def test_phases_reject_a_non_model_dir(tmp_path, small_config):
    with pytest.raises(LabCIError, match="not a Hugging Face model directory"):
        train_phases(tmp_path, [PhaseSpec("k", (tmp_path / "x.jsonl",))], tmp_path / "o", small_config)


def test_sigkilled_process_resumes_to_the_same_weights(tmp_path, tiny_student, small_config):
    """A real ``kill -9`` of ``python -m lab_ci.train.run`` mid-run, then a rerun, gives
    bit-for-bit the weights of an uninterrupted run. The kill comes when the run has
    logged its third step (a checkpoint after every step): observed state, not a
    sleep, so a slow machine does not move it and a fast one does not miss it."""
    import subprocess
    import sys

    from labtest import kill_when

    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(64, seed=8))
    values = {
        "epochs": 1,
        "save_every_steps": 1,
        "effective_batch_size": 4,
        "seed": 1,
        "device": "cpu",
        "max_seq_len": 128,
        "max_tokens_per_batch": 256,
        "learning_rate": 3.0e-3,
    }
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        json.dumps(
            {
                "student": str(tiny_student),
                "out": "killed",
                "train": values,
                "phases": [{"name": "knowledge", "data": ["d.jsonl"]}],
            }
        )
    )
    cmd = [sys.executable, "-m", "lab_ci.train.run", "--config", str(cfg)]
    metrics = tmp_path / "killed" / "phase-1" / "metrics.jsonl"

    def third_step_logged() -> bool:
        try:
            return metrics.read_text().count("\n") >= 3
        except FileNotFoundError:
            return False

    kill_when(cmd, third_step_logged, timeout=300)
    assert not (tmp_path / "killed" / "phase-1" / "final").exists()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from" in rerun.stderr
    whole = train(tiny_student, [data], tmp_path / "whole", TrainConfig.from_dict(values))
    a, b = _weights(whole.final_dir), _weights(tmp_path / "killed" / "phase-1" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_phase_spec_from_mapping_and_replay_sample(tmp_path):
    spec = PhaseSpec.from_dict(
        {"name": "skills", "data": ["a.jsonl", "b.jsonl"], "epochs": 2, "learning_rate": "1e-5", "warmup_steps": 3},
        tmp_path,
    )
    assert spec.data == (tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    cfg = spec.config(TrainConfig())
    assert (cfg.epochs, cfg.learning_rate, cfg.warmup_steps) == (2, 1e-5, 3)
    with pytest.raises(LabCIError, match="'data' must be a non-empty list"):
        PhaseSpec.from_dict({"name": "x", "data": []})
    with pytest.raises(LabCIError, match="unknown training option 'bogus'"):
        PhaseSpec.from_dict({"name": "x", "data": ["a"], "bogus": 1})

    from lab_ci.train.phases import replay_sample

    src = write_jsonl(tmp_path / "k.jsonl", arithmetic_records(40, seed=9))
    picked = replay_sample(src, 0.25, seed=3)
    lines = src.read_text().splitlines()
    assert len(picked) == 10 and all(p in lines for p in picked)
    assert picked == replay_sample(src, 0.25, seed=3) != replay_sample(src, 0.25, seed=4)
