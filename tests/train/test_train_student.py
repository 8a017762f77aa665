"""The training library on the project's real tiny student (scripts/build_tiny_models.py):
our segment-wise LAB rendering equals its chat template, a short phased run trains
it, and the trained model exports to GGUF with MODELS' exporter."""

from __future__ import annotations

import json

from train_helpers import arithmetic_records, write_jsonl

from lab_ci.train.data import IGNORE_INDEX, read_messages_jsonl, tokenize_records
from lab_ci.train.loop import TrainConfig
from lab_ci.train.phases import PhaseSpec, train_phases


def test_real_student_tokenization_and_short_phased_run(tmp_path, tiny_models):
    from transformers import AutoTokenizer

    student = tiny_models["student"]
    tok = AutoTokenizer.from_pretrained(student)
    recs = arithmetic_records(16, seed=12)
    path = write_jsonl(tmp_path / "d.jsonl", recs)
    data = tokenize_records(read_messages_jsonl(path), tok, 512)
    for ids, labels, rec in zip(data.input_ids, data.labels, recs):
        assert tok.decode(ids) == tok.apply_chat_template(rec["messages"], tokenize=False)
        assert tok.decode([t for t in labels if t != IGNORE_INDEX]) == rec["messages"][-1]["content"] + "<|endoftext|>"

    cfg = TrainConfig.from_dict(
        {
            "max_seq_len": 256,
            "max_tokens_per_batch": 512,
            "effective_batch_size": 8,
            "learning_rate": 1e-3,
            "device": "cpu",
        }
    )
    result = train_phases(
        student, [PhaseSpec("knowledge", (path,)), PhaseSpec("skills", (path,))], tmp_path / "run", cfg
    )
    assert result.completed and [p.global_step for p in result.phases] == [2, 2]
    summary = json.loads((result.final_dir / "lab-ci-train.json").read_text())
    assert summary["data"]["samples"] == 16

    from lab_ci.train.gguf_export import export_gguf

    gguf = export_gguf(result.final_dir, tmp_path / "student.gguf", quant="f32")
    assert gguf.stat().st_size > 0
