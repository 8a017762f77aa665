"""Postcheck: did the build learn what was merged?

Before and after training, the student answers every changed leaf's seed questions
(greedy decoding, the model's chat template), asked by the one function that asks seed
questions (:func:`lab_ci.sdg.questions.ask_seed_questions`, also behind the preview's
precheck and ``lab-ci eval``), so the context rule is the same everywhere: a knowledge
question is asked without its answer-bearing context. The release card shows the
answers side by side with the contributor's answer and an agreement score (token-overlap
F1, 0-1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..sdg.errors import EmptyLeafError
from ..sdg.questions import SeedQuestion, ask_seed_questions
from ..sdg.questions import seed_questions as questions_of
from ..sdg.text import token_f1
from ..taxonomy.leaf import LeafFile
from ..taxonomy.seeds import LeafSeeds, parse_leaf

#: questions asked in one batched call (the progress bar moves between calls)
CHUNK = 16


def leaf_seeds(leaf: LeafFile) -> LeafSeeds | None:
    """The leaf's seeds (bounded read), or None for a leaf without seed questions."""
    try:
        return parse_leaf(leaf)
    except EmptyLeafError:  # valid (check warns): nothing to ask
        return None


def seed_questions(leaf: LeafFile) -> list[SeedQuestion]:
    """Every seed question of ``leaf``, as the model is asked it."""
    seeds = leaf_seeds(leaf)
    return questions_of([seeds]) if seeds is not None else []


def answer_with_model(
    model_dir: Path, questions: list[SeedQuestion], max_new_tokens: int, on_answer: Callable[[], None] | None = None
) -> list[str]:
    """Greedy answers from a Hugging Face causal LM folder (CPU or CUDA), batched; a
    question the model cannot take (too long for its context) gets an empty answer."""
    from ..eval.hf import HFModel

    model = HFModel(model_dir)
    try:
        answers = []
        for start in range(0, len(questions), CHUNK):
            chunk = questions[start : start + CHUNK]
            got = ask_seed_questions(model, questions=chunk, max_tokens=max_new_tokens)
            answers += [a.answer for a in got]
            for _ in got:
                if on_answer:
                    on_answer()
        return answers
    finally:
        model.close()


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
            "reference": q.reference,
            "before": b,
            "after": a,
            "score_before": round(token_f1(b, q.reference), 3),
            "score_after": round(token_f1(a, q.reference), 3),
        }
        for q, b, a in zip(questions, a_before, a_after)
    ]
