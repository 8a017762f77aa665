"""Asking a model a leaf's seed questions: the one place the context rule lives.

**The context rule.** A knowledge leaf's seed ``context`` is the passage the answer was
taken from: showing it to the model would measure reading, not knowing, so a knowledge
question is asked *without* it (if a contributor wrote the passage into the question
itself, it is part of the question and stays). A grounded skill's ``context`` is the
input the skill works on (a commit message to summarise, a table to read): it is part
of the question, so it is asked as ``context``, a blank line, then the question.

:func:`seed_prompt` applies the rule to one seed example; :func:`ask_seed_questions`
asks a model every seed question of some leaves in one batched call. The model is any
object with the teacher interface's ``chat(conversations, params, n)``
(:class:`lab_ci.teacher.Teacher`: a GGUF through llama.cpp, an OpenAI-compatible
server, or :class:`lab_ci.eval.hf.HFModel` for a Hugging Face model folder), so the
preview's precheck, the build's postcheck and ``lab-ci eval`` ask the same prompts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..taxonomy.seeds import LeafSeeds, SeedExample
from ..teacher.base import Message, SamplingParams


def seed_prompt(seeds: LeafSeeds, example: SeedExample) -> str:
    """The user message that asks ``example`` (see the module docstring)."""
    question = example.question.strip()
    if example.context and seeds.kind != "knowledge":
        return f"{example.context.strip()}\n\n{question}"
    return question


@dataclass(frozen=True, slots=True)
class SeedQuestion:
    """One seed question as a model is asked it."""

    leaf: str  # the leaf's qna.yaml path
    kind: str  # "knowledge" | "skill"
    seed_id: str  # SeedExample.id: "3", or "2.1" for a knowledge Q/A
    question: str  # the contributor's question, as written
    prompt: str  # the user message sent (seed_prompt)
    reference: str  # the contributor's answer
    task_description: str = ""

    def to_dict(self) -> dict:
        return {
            "leaf": self.leaf,
            "kind": self.kind,
            "seed_id": self.seed_id,
            "question": self.question,
            "prompt": self.prompt,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class SeedAnswer:
    question: SeedQuestion
    answer: str  # the model's answer ("" when it could not answer)
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    error: str = ""  # why there is no answer (finish_reason "error")

    @property
    def ok(self) -> bool:
        return self.finish_reason != "error"


def seed_questions(leaves: Iterable[LeafSeeds]) -> list[SeedQuestion]:
    """Every seed question of ``leaves`` in leaf order, each with its prompt."""
    return [
        SeedQuestion(
            leaf=seeds.path,
            kind=seeds.kind,
            seed_id=e.id,
            question=e.question,
            prompt=seed_prompt(seeds, e),
            reference=e.answer,
            task_description=seeds.task_description,
        )
        for seeds in leaves
        for e in seeds.examples
    ]


def conversation(q: SeedQuestion, system: str | None = None) -> list[Message]:
    return ([Message("system", system)] if system else []) + [Message("user", q.prompt)]


def ask_seed_questions(
    model,
    leaves: Iterable[LeafSeeds] | None = None,
    *,
    questions: list[SeedQuestion] | None = None,
    max_tokens: int = 128,
    seed: int = 0,
    system: str | None = None,
) -> list[SeedAnswer]:
    """Ask ``model`` every seed question of ``leaves`` (or the given ``questions``) in ONE
    batched ``chat`` call, greedy (temperature 0), and return the answers in order.

    An answer the model could not give (a prompt too long for its context: a
    completion with ``finish_reason == "error"``) is a :class:`SeedAnswer` with ``ok``
    false and the reason in ``error``; a backend failure (``TeacherError``) is raised.
    """
    if questions is None:
        questions = seed_questions(leaves or ())
    if not questions:
        return []
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=seed)
    outs = model.chat([conversation(q, system) for q in questions], params, n=1)
    answers = []
    for q, comps in zip(questions, outs):
        c = comps[0] if comps else None
        if c is None:
            answers.append(SeedAnswer(q, "", "error", "the model returned no completion"))
        elif c.finish_reason == "error":
            answers.append(SeedAnswer(q, "", "error", c.text.strip() or "the model failed on this question"))
        else:
            answers.append(SeedAnswer(q, c.text.strip(), c.finish_reason))
    return answers
