"""HFModel: batched log-likelihoods and generation on the real tiny student (CPU)."""

from __future__ import annotations

import json
import math

import pytest

from lab_ci.errors import LabCIError
from lab_ci.eval.hf import HFModel, check_model_dir, model_fingerprint
from lab_ci.teacher.base import Message, SamplingParams


@pytest.fixture(scope="module")
def student(tiny_models):
    return HFModel(tiny_models["student"], max_batch_tokens=512)


def requests(m: HFModel):
    reqs = []
    for q in ("What is a bare repository?", "Who designed the Kestrel Island Lighthouse?", "Convert 2 km to metres."):
        ctx = m.encode(m.chat_prompt([Message("user", q)]))
        for opt in ("A repository without a working tree.", "The engineer Agnes Callow.", "2000 metres", "cold"):
            reqs.append((ctx, m.encode(opt) + [m.eos_id]))
    return reqs


def test_batched_and_one_at_a_time_log_likelihoods_agree(student):
    reqs = requests(student)
    batched = student.loglikelihoods(reqs)
    single = student.loglikelihoods(reqs, max_batch_tokens=1)  # one request per forward pass
    assert len(batched) == len(single) == len(reqs)
    for b, s, (_, cont) in zip(batched, single, reqs):
        assert b.tokens == s.tokens == len(cont)
        assert b.total < 0 and math.isfinite(b.total)
        assert abs(b.total - s.total) < 1e-4 * max(1.0, abs(s.total))
        assert b.greedy == s.greedy


def test_log_likelihood_is_the_sum_of_the_model_s_own_token_log_probabilities(student):
    """Checked against a plain forward pass over the whole text (no batching code)."""
    import torch

    ctx, cont = requests(student)[1]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(student.model(input_ids=ids).logits[0].float(), -1)
    want = sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont))
    assert student._head_check() is True  # a llama: the head is separable
    [got] = student.loglikelihoods([(ctx, cont)])
    assert got.total == pytest.approx(want, abs=1e-4)
    # the other output path, as for a model that scales its logits after the head
    student._head_ok = False
    try:
        [kept] = student.loglikelihoods([(ctx, cont)])
        batch = student.loglikelihoods(requests(student))
    finally:
        student._head_ok = None
    assert kept.total == pytest.approx(want, abs=1e-4)
    assert [b.total for b in batch] == pytest.approx(
        [r.total for r in student.loglikelihoods(requests(student))], rel=1e-5
    )


def test_a_context_longer_than_the_model_is_cut_from_the_left(student):
    ctx, cont = requests(student)[0]
    student_ctx = student.max_context
    try:
        student.max_context = 24
        [cut] = student.loglikelihoods([(ctx, cont)])
        [same] = student.loglikelihoods([((ctx + cont)[-(24 + 1) : -len(cont)], cont)])
        assert cut.total == pytest.approx(same.total, abs=1e-5)
        with pytest.raises(LabCIError, match="does not fit"):
            student.loglikelihoods([([1, 2], list(range(30)))])
    finally:
        student.max_context = student_ctx
    with pytest.raises(ValueError):
        student.loglikelihoods([(ctx, [])])


def test_generation_batches_agree_with_single_prompts_and_report_why_they_stopped(student):
    convs = [[Message("user", q)] for q in ("What is a commit?", "Write a haiku about rain.", "What is 3 km in m?")]
    p = SamplingParams(temperature=0.0, max_tokens=10)
    together = student.chat(convs, p)
    for conv, [c] in zip(convs, together):
        [[alone]] = student.chat([conv], p)
        assert alone.text == c.text
        assert c.finish_reason in ("stop", "length") and c.prompt_tokens > 0
        assert c.completion_tokens <= 10
    # sampling is seeded: the same seed, the same text
    s = SamplingParams(temperature=1.0, max_tokens=8, seed=5)
    assert student.chat(convs[:1], s) == student.chat(convs[:1], s)


def test_model_folder_errors_are_clear(tmp_path, tiny_models):
    with pytest.raises(LabCIError, match="not a folder"):
        check_model_dir(tmp_path / "nope")
    with pytest.raises(LabCIError, match="no config.json"):
        check_model_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(LabCIError, match="no weights"):
        check_model_dir(tmp_path)
    with pytest.raises(LabCIError, match="device"):
        HFModel(tiny_models["student"], device="tpu")


def test_fingerprint_follows_the_files(tiny_models, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(tiny_models["student"], copy)
    first = model_fingerprint(copy)
    assert model_fingerprint(copy) == first
    cfg = json.loads((copy / "config.json").read_text())
    cfg["rms_norm_eps"] = 1e-6
    (copy / "config.json").write_text(json.dumps(cfg))
    assert model_fingerprint(copy) != first


def test_grouped_scores_are_the_pairs_scores_per_question(student):
    reqs = requests(student)
    groups = [(reqs[k][0], [c for _, c in reqs[k : k + 4]]) for k in range(0, len(reqs), 4)]
    groups.append((groups[0][0], [[student.eos_id], groups[0][1][0]]))  # a one-token choice, and two choices
    grouped = student.score_choices(groups)
    pairwise = student.loglikelihoods([(ctx, c) for ctx, cs in groups for c in cs])
    assert [len(lls) for lls in grouped] == [len(cs) for _, cs in groups]
    assert [ll for lls in grouped for ll in lls] == pairwise
    with pytest.raises(ValueError):
        student.score_choices([(groups[0][0], [[]])])


def test_batches_are_bounded_by_logits_memory(student, monkeypatch):
    """A batch holds at most _LOGITS_BUDGET logits (scored positions x vocabulary): with a
    budget for one position, every request is scored alone, to the same numbers."""
    import lab_ci.eval.hf as hf

    reqs = requests(student)
    want = student.loglikelihoods(reqs)
    monkeypatch.setattr(hf, "_LOGITS_BUDGET", student.model.config.vocab_size)
    calls = []
    score = student._score_batch
    monkeypatch.setattr(student, "_score_batch", lambda batch: calls.append(len(batch)) or score(batch))
    got = student.loglikelihoods(reqs)
    assert calls == [1] * len(reqs)
    assert [g.total for g in got] == pytest.approx([w.total for w in want], rel=1e-5)
