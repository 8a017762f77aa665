"""Helpers for the evaluation tests: a student fine-tuned on one leaf's data with the
real training loop, a deliberately damaged copy of a model, and the example documents
fetcher. A uniquely named module (see tests/train/train_helpers.py for why)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

EXAMPLE_DOCS_URL = "https://github.com/lab-ci/example-documents.git"
LIGHTHOUSE = "knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml"
GIT_BASICS = "knowledge/technology/version_control/git_basics/qna.yaml"
ANTONYMS = "compositional_skills/linguistics/antonyms/qna.yaml"


def leaf_records(seeds) -> list[dict]:
    """A leaf's seed Q/As as training records (the question asked as the eval asks it)."""
    from lab_ci.sdg.questions import seed_questions

    return [
        {"messages": [{"role": "user", "content": q.prompt}, {"role": "assistant", "content": q.reference}]}
        for q in seed_questions([seeds])
    ]


def finetune(student: Path, records: list[dict], out: Path, *, seed: int, epochs: int = 12) -> Path:
    """``student`` trained on ``records`` by lab_ci.train's loop (CPU, fp32); its final folder."""
    from lab_ci.train.loop import TrainConfig, train

    out.mkdir(parents=True, exist_ok=True)
    data = out / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    cfg = TrainConfig.from_dict(
        dict(
            max_seq_len=512,
            max_tokens_per_batch=2048,
            effective_batch_size=4,
            epochs=epochs,
            learning_rate=3e-3,
            lr_schedule="constant",
            warmup_steps=0,
            seed=seed,
            device="cpu",
        )
    )
    result = train(student, [data], out / "run", cfg)
    assert result.completed and result.final_dir
    return Path(result.final_dir)


def damaged(model_dir: Path, out: Path, *, scale: float = 1.0, seed: int = 0) -> Path:
    """A copy of ``model_dir`` with Gaussian noise of ``scale`` x each weight tensor's own
    standard deviation added to every weight: a checkpoint ruined on purpose."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, out)
    gen = torch.Generator().manual_seed(seed)
    for f in sorted(out.glob("*.safetensors")):
        tensors = load_file(f)
        for name, t in tensors.items():
            if t.is_floating_point() and t.numel() > 1:
                tensors[name] = t + torch.randn(t.shape, generator=gen, dtype=t.dtype) * t.std() * scale
        save_file(tensors, f, metadata={"format": "pt"})
    return out


def docs_fetcher(example_docs_repo: Path, cache: Path):
    from lab_ci.taxonomy.documents import DocumentFetcher

    return DocumentFetcher(cache_dir=cache, mirrors={EXAMPLE_DOCS_URL: str(example_docs_repo)})


class RuleJudge:
    """A judge double for bookkeeping tests only: a capable judge model is unreachable
    here (the tiny teacher writes no rating; docs/maintainers/evaluation.md). It rates
    an answer by a fixed rule on the real rubric prompt it is sent: 9 when the answer
    contains the reference answer's first line, 2 otherwise, and writes no rating at all
    for an answer containing ``NO-RATING``. It records the conversations it was asked."""

    def __init__(self):
        from lab_ci.teacher.base import TeacherInfo

        self.info = TeacherInfo(id="rule-judge:test", name="rule judge")
        self.asked = []

    def chat(self, conversations, params, n=1):
        import re

        from lab_ci.teacher.base import Completion

        out = []
        for conv in conversations:
            self.asked.append(conv)
            text = conv[-1].content
            ref = re.search(r"\[Start of Reference Answer\]\n(.*?)\n", text, re.S).group(1).strip()
            answer = re.search(
                r"\[Start of Assistant's Answer\]\n(.*?)\n\[End of Assistant's Answer\]", text, re.S
            ).group(1)
            if "NO-RATING" in answer:
                reply = "I cannot tell."
            else:
                reply = f"Judged by rule.\nRating: [[{9 if ref in answer else 2}]]"
            out.append([Completion(reply)])
        return out

    def close(self):
        pass
