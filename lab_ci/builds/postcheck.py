"""Postcheck: did the build learn what was merged?

Before and after training, the student answers every changed leaf's seed questions
(greedy decoding, LAB chat template). The release card shows the answers side by
side with the contributor's answer and an agreement score (token-overlap F1, 0-1).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..taxonomy.leaf import LeafFile
from ..taxonomy.yamlsrc import load as load_leaf_yaml

_TOKEN = re.compile(r"\w+", re.UNICODE)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 between two texts, case-insensitive."""
    p = _TOKEN.findall(prediction.lower())
    r = _TOKEN.findall(reference.lower())
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


@dataclass
class SeedQuestion:
    leaf: str
    context: str | None
    question: str
    answer: str


def seed_questions(leaf: LeafFile) -> list[SeedQuestion]:
    data = load_leaf_yaml(leaf.data or b"") or {}  # bounded: aliases, depth, size
    out = []
    for ex in data.get("seed_examples") or []:
        if not isinstance(ex, dict):
            continue
        if "questions_and_answers" in ex:
            for qa in ex.get("questions_and_answers") or []:
                if isinstance(qa, dict) and qa.get("question"):
                    out.append(
                        SeedQuestion(leaf.path, ex.get("context"), str(qa["question"]), str(qa.get("answer", "")))
                    )
        elif ex.get("question"):
            out.append(SeedQuestion(leaf.path, ex.get("context"), str(ex["question"]), str(ex.get("answer", ""))))
    return out


def user_prompt(q: SeedQuestion) -> str:
    return f"{q.context.strip()}\n\n{q.question.strip()}" if q.context else q.question.strip()


def answer_with_model(
    model_dir: Path, questions: list[SeedQuestion], max_new_tokens: int, on_answer: Callable[[], None] | None = None
) -> list[str]:
    """Greedy answers from a Hugging Face causal LM directory (CPU or CUDA)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    answers = []
    for q in questions:
        messages = [{"role": "user", "content": user_prompt(q)}]
        if getattr(tok, "chat_template", None):
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            prompt = f"<|user|>\n{user_prompt(q)}\n<|assistant|>\n"
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        max_ctx = getattr(model.config, "max_position_embeddings", 2048)
        if ids["input_ids"].shape[1] + max_new_tokens > max_ctx:
            answers.append("(question too long for the model's context)")
            continue
        with torch.no_grad():
            out = model.generate(
                **ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id
            )
        answers.append(tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip())
        if on_answer:
            on_answer()
    return answers


def postcheck(
    before: Path, after: Path, leaves: list[LeafFile], max_new_tokens: int, on_answer: Callable[[], None] | None = None
) -> list[dict]:
    """Each seed question of ``leaves`` answered by the base (``before``) and the trained
    (``after``) model, with each answer's token F1 against the contributor's answer."""
    questions = [q for leaf in leaves for q in seed_questions(leaf)]
    if not questions:
        return []
    a_before = answer_with_model(before, questions, max_new_tokens, on_answer)
    a_after = answer_with_model(after, questions, max_new_tokens, on_answer)
    return [
        {
            "leaf": q.leaf,
            "question": q.question,
            "reference": q.answer,
            "before": b,
            "after": a,
            "score_before": round(token_f1(b, q.answer), 3),
            "score_after": round(token_f1(a, q.answer), 3),
        }
        for q, b, a in zip(questions, a_before, a_after)
    ]
