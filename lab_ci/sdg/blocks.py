"""The block types a pipeline file may use: each a small class with one method,
``generate(samples) -> samples``.

A sample is a dict of columns. A block that drops a sample calls
``ctx.reject(sample, reason, detail)`` so every candidate ends either accepted or
rejected with a reason (the preview shows them). Errors raised here carry the
block's name (:class:`BlockError`). The registry :data:`BLOCK_TYPES` maps the
``type`` of a pipeline entry to its class; each class documents its ``config``.
"""

from __future__ import annotations

import operator
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..teacher.base import Message, SamplingParams, Teacher
from .chunking import Chunk, chunk_markdown
from .errors import BlockError
from .seeds import LeafSeeds
from .text import FieldSpec, Unparseable, find_tag, jaccard, parse_fields, render


@dataclass
class RunContext:
    """What blocks share for one leaf: the teacher, the leaf, the RNG, bookkeeping."""

    teacher: Teacher
    seeds: LeafSeeds
    samples: int  # how many candidates to start from
    seed: int = 0
    params: SamplingParams = field(default_factory=SamplingParams)
    documents: list = field(default_factory=list)  # [Document] for knowledge leaves
    prompts: dict[str, str] = field(default_factory=dict)  # prompt file name -> text
    tags: frozenset[str] = frozenset()  # the pipeline's tags (Pipeline.tags)
    rejected: list[dict] = field(default_factory=list)
    candidates: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0})
    progress: Callable[[str], None] | None = None
    max_tokens_cap: int | None = None  # caps every block's max_tokens (quick previews)

    def rng(self, salt: str) -> random.Random:
        return random.Random(f"{self.seed}:{self.seeds.path}:{salt}")

    def reject(self, sample: dict, block: str, reason: str, detail: str = "") -> None:
        self.rejected.append({"sample": dict(sample), "block": block, "reason": reason, "detail": detail})


class Block:
    """Base class: ``name`` and ``config`` from the pipeline file."""

    type: str = ""

    def __init__(self, name: str, config: dict, ctx: RunContext):
        self.name = name
        self.config = config
        self.ctx = ctx

    def generate(self, samples: list[dict]) -> list[dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def error(self, message: str) -> BlockError:
        return BlockError(self.name, message)


# ---------------------------------------------------------------- sources


class SampleSeedsBlock(Block):
    """Start ``ctx.samples`` candidates, each with ``k`` of the leaf's own seed examples
    (local-leaf sampling, seeded RNG) rendered into ``examples`` with ``example_format``.
    Config: ``k`` (default 3), ``example_format`` (``{{question}}``, ``{{answer}}``,
    ``{{context}}``), ``separator``, ``samples_per_set`` (default 1): that many
    consecutive candidates share one draw of examples, so their prompts share a long
    prefix that the local teacher evaluates once (as instructlab-sdg draws many samples
    from one seed example); each candidate still gets its own sampling seed."""

    type = "sample_seeds"

    def generate(self, samples):
        k = int(self.config.get("k", 3))
        per_set = max(1, int(self.config.get("samples_per_set", 1)))
        fmt = self.config.get("example_format", "Question: {{question}}\nAnswer: {{answer}}")
        sep = self.config.get("separator", "\n\n")
        rng = self.ctx.rng(self.name)
        out = []
        for i in range(self.ctx.samples):
            if i % per_set == 0:
                chosen = self.ctx.seeds.choose(rng, k)
                examples = sep.join(
                    render(fmt, {"question": e.question, "answer": e.answer, "context": e.context or ""})
                    for e in chosen
                )
            first = chosen[0]
            out.append(
                {
                    "_id": f"s{i}",
                    "task_description": self.ctx.seeds.task_description,
                    "domain": self.ctx.seeds.domain or "",
                    "seed_ids": [e.id for e in chosen],
                    "examples": examples,
                    "seed_question": first.question,
                    "seed_answer": first.answer,
                    "seed_context": first.context or "",
                }
            )
        self.ctx.candidates += len(out)
        return samples + out


class ChunkDocumentsBlock(Block):
    """Chunk the leaf's documents (Markdown headings, then a token budget) and give each
    candidate one chunk as ``document`` (chunks dealt in a seeded order, so a few
    samples cover different sections). Config: ``max_tokens`` (400), ``min_tokens`` (8)."""

    type = "chunk_documents"

    def generate(self, samples):
        chunks: list[Chunk] = []
        for doc in self.ctx.documents:
            chunks += chunk_markdown(
                doc.path, doc.text, int(self.config.get("max_tokens", 400)), int(self.config.get("min_tokens", 8))
            )
        if not chunks:
            raise self.error("the documents hold no text to generate from")
        order = list(range(len(chunks)))
        self.ctx.rng(self.name).shuffle(order)
        self.ctx.timings.setdefault("chunks", len(chunks))
        out = []
        for i, s in enumerate(samples):
            c = chunks[order[i % len(order)]]
            out.append({**s, "document": c.text, "document_source": c.ref, "document_heading": c.heading})
        return out


# ---------------------------------------------------------------- the teacher


class LLMBlock(Block):
    """Prompt the teacher once per sample (all samples in ONE batched call), parse the
    completion into fields. Config: ``prompt`` (a prompt file), ``system`` (optional
    system prompt file or text), ``fields`` (name -> {start, end, regex, type, choices,
    fallback}), ``n`` (completions per sample, default 1), ``max_tokens``,
    ``temperature``, ``reject_truncated`` (reject when the completion hit max_tokens),
    ``batch_size`` (split very large batches, default all at once).
    A completion without the fields is rejected as ``unparseable``, never raised."""

    type = "llm"

    def __init__(self, name, config, ctx):
        super().__init__(name, config, ctx)
        self.template = ctx.prompts[config["prompt"]]
        system = config.get("system")
        self.system = ctx.prompts.get(system, system) if system else None
        self.specs = [FieldSpec.from_config(k, v or {}) for k, v in config["fields"].items()]
        self.n = int(config.get("n", 1))

    def _params(self, index: int) -> SamplingParams:
        p = self.ctx.params
        max_tokens = int(self.config.get("max_tokens", p.max_tokens))
        if self.ctx.max_tokens_cap:
            max_tokens = min(max_tokens, self.ctx.max_tokens_cap)
        return replace(
            p,
            max_tokens=max_tokens,
            temperature=float(self.config.get("temperature", p.temperature)),
            seed=(p.seed if p.seed is not None else self.ctx.seed) * 1000 + index,
        )

    def _count_evaluated(self, stats) -> None:
        """Prompt tokens the (local) teacher really evaluated and reused from earlier
        calls' KV cells, where it reports them (``LlamaCppTeacher.last_stats``)."""
        if isinstance(stats, dict) and "evaluated_tokens" in stats:
            for key, name in (
                ("evaluated_tokens", "prompt_tokens_evaluated"),
                ("reused_tokens", "prompt_tokens_reused"),
            ):
                self.ctx.usage[name] = self.ctx.usage.get(name, 0) + int(stats.get(key, 0))

    def generate(self, samples):
        if not samples:
            return []
        convs = []
        for s in samples:
            try:
                user = render(self.template, s)
            except KeyError as e:
                raise self.error(
                    f"prompt {self.config['prompt']!r} uses {{{{{e.args[0]}}}}}, which no earlier block set"
                ) from None
            conv = [Message("system", self.system)] if self.system else []
            convs.append(conv + [Message("user", user)])
        size = int(self.config.get("batch_size", 0)) or len(convs)
        results = []
        for start in range(0, len(convs), size):
            try:
                results += self.ctx.teacher.chat(convs[start : start + size], self._params(start), n=self.n)
            except Exception as e:  # TeacherError and runtime failures: name the block
                raise self.error(f"teacher failed: {e}") from e
            self._count_evaluated(getattr(self.ctx.teacher, "last_stats", None))
        if len(results) != len(samples):
            raise self.error(f"teacher returned {len(results)} results for {len(samples)} prompts")
        self.ctx.candidates += (self.n - 1) * len(samples)
        out = []
        for s, comps in zip(samples, results):
            for j, c in enumerate(comps[: self.n]):
                self.ctx.usage["requests"] += 1
                self.ctx.usage["prompt_tokens"] += c.prompt_tokens
                self.ctx.usage["completion_tokens"] += c.completion_tokens
                row = dict(s)
                if self.n > 1:
                    row["_id"] = f"{s['_id']}.{j}"
                if c.finish_reason == "error":
                    self.ctx.reject({**row, f"{self.name}_raw": c.text}, self.name, "teacher-error", c.text[:300])
                    continue
                try:
                    fields = parse_fields(c.text, self.specs, self.ctx.tags)
                except Unparseable as e:
                    self.ctx.reject({**row, f"{self.name}_raw": c.text}, self.name, "unparseable", str(e))
                    continue
                if c.finish_reason == "length" and self.config.get("reject_truncated"):
                    self.ctx.reject(
                        {**row, **fields},
                        self.name,
                        "truncated",
                        f"the output hit max_tokens={self._params(0).max_tokens}",
                    )
                    continue
                out.append({**row, **fields})
        return out


# ---------------------------------------------------------------- filters

_OPS: dict[str, Callable] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "ge": operator.ge,
    "gt": operator.gt,
    "le": operator.le,
    "lt": operator.lt,
    "in": lambda a, b: a in b,
}


class FilterByValueBlock(Block):
    """Keep samples whose ``column`` compares true (``op``: eq ne ge gt le lt in) to
    ``value``; the rest are rejected with ``reason`` (default ``low-score``)."""

    type = "filter_value"

    def generate(self, samples):
        col, op, value = self.config["column"], _OPS[self.config["op"]], self.config["value"]
        reason = self.config.get("reason", "low-score")
        out = []
        for s in samples:
            v = s.get(col)
            try:
                ok = v is not None and op(v, value)
            except TypeError:
                ok = False
            if ok:
                out.append(s)
            else:
                self.ctx.reject(s, self.name, reason, f"{col} = {v!r}, needs {self.config['op']} {value!r}")
        return out


class DeduplicateBlock(Block):
    """Reject samples whose ``column`` is near-identical (token Jaccard >=
    ``threshold``, default 0.9) to an earlier sample's or, with ``against_seeds``, to
    the same field (question, answer or context) of one of the leaf's seed examples
    (a copy of a seed teaches nothing new)."""

    type = "deduplicate"

    def generate(self, samples):
        col = self.config["column"]
        threshold = float(self.config.get("threshold", 0.9))
        seen: list[str] = []
        seeds = []
        if self.config.get("against_seeds") and col in ("question", "answer", "context"):
            seeds = [getattr(e, col) for e in self.ctx.seeds.examples if getattr(e, col)]
        out = []
        for s in samples:
            text = str(s.get(col, ""))
            hit = next((x for x in seeds if jaccard(text, x) >= threshold), None)
            if hit is not None:
                self.ctx.reject(s, self.name, "copies-seed", f"{col} repeats a seed example")
                continue
            hit = next((x for x in seen if jaccard(text, x) >= threshold), None)
            if hit is not None:
                self.ctx.reject(s, self.name, "duplicate", f"{col} repeats another generated sample")
                continue
            seen.append(text)
            out.append(s)
        return out


class LengthFilterBlock(Block):
    """Reject samples whose ``column`` is longer than ``max_words`` or shorter than
    ``min_words`` (reason ``too-long`` / ``too-short``)."""

    type = "length_filter"

    def generate(self, samples):
        col = self.config["column"]
        lo, hi = int(self.config.get("min_words", 1)), self.config.get("max_words")
        out = []
        for s in samples:
            words = len(str(s.get(col, "")).split())
            if words < lo:
                self.ctx.reject(s, self.name, "too-short", f"{col} has {words} words, needs {lo}")
            elif hi is not None and words > int(hi):
                self.ctx.reject(s, self.name, "too-long", f"{col} has {words} words, at most {hi}")
            else:
                out.append(s)
        return out


# ---------------------------------------------------------------- columns


class SelectColumnsBlock(Block):
    """Rename (``rename``: old -> new) then keep only ``keep`` columns (plus the internal
    ``_id``/``seed_ids``) when given."""

    type = "select"

    def generate(self, samples):
        rename = self.config.get("rename") or {}
        keep = self.config.get("keep")
        out = []
        for s in samples:
            row = {rename.get(k, k): v for k, v in s.items()}
            if keep is not None:
                row = {k: v for k, v in row.items() if k in keep or k in ("_id", "seed_ids")}
            out.append(row)
        return out


class ToMessagesBlock(Block):
    """Build the training record: ``messages`` from the ``system``/``user``/``assistant``
    templates, judge ``scores`` (columns) and extra ``metadata`` columns. A record that
    would carry one of the pipeline's tags (``[End of Question]``...) is rejected
    (``tags-in-output``): the parser keeps tags out of generated fields, so only text a
    template takes from elsewhere can bring one."""

    type = "to_messages"

    def generate(self, samples):
        out = []
        for s in samples:
            try:
                msgs = [
                    {"role": r, "content": render(self.config[r], s).strip()}
                    for r in ("system", "user", "assistant")
                    if self.config.get(r) is not None
                ]
            except KeyError as e:
                raise self.error(f"template uses {{{{{e.args[0]}}}}}, which no earlier block set") from None
            found = next(((m["role"], t) for m in msgs if (t := find_tag(m["content"], self.ctx.tags))), None)
            if found is not None:
                self.ctx.reject(s, self.name, "tags-in-output", f"the {found[0]} message holds the tag {found[1]}")
                continue
            scores = {c: s.get(c) for c in self.config.get("scores", [])}
            meta = {c: s.get(c) for c in self.config.get("metadata", []) if c in s}
            out.append({**s, "messages": msgs, "judge_scores": scores, "extra_metadata": meta})
        return out


BLOCK_TYPES: dict[str, type[Block]] = {
    cls.type: cls
    for cls in (
        SampleSeedsBlock,
        ChunkDocumentsBlock,
        LLMBlock,
        FilterByValueBlock,
        DeduplicateBlock,
        LengthFilterBlock,
        SelectColumnsBlock,
        ToMessagesBlock,
    )
}


def timed(block: Block, samples: list[dict]) -> list[dict]:
    t0 = time.perf_counter()
    try:
        return block.generate(samples)
    finally:
        block.ctx.timings[block.name] = round(time.perf_counter() - t0, 4)
