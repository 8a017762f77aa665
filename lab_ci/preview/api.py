"""``run_preview``: check the changed leaves, generate a few samples for each valid one,
answer the seed questions with the current model, and collect it all for rendering.

I/O lives here (git, teacher, documents); rendering and hints are pure modules.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from ..check.api import check_taxonomy, collect_leaves
from ..errors import LabCIError
from ..sdg.api import generate_leaf
from ..sdg.errors import BlockError, DocumentError, EmptyLeafError, PipelineError, SeedError
from ..sdg.questions import ask_seed_questions, seed_questions
from ..sdg.text import rouge_l, token_f1
from ..taxonomy.documents import DocumentFetcher, mirrors_from_env
from ..taxonomy.seeds import parse_leaf
from ..teacher import open_teacher
from ..teacher.base import Teacher, TeacherError, TeacherInfo
from .hints import hints_for
from .model import LeafPreview, PrecheckItem, PreviewResult

log = logging.getLogger(__name__)

#: teacher details that can name the machine's file system: never in a preview
_PRIVATE_DETAILS = ("path",)
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def _info(t: Teacher) -> dict:
    """The teacher's id, name and public details: no local file path, no credentials
    in a URL (the comment is public)."""
    info: TeacherInfo | None = getattr(t, "info", None)
    if info is None:
        return {"id": "", "name": type(t).__name__, "details": {}}
    details = {
        k: _USERINFO.sub("", v) if isinstance(v, str) else v
        for k, v in info.details.items()
        if k not in _PRIVATE_DETAILS
    }
    return {"id": _USERINFO.sub("", info.id), "name": _USERINFO.sub("", info.name), "details": details}


def _diagnostic(d) -> dict:
    """A check diagnostic as the preview keeps it; ``hint`` (how to fix it) where the
    checker gives one."""
    out = d.to_dict()
    hint = getattr(d, "hint", None)
    if hint and not out.get("hint"):
        out["hint"] = hint
    for key in ("hint", "reference_message", "related", "covers", "yaml_path"):
        if not out.get(key):
            out.pop(key, None)
    return out


def precheck(
    model: Teacher, seeds_by_leaf: dict, *, max_tokens: int = 128, seed: int = 0
) -> dict[str, list[PrecheckItem]]:
    """Ask the current model every seed question of every leaf (one batched call of
    :func:`lab_ci.sdg.questions.ask_seed_questions`, which states the context rule);
    score each answer against the contributor's (token F1 and ROUGE-L)."""
    asks = [(path, q) for path, seeds in seeds_by_leaf.items() for q in seed_questions([seeds])]
    if not asks:
        return {}
    answers = ask_seed_questions(model, questions=[q for _, q in asks], max_tokens=max_tokens, seed=seed)
    result: dict[str, list[PrecheckItem]] = {}
    for (path, q), a in zip(asks, answers):
        got = a.answer
        result.setdefault(path, []).append(
            PrecheckItem(
                q.seed_id,
                q.question,
                q.reference,
                got,
                round(token_f1(got, q.reference), 4),
                round(rouge_l(got, q.reference), 4),
            )
        )
    return result


def run_preview(
    taxonomy: str | Path,
    *,
    base: str | None = None,
    head: str | None = None,
    teacher,
    samples: int = 3,
    seed: int = 0,
    precheck_model=None,
    documents=None,
    pipeline_dirs=None,
    progress: Callable[[str], None] | None = None,
    check_url: str | None = None,
    max_tokens: int | None = None,
    full_output: str | None = None,
) -> PreviewResult:
    """Preview every changed valid leaf (every leaf without ``base``).

    ``teacher`` and ``precheck_model`` are Teacher objects or specs (a ``.gguf`` path or an
    ``http(s)://`` URL), loaded only when a leaf needs them; ``documents`` a
    :class:`lab_ci.taxonomy.documents.DocumentFetcher`. The preview follows ``lab-ci check``:
    invalid leaves are listed with their check errors and not previewed; an empty leaf
    (valid to check, with a warning) is listed as empty and does not fail the preview.
    ``full_output`` says where the whole preview is when the comment must be shortened.
    """
    t0 = time.perf_counter()
    leaves = collect_leaves(taxonomy, base=base, head=head)
    report = check_taxonomy(taxonomy, base=base, head=head, use_cache=False)
    results = {f.path: f for f in report.files}
    fetcher = documents if documents is not None else DocumentFetcher(mirrors=mirrors_from_env())
    previews: list[LeafPreview] = []
    todo = []
    seeds_by_leaf = {}
    for leaf in sorted(leaves, key=lambda l: l.path):
        # a file check rejects is listed whatever its name (a misnamed leaf, qna.yml, is
        # an error there); only a qna.yaml is generated from
        named_leaf = leaf.path.rsplit("/", 1)[-1] == "qna.yaml"
        if leaf.change == "deleted" or leaf.kind == "missing":
            if named_leaf:
                previews.append(LeafPreview(leaf.path, "deleted"))
            continue
        fr = results.get(leaf.path)
        if fr is not None and not fr.valid:
            errs = [_diagnostic(d) for d in fr.diagnostics if d.severity == "error"]
            previews.append(LeafPreview(leaf.path, "invalid", diagnostics=errs))
            continue
        if not named_leaf:
            continue
        try:
            seeds = parse_leaf(leaf)
        except EmptyLeafError:
            previews.append(LeafPreview(leaf.path, "empty"))
            continue
        except SeedError as e:
            previews.append(LeafPreview(leaf.path, "failed", reason=str(e)))
            continue
        p = LeafPreview(leaf.path, "previewed")
        previews.append(p)
        todo.append((leaf, p, seeds))

    tinfo = None
    if todo:
        teacher_obj, own_teacher = open_teacher(teacher)
        try:
            tinfo = _info(teacher_obj)
            for leaf, p, seeds in todo:
                if progress:
                    progress(leaf.path)
                try:
                    gen = generate_leaf(
                        leaf,
                        teacher_obj,
                        samples=samples,
                        seed=seed,
                        documents=fetcher,
                        pipeline_dirs=pipeline_dirs,
                        max_tokens=max_tokens,
                        progress=(lambda b, _p=leaf.path: progress(f"{_p}: {b}")) if progress else None,
                    )
                except (DocumentError, SeedError, BlockError, PipelineError) as e:
                    p.status, p.reason = "failed", str(e)
                    continue
                seeds_by_leaf[leaf.path] = seeds
                p.pipeline, p.pipeline_version = gen.pipeline_name, gen.pipeline_version
                p.accepted = [{**rec, "fields": f} for rec, f in zip(gen.accepted, gen.accepted_fields)]
                p.rejected, p.stats, p.timings = gen.rejected, gen.stats, gen.timings
        finally:
            if own_teacher:
                teacher_obj.close()

    pinfo = None
    if precheck_model is not None and seeds_by_leaf:
        model, own = open_teacher(precheck_model)
        try:
            pinfo = _info(model)
            if progress:
                progress("precheck")
            try:
                checks = precheck(model, seeds_by_leaf, seed=seed, max_tokens=min(128, max_tokens or 128))
            except TeacherError as e:
                raise LabCIError(f"precheck model failed: {e}") from None
        finally:
            if own:
                model.close()
        for p in previews:
            p.precheck = checks.get(p.path, [])
    for p in previews:
        if p.previewed:
            p.hints = hints_for(seeds_by_leaf.get(p.path), p.stats, p.rejected, p.accepted, p.precheck)
    return PreviewResult(
        leaves=previews,
        teacher=tinfo,
        precheck_model=pinfo,
        base=base,
        head=head,
        samples=samples,
        seed=seed,
        timings={"total_s": round(time.perf_counter() - t0, 3)},
        check_url=check_url,
        full_output=full_output,
    )
