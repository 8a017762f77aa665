"""Generate synthetic data for one leaf: the entry point for preview and build.

``generate_leaf(leaf, teacher, samples=N)`` picks the leaf's pipeline (knowledge,
grounded or freeform skills), fetches its documents when it is a knowledge leaf,
starts ``samples`` candidates from the leaf's own seed examples and runs the blocks.
Every candidate ends either in ``accepted`` (a LAB training record) or in
``rejected`` (with the block and the reason), so
``len(accepted) + len(rejected) == stats["candidates"]``.

Record shape (one JSONL line each)::

    {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}],
     "metadata": {"leaf": path, "seed_ids": [...], "teacher": id,
                  "judge_scores": {...}, "pipeline": name, "pipeline_version": v,
                  "sample_id": "s0", "seed": 0, ...}}

A rejected entry: ``{"reason", "block", "detail", "fields": {question, answer,
context, ..., raw output}, "metadata": {... as above}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..taxonomy.documents import DocumentFetcher, mirrors_from_env
from ..taxonomy.leaf import LeafFile
from ..teacher.base import SamplingParams, Teacher
from .blocks import RunContext
from .errors import DocumentError, SeedError
from .pipeline import Pipeline, builtin_versions, load_pipeline
from .seeds import LeafSeeds, parse_leaf

__all__ = [
    "LeafGeneration",
    "generate_leaf",
    "pipeline_for",
    "PIPELINE_VERSION",
    "write_jsonl",
    "DocumentFetcher",
    "DocumentError",
    "SeedError",
]


class _BuiltinVersions(Mapping[str, str]):
    """Built-in pipeline name -> version (``"<declared>+<hash of YAML and prompts>"``),
    read on first use so that importing this module reads no pipeline file."""

    def __getitem__(self, name: str) -> str:
        return builtin_versions()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(builtin_versions())

    def __len__(self) -> int:
        return len(builtin_versions())


PIPELINE_VERSION: Mapping[str, str] = _BuiltinVersions()

#: the generated columns kept beside each sample (``accepted_fields``, ``fields`` of a
#: rejected one) so a reader sees context, question and answer apart, and a knowledge
#: sample's passage and where it comes from
_FIELD_COLUMNS = ("context", "question", "answer", "document", "document_source", "document_heading")


@dataclass
class LeafGeneration:
    leaf: str
    accepted: list[dict]
    rejected: list[dict]
    stats: dict
    pipeline_name: str
    pipeline_version: str
    timings: dict
    teacher: str = ""
    seed_examples: int = 0
    #: per accepted record, its generated columns (context, question, answer, document,
    #: document_source, document_heading): the preview shows them under their own labels
    accepted_fields: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "leaf": self.leaf,
            "pipeline": self.pipeline_name,
            "pipeline_version": self.pipeline_version,
            "teacher": self.teacher,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "stats": self.stats,
            "timings": self.timings,
        }


def pipeline_for(seeds: LeafSeeds, pipeline: str | None = None, pipeline_dirs=None) -> Pipeline:
    return load_pipeline(pipeline or seeds.default_pipeline, pipeline_dirs)


def _metadata(sample: dict, base: dict) -> dict:
    return {**base, "sample_id": sample.get("_id"), "seed_ids": list(sample.get("seed_ids") or [])}


def generate_leaf(
    leaf: LeafFile,
    teacher: Teacher,
    *,
    samples: int,
    seed: int = 0,
    pipeline: str | None = None,
    documents: DocumentFetcher | None = None,
    params: SamplingParams | None = None,
    progress: Callable[[str], None] | None = None,
    pipeline_dirs: Iterable[str | Path] | None = None,
    max_tokens: int | None = None,
) -> LeafGeneration:
    """Run the leaf's pipeline for ``samples`` candidates.

    Raises :class:`SeedError` (no seeds), :class:`DocumentError` (bad or unreachable
    document; names the leaf and field), :class:`PipelineError`, :class:`BlockError`.
    ``max_tokens`` caps every LLM block's generation length (quick previews);
    ``params`` are the defaults for what a block does not set.
    Unparseable teacher output is never raised: it becomes a rejection.
    """
    if samples < 1:
        raise ValueError("samples must be >= 1")
    t0 = time.perf_counter()
    seeds = parse_leaf(leaf)
    pipe = pipeline_for(seeds, pipeline, pipeline_dirs)
    docs = []
    timings: dict = {}
    if any(b.type == "chunk_documents" for b in pipe.blocks):
        ref = seeds.document
        if ref is None:
            raise DocumentError("knowledge leaf has no document section", field="document", leaf=leaf.path)
        fetcher = documents or DocumentFetcher(mirrors=mirrors_from_env())
        td = time.perf_counter()
        try:
            docs = fetcher.fetch(ref.repo, ref.commit, ref.patterns)
        except DocumentError as e:
            raise e.for_leaf(leaf.path) from None
        timings["documents_s"] = round(time.perf_counter() - td, 4)
    forget = getattr(teacher, "forget_prompts", None)
    if callable(forget):
        forget()  # a leaf's samples depend on the leaf and the seed, not on what ran before
    ctx = RunContext(
        teacher=teacher,
        seeds=seeds,
        samples=samples,
        seed=seed,
        params=params or SamplingParams(),
        documents=docs,
        progress=progress,
        max_tokens_cap=max_tokens,
    )
    kept = pipe.run(ctx, progress=progress)
    teacher_id = getattr(getattr(teacher, "info", None), "id", "") or ""
    base = {
        "leaf": leaf.path,
        "teacher": teacher_id,
        "pipeline": pipe.name,
        "pipeline_version": pipe.version,
        "seed": seed,
    }
    accepted, accepted_fields = [], []
    for s in kept:
        meta = _metadata(s, base)
        meta["judge_scores"] = s.get("judge_scores", {})
        meta.update(s.get("extra_metadata", {}))
        accepted.append({"messages": s["messages"], "metadata": meta})
        accepted_fields.append(_fields(s))
    rejected = []
    for r in ctx.rejected:
        s = r["sample"]
        fields = _fields(s)
        fields.update({k: v for k, v in s.items() if k.endswith("_raw")})
        meta = _metadata(s, base)
        meta["judge_scores"] = {k: s[k] for k in s if k.endswith("_score") or k == "faithful"}
        rejected.append(
            {"reason": r["reason"], "block": r["block"], "detail": r["detail"], "fields": fields, "metadata": meta}
        )
    by_reason: dict[str, int] = {}
    for r in rejected:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    timings.update(
        {
            "blocks_s": {k: v for k, v in ctx.timings.items() if isinstance(v, float)},
            "total_s": round(time.perf_counter() - t0, 4),
        }
    )
    stats = {
        "candidates": ctx.candidates,
        "accepted": len(accepted),
        "rejected": len(rejected),
        "by_reason": by_reason,
        "seed_examples": len(seeds.examples),
        "documents": len(docs),
        "chunks": ctx.timings.get("chunks", 0),
        "usage": dict(ctx.usage),
    }
    return LeafGeneration(
        leaf=leaf.path,
        accepted=accepted,
        rejected=rejected,
        stats=stats,
        pipeline_name=pipe.name,
        pipeline_version=pipe.version,
        timings=timings,
        teacher=teacher_id,
        seed_examples=len(seeds.examples),
        accepted_fields=accepted_fields,
    )


def _fields(sample: dict) -> dict:
    return {k: sample[k] for k in _FIELD_COLUMNS if k in sample}


def write_jsonl(records: Iterable[dict], path: str | Path) -> int:
    """Write records as JSON lines (UTF-8); returns how many."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n
