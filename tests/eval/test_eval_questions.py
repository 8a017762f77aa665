"""The one function that asks a model a leaf's seed questions, and its context rule
(lab_ci.sdg.questions), on the real tiny teacher (llama.cpp) and the real tiny
student (transformers)."""

from __future__ import annotations

import pytest

from lab_ci.sdg.questions import ask_seed_questions, seed_prompt, seed_questions
from lab_ci.taxonomy.leaf import LeafFile
from lab_ci.taxonomy.seeds import parse_leaf
from labtest import EXAMPLE_TAXONOMY

KNOWLEDGE = "knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml"
GROUNDED = "compositional_skills/extraction/commit_messages/summary/qna.yaml"
FREEFORM = "compositional_skills/linguistics/antonyms/qna.yaml"


def seeds(path: str, data: bytes | None = None):
    return parse_leaf(LeafFile(path, data if data is not None else (EXAMPLE_TAXONOMY / path).read_bytes()))


class Recording:
    """The real teacher, with the conversations it was asked kept for the assertions."""

    def __init__(self, model):
        self.model = model
        self.asked = []

    def chat(self, conversations, params, n=1):
        self.asked += [list(c) for c in conversations]
        return self.model.chat(conversations, params, n)


def test_knowledge_questions_are_asked_without_their_context():
    k = seeds(KNOWLEDGE)
    ex = k.examples[0]
    assert ex.context and "Needle Rocks" in ex.context
    assert seed_prompt(k, ex) == ex.question  # the passage holds the answer: not shown
    for q in seed_questions([k]):
        assert q.prompt == q.question and "Needle Rocks between 1840" not in q.prompt


def test_grounded_skill_questions_carry_their_context_and_freeform_ones_have_none():
    g = seeds(GROUNDED)
    for ex, q in zip(g.examples, seed_questions([g])):
        assert ex.context and q.prompt == f"{ex.context.strip()}\n\n{ex.question.strip()}"
    f = seeds(FREEFORM)
    assert [q.prompt for q in seed_questions([f])] == [e.question for e in f.examples]


def test_a_knowledge_question_that_quotes_its_passage_keeps_it():
    """'unless the question itself carries it': text in the question is never removed."""
    data = (
        (EXAMPLE_TAXONOMY / KNOWLEDGE)
        .read_bytes()
        .replace(
            b"- question: Why was the Kestrel Island Lighthouse built?",
            b"- question: 'Read this: \"At least fourteen ships were lost on the Needle Rocks.\" Why was the lighthouse built?'",
        )
    )
    k = seeds(KNOWLEDGE, data)
    q = seed_questions([k])[0]
    assert "fourteen ships were lost" in q.prompt and q.prompt == q.question


@pytest.fixture(scope="module")
def teacher(tiny_models):
    from lab_ci.teacher import load_teacher

    t = load_teacher(str(tiny_models["teacher"]))
    yield t
    t.close()


def test_ask_sends_one_batched_call_with_the_rule_applied_to_a_gguf(teacher):
    rec = Recording(teacher)
    leaves = [seeds(KNOWLEDGE), seeds(GROUNDED), seeds(FREEFORM)]
    answers = ask_seed_questions(rec, leaves, max_tokens=16)
    qs = seed_questions(leaves)
    assert len(answers) == len(qs) == len(rec.asked)
    assert [a.question for a in answers] == qs
    for conv, q in zip(rec.asked, qs):
        assert [(m.role, m.content) for m in conv] == [("user", q.prompt)]
    assert all(a.ok and isinstance(a.answer, str) for a in answers)
    assert sum(bool(a.answer) for a in answers) > len(answers) // 2  # the tiny teacher answers most
    sys_rec = Recording(teacher)
    ask_seed_questions(sys_rec, leaves[:1], max_tokens=4, system="Be brief.")
    assert all(c[0].role == "system" and c[0].content == "Be brief." for c in sys_rec.asked)


def test_ask_a_hugging_face_model_the_same_prompts(tiny_models):
    from lab_ci.eval.hf import HFModel

    model = HFModel(tiny_models["student"])
    leaves = [seeds(GROUNDED), seeds(FREEFORM)]
    answers = ask_seed_questions(model, leaves, max_tokens=12)
    assert [a.question.prompt for a in answers] == [q.prompt for q in seed_questions(leaves)]
    assert all(a.ok for a in answers)
    # one question at a time gives the same greedy answers as the batch
    for a in answers[:3]:
        [alone] = ask_seed_questions(model, questions=[a.question], max_tokens=12)
        assert alone.answer == a.answer
    # a prompt that does not fit the context is an answer that says so, not a crash
    model.max_context = 64
    [long_q] = [q for q in seed_questions(leaves[:1])][:1]
    [a] = ask_seed_questions(model, questions=[long_q], max_tokens=12)
    assert not a.ok and a.answer == "" and "do not fit the model's context of 64 tokens" in a.error
