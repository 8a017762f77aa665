"""MMLU-Branch: multiple-choice questions about a knowledge leaf, scored by log-likelihood.

Two sources, each optional. **Seed questions** (:func:`seed_mcqs`, no teacher): the
contributor's own questions with their own answers as keys and other answers of the
leaf as wrong options: human-written keys, and questions the model was not trained on
verbatim (the knowledge pipeline rejects generated questions that copy a seed's).
**Teacher questions**: the teacher runs the ``mmlu_branch`` pipeline
(``pipelines/mmlu_branch.yaml``, an ordinary :mod:`lab_ci.sdg` pipeline file) on the
leaf: for each candidate, a question and its answer about one chunk of the leaf's
documents (the knowledge pipeline's own prompt, greedy), then four sampled wrong
answers to it, written to sound right. :func:`build_mcqs` keeps the questions with
three distinct wrong answers, drops near-duplicates and shuffles the options with a
draw seeded by the sample, so the key's position says nothing. A teacher set is
cached under :func:`mcq_key`: the document (repository, commit, patterns), the leaf's
blob, the teacher, the pipeline version, the seed and the number asked for.

Scoring. A model is asked each question (the chat template, the question as the user
turn, no system prompt: the same prompt :mod:`lab_ci.sdg.questions` sends) and each
option is scored as the assistant's reply: the log-likelihood of the option's tokens
and the end-of-text token, divided by their number (mean per token, so a long option
is not penalised for its length). The option with the highest score is the model's
choice. Nothing is generated: a question is four (question, option) sequences scored
in one pass (:meth:`lab_ci.eval.hf.HFModel.score_choices`, all questions' options
batched together), and the result is exact for the weights: no sampling, no parsing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..taxonomy.leaf import LeafFile
from ..taxonomy.seeds import LeafSeeds
from ..teacher.base import Message

PACKAGE_DIR = Path(__file__).resolve().parent
EVAL_PIPELINES = PACKAGE_DIR / "pipelines"
MCQ_PIPELINE = "mmlu_branch"
OPTIONS = 4
#: a seed answer longer than this is not used as an option (the pipeline's own options
#: stop at 1,200 characters): every option fits any model's context
MAX_OPTION_CHARS = 2000
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
    id: str  # the generating pipeline's sample id ("s3"), or "seed:<seed id>"
    leaf: str
    question: str
    options: tuple[str, ...]
    answer: int  # index of the correct option
    source: str = ""  # document chunk reference ("" for a seed question)
    seed_ids: tuple[str, ...] = ()
    origin: str = "teacher"  # "teacher": written by the teacher; "seed": the contributor's Q/A

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
            origin=str(d.get("origin", "teacher")),
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
    error: str = ""  # why the teacher wrote none (documents unreachable, pipeline failed)

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
            "error": self.error,
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
            error=str(d.get("error") or ""),
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
    """Questions from the pipeline's accepted records (pure).

    The pipeline's wrong-answer block makes several records per candidate (sample ids
    ``s3.0``, ``s3.1``, ...: the same question and answer, one ``wrong`` each). A
    question keeps its answer and the first three wrong answers that differ from it and
    from each other (compared lower-cased, punctuation ignored); a question too close
    to an earlier one (token Jaccard >= 0.9) is dropped. Options are shuffled with a
    draw seeded by (seed, leaf, sample, question). Returns (questions, rejected
    reason -> count)."""
    from ..sdg.text import jaccard

    groups: dict[str, list[dict]] = {}
    for rec in records:
        sid = str((rec.get("metadata") or {}).get("sample_id") or f"r{len(groups)}")
        groups.setdefault(sid.split(".")[0], []).append(rec)
    out: list[MCQ] = []
    rejected: dict[str, int] = {}

    def reject(reason: str) -> None:
        rejected[reason] = rejected.get(reason, 0) + 1

    for sample, recs in groups.items():
        meta = recs[0].get("metadata") or {}
        msgs = {m.get("role"): m.get("content", "") for m in recs[0].get("messages") or []}
        question = (msgs.get("user") or "").strip()
        correct = (msgs.get("assistant") or "").strip()
        if not question or not correct:
            reject("empty-question")
            continue
        options, seen = [correct], {_norm(correct)}
        for r in recs:
            wrong = str((r.get("metadata") or {}).get("wrong") or "").strip()
            if wrong and _norm(wrong) not in seen and len(options) < OPTIONS:
                options.append(wrong)
                seen.add(_norm(wrong))
        if len(options) < OPTIONS:
            reject("too-few-wrong-answers")
            continue
        if any(jaccard(question, m.question) >= 0.9 for m in out):
            reject("duplicate-question")
            continue
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


def seed_mcqs(seeds: LeafSeeds, seed: int = 0) -> list[MCQ]:
    """The contributor's own Q/As as questions (pure, no teacher): the seed question as
    :func:`lab_ci.sdg.questions.seed_prompt` asks it (a knowledge question without
    its context), the contributor's answer as the key, and three other answers of the
    same leaf as the wrong options, drawn (seeded) from other contexts first, so a
    wrong option answers another question about the same subject. Empty when the leaf
    has fewer than four distinct answers."""
    from ..sdg.questions import seed_prompt

    usable = [e for e in seeds.examples if len(e.answer) <= MAX_OPTION_CHARS]
    distinct = {_norm(e.answer) for e in usable}
    if len(distinct) < OPTIONS:
        return []
    out = []
    for e in usable:
        rng = random.Random(f"{seed}:{seeds.path}:seed:{e.id}")
        others = [x for x in usable if _norm(x.answer) != _norm(e.answer)]
        far = [x for x in others if x.context != e.context or x.context is None]
        near = [x for x in others if x not in far]
        rng.shuffle(far)
        rng.shuffle(near)
        options, seen = [e.answer], {_norm(e.answer)}
        for x in far + near:
            if _norm(x.answer) not in seen and len(options) < OPTIONS:
                options.append(x.answer)
                seen.add(_norm(x.answer))
        order = list(range(OPTIONS))
        rng.shuffle(order)
        out.append(
            MCQ(
                id=f"seed:{e.id}",
                leaf=seeds.path,
                question=seed_prompt(seeds, e),
                options=tuple(options[i] for i in order),
                answer=order.index(0),
                seed_ids=(e.id,),
                origin="seed",
            )
        )
    return out


def merge_questions(seed_items: Sequence[MCQ], teacher_items: Sequence[MCQ]) -> list[MCQ]:
    """Seed questions first, then the teacher's, leaving out a teacher question that
    repeats a seed question (token Jaccard >= 0.9): the contributor's key wins."""
    from ..sdg.text import jaccard

    kept = list(seed_items)
    for m in teacher_items:
        if not any(jaccard(m.question, s.question) >= 0.9 for s in seed_items):
            kept.append(m)
    return kept


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
    from ..taxonomy.seeds import parse_leaf

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
def option_groups(model, items: Sequence[MCQ], system: str | None = None) -> list[tuple[list[int], list[list[int]]]]:
    """(context ids, [continuation ids per option]) for every question, in order: the
    question as the user turn of the model's chat template, each option plus the
    end-of-text token as the reply."""
    groups = []
    for m in items:
        conv = ([Message("system", system)] if system else []) + [Message("user", m.question)]
        ctx = model.encode(model.chat_prompt(conv))
        tail = [model.eos_id] if model.eos_id is not None else []
        groups.append((ctx, [model.encode(option) + tail for option in m.options]))
    return groups


def option_requests(model, items: Sequence[MCQ], system: str | None = None) -> list[tuple[list[int], list[int]]]:
    """:func:`option_groups` flattened: one (context, continuation) pair per option."""
    return [(ctx, cont) for ctx, conts in option_groups(model, items, system) for cont in conts]


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
