"""MMLU-Branch: multiple-choice questions about a knowledge leaf, scored by log-likelihood.

Generation. The teacher runs the ``mmlu_branch`` pipeline (``pipelines/mmlu_branch.yaml``,
an ordinary :mod:`lab_ci.sdg` pipeline file: seed examples, a document chunk, one LLM
block, dedupe) on the leaf: each candidate is a question, its correct answer and three
wrong ones about one chunk of the leaf's documents. :func:`build_mcqs` keeps the ones
with four distinct, non-empty options and shuffles the options with a draw seeded by
the sample, so the key's position says nothing. A set is cached under
:func:`mcq_key`: the document (repository, commit, patterns), the leaf's blob, the
teacher, the pipeline version, the seed and the number asked for.

Scoring. A model is asked each question (the chat template, the question as the user
turn, no system prompt: the same prompt :mod:`lab_ci.eval.questions` sends) and each
option is scored as the assistant's reply: the log-likelihood of the option's tokens
and the end-of-text token, divided by their number (mean per token, so a long option
is not penalised for its length). The option with the highest score is the model's
choice. Nothing is generated, so a question costs four short forward passes (batched
by :meth:`lab_ci.eval.hf.HFModel.loglikelihoods`) and the result is exact for the
weights: no sampling, no parsing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..sdg.seeds import LeafSeeds
from ..taxonomy.leaf import LeafFile
from ..teacher.base import Message

PACKAGE_DIR = Path(__file__).resolve().parent
EVAL_PIPELINES = PACKAGE_DIR / "pipelines"
MCQ_PIPELINE = "mmlu_branch"
OPTIONS = 4
LETTERS = "ABCD"
#: how an option is scored (recorded in results.json)
NORMALIZATION = "mean log-likelihood per token of the option and end-of-text"


def pipeline_dirs(extra: Iterable[str | Path] | None = None) -> list[Path]:
    """Where the eval pipelines are looked up: ``extra`` (``--pipeline-dir``), then ours."""
    return [*(Path(d) for d in extra or ()), EVAL_PIPELINES]


def mcq_pipeline(extra_dirs=None):
    from ..sdg.pipeline import load_pipeline

    return load_pipeline(MCQ_PIPELINE, pipeline_dirs(extra_dirs))


@dataclass(frozen=True, slots=True)
class MCQ:
    id: str  # "<sample id>" of the generating pipeline, e.g. "s3"
    leaf: str
    question: str
    options: tuple[str, ...]
    answer: int  # index of the correct option
    source: str = ""  # document chunk reference
    seed_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["options"] = list(self.options)
        d["seed_ids"] = list(self.seed_ids)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MCQ:
        return cls(
            id=str(d["id"]),
            leaf=str(d["leaf"]),
            question=str(d["question"]),
            options=tuple(str(o) for o in d["options"]),
            answer=int(d["answer"]),
            source=str(d.get("source", "")),
            seed_ids=tuple(str(s) for s in d.get("seed_ids", ())),
        )


@dataclass
class MCQSet:
    leaf: str
    key: str
    teacher: str
    pipeline_version: str
    seed: int
    requested: int
    items: list[MCQ]
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count
    document: dict = field(default_factory=dict)  # repo, commit, patterns

    def to_dict(self) -> dict:
        return {
            "leaf": self.leaf,
            "key": self.key,
            "teacher": self.teacher,
            "pipeline_version": self.pipeline_version,
            "seed": self.seed,
            "requested": self.requested,
            "document": self.document,
            "rejected": dict(sorted(self.rejected.items())),
            "items": [m.to_dict() for m in self.items],
        }

    @classmethod
    def from_dict(cls, d: dict) -> MCQSet:
        return cls(
            leaf=d["leaf"],
            key=d["key"],
            teacher=d["teacher"],
            pipeline_version=d["pipeline_version"],
            seed=int(d["seed"]),
            requested=int(d["requested"]),
            items=[MCQ.from_dict(m) for m in d["items"]],
            rejected=dict(d.get("rejected") or {}),
            document=dict(d.get("document") or {}),
        )


def _document(seeds: LeafSeeds) -> dict:
    ref = seeds.document
    return {"repo": ref.repo, "commit": ref.commit, "patterns": list(ref.patterns)} if ref else {}


def mcq_key(leaf: LeafFile, seeds: LeafSeeds, teacher_id: str, pipeline_version: str, seed: int, n: int) -> str:
    """The cache key of a leaf's question set (see the module docstring)."""
    from .store import stable_hash

    return stable_hash(
        {
            "what": "mmlu_branch",
            "document": _document(seeds),
            "leaf_blob": leaf.blob_id,
            "teacher": teacher_id,
            "pipeline": pipeline_version,
            "seed": seed,
            "n": n,
        }
    )


_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def _norm(text: str) -> str:
    return _PUNCT.sub(" ", text.lower()).strip()


def build_mcqs(records: Sequence[dict], leaf: str, seed: int) -> tuple[list[MCQ], dict[str, int]]:
    """Questions from the pipeline's accepted records (pure): four distinct, non-empty
    options each, shuffled with a draw seeded by (seed, leaf, sample, question).
    Returns (questions, rejected reason -> count)."""
    out: list[MCQ] = []
    rejected: dict[str, int] = {}
    for rec in records:
        meta = rec.get("metadata") or {}
        msgs = {m.get("role"): m.get("content", "") for m in rec.get("messages") or []}
        question = (msgs.get("user") or "").strip()
        correct = (msgs.get("assistant") or "").strip()
        options = [correct] + [str(meta.get(f"wrong_{i}") or "").strip() for i in (1, 2, 3)]
        if not question or not all(options):
            rejected["empty-option"] = rejected.get("empty-option", 0) + 1
            continue
        if len({_norm(o) for o in options}) < OPTIONS:
            rejected["same-options"] = rejected.get("same-options", 0) + 1
            continue
        sample = str(meta.get("sample_id") or len(out))
        order = list(range(OPTIONS))
        random.Random(f"{seed}:{leaf}:{sample}:{question}").shuffle(order)
        out.append(
            MCQ(
                id=sample,
                leaf=leaf,
                question=question,
                options=tuple(options[i] for i in order),
                answer=order.index(0),
                source=str(meta.get("document_source") or ""),
                seed_ids=tuple(str(s) for s in meta.get("seed_ids") or ()),
            )
        )
    return out, rejected


def generate_mcqs(
    leaf: LeafFile,
    teacher,
    *,
    n: int,
    seed: int = 0,
    documents=None,
    pipeline_dirs_=None,
    key: str = "",
) -> MCQSet:
    """Run the ``mmlu_branch`` pipeline on a knowledge leaf for ``n`` candidates.
    Raises what :func:`lab_ci.sdg.api.generate_leaf` raises (SeedError, DocumentError,
    PipelineError, BlockError)."""
    from ..sdg.api import generate_leaf
    from ..sdg.seeds import parse_leaf

    pipe = mcq_pipeline(pipeline_dirs_)
    gen = generate_leaf(leaf, teacher, samples=n, seed=seed, pipeline=str(pipe.path), documents=documents)
    items, bad = build_mcqs(gen.accepted, leaf.path, seed)
    rejected = dict(gen.stats.get("by_reason") or {})
    for reason, count in bad.items():
        rejected[reason] = rejected.get(reason, 0) + count
    return MCQSet(
        leaf=leaf.path,
        key=key,
        teacher=gen.teacher,
        pipeline_version=gen.pipeline_version,
        seed=seed,
        requested=n,
        items=items,
        rejected=rejected,
        document=_document(parse_leaf(leaf)),
    )


# ---------------------------------------------------------------------- scoring
def option_requests(model, items: Sequence[MCQ], system: str | None = None) -> list[tuple[list[int], list[int]]]:
    """(context ids, continuation ids) for every option of every question, in order:
    the question as the user turn of the model's chat template, the option plus the
    end-of-text token as the reply."""
    reqs = []
    for m in items:
        conv = ([Message("system", system)] if system else []) + [Message("user", m.question)]
        ctx = model.encode(model.chat_prompt(conv))
        for option in m.options:
            cont = model.encode(option)
            if model.eos_id is not None:
                cont = cont + [model.eos_id]
            reqs.append((ctx, cont))
    return reqs


@dataclass(frozen=True, slots=True)
class MCQResult:
    choice: int  # the option the model scores highest
    correct: bool
    scores: tuple[float, ...]  # per option, the normalised log-likelihood

    def to_dict(self) -> dict:
        return {"choice": self.choice, "correct": self.correct, "scores": [round(s, 4) for s in self.scores]}


def choose(items: Sequence[MCQ], lls: Sequence) -> list[MCQResult]:
    """Each question's choice from its options' log-likelihoods (``LogLikelihood``
    values, in :func:`option_requests` order). Ties go to the first option."""
    out = []
    for k, m in enumerate(items):
        scores = tuple(ll.mean for ll in lls[k * OPTIONS : (k + 1) * OPTIONS])
        best = max(range(OPTIONS), key=lambda i: (scores[i], -i))
        out.append(MCQResult(best, best == m.answer, scores))
    return out
