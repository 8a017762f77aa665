"""``lab-ci build``: validate → generate → mix → train → postcheck → release.

Every stage writes ``<out>/<stage>/manifest.json`` when it is done, keyed by a hash
of its inputs, so a killed build started again with the same arguments skips the
finished stages and resumes the unfinished one where it stopped (generation per
round, training per checkpoint). Every artifact records the taxonomy commit.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import LabCIError
from ..taxonomy.leaf import LeafFile
from .config import BuildConfig
from .generate import GenerationCache, cache_key, generate_leaf_cached, leaf_kind
from .mix import mix_phases
from .store import StageManifest, read_jsonl, sha256_file, stable_hash, write_json_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)


class BuildInvalidTaxonomy(LabCIError):
    exit_code = 1


@dataclass
class BuildRequest:
    taxonomy: Path
    out: Path
    config: BuildConfig
    teacher: str
    student: Path
    commit: str | None = None  # None: the working tree
    since: str | None = None  # leaves changed since this revision get the postcheck
    cache_dir: Path | None = None
    document_mirrors: dict[str, str] | None = None
    allow_file_documents: bool = False
    progress: bool = True


def _stage(name: str) -> None:
    print(f"== {name}", file=sys.stderr, flush=True)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def resolve_commit(taxonomy: Path, commit: str | None) -> str | None:
    if commit is None:
        return None
    from ..taxonomy.gitrepo import GitRepo  # CHECK-IO's git layer

    return GitRepo.open(taxonomy).resolve(commit)


def validate(req: BuildRequest) -> list[LeafFile]:
    from ..check.api import collect_leaves
    from ..check.engine import check_leaves
    from ..check.options import CheckOptions

    leaves = collect_leaves(req.taxonomy, head=req.commit) if req.commit else collect_leaves(req.taxonomy)
    report = check_leaves(leaves, CheckOptions())
    bad = [f for f in report.files if not f.valid]
    if bad:
        lines = []
        for f in bad[:20]:
            first = next(d for d in f.diagnostics if d.severity == "error")
            lines.append(f"  {f.path}:{first.line}:{first.column}: {first.message}")
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise BuildInvalidTaxonomy(
            f"{len(bad)} invalid leaf file(s); a release build needs a valid tree "
            f"(run `lab-ci check` for details):\n" + "\n".join(lines) + more
        )
    return [leaf for leaf in leaves if leaf.kind == "file" and leaf.change != "deleted"]


def run_build(req: BuildRequest) -> dict:
    out = req.out
    out.mkdir(parents=True, exist_ok=True)
    cfg = req.config
    t_start = time.monotonic()

    _stage("validate")
    commit = resolve_commit(req.taxonomy, req.commit)
    leaves = validate(req)
    if not leaves:
        raise LabCIError(f"{req.taxonomy}: no qna.yaml leaves to build from")
    leaves.sort(key=lambda l: l.path)
    tax_info = {
        "commit": commit or "working tree",
        "leaves": [{"path": l.path, "blob": l.blob_id} for l in leaves],
    }
    write_json_atomic(out / "validate" / "manifest.json", {"complete": True, **tax_info})

    _stage("generate")
    from ..sdg import api as sdg_api
    from ..sdg.documents import DocumentFetcher
    from ..teacher import load_teacher

    teacher = load_teacher(req.teacher)
    fetcher = DocumentFetcher(
        cache_dir=(req.cache_dir / "documents") if req.cache_dir else None,
        allow_file=req.allow_file_documents,
        mirrors=req.document_mirrors or {},
    )
    gcache = GenerationCache((req.cache_dir or out / "cache") / "generated")
    kinds = {l.path: leaf_kind(l) for l in leaves}
    targets = {l.path: cfg.samples_per_leaf.get(kinds[l.path], 0) for l in leaves}
    pools: dict[str, list[dict]] = {}
    gen_rows = []
    with _bar(sum(targets.values()), "generate", req.progress) as bar:
        for leaf in leaves:
            kind, target = kinds[leaf.path], targets[leaf.path]
            if target == 0:
                continue
            pversion = sdg_api.pipeline_version(leaf)
            key = cache_key(leaf, pversion, teacher.info.id, cfg.seed, cfg.round_size)

            def run_round(n: int, seed: int, leaf=leaf) -> tuple[list[dict], int]:
                g = sdg_api.generate_leaf(leaf, teacher, samples=n, seed=seed, documents=fetcher)
                return list(g.accepted), len(g.rejected)

            data = generate_leaf_cached(
                leaf, kind=kind, target=target, cache=gcache, key=key, round_size=cfg.round_size,
                max_rounds=cfg.max_rounds, seed=cfg.seed, run_round=run_round, on_round=bar.update,
            )
            bar.update(max(0, len(data.samples) - data.generated_now - 0))
            pools.setdefault(kind, []).extend(data.samples)
            gen_rows.append({"leaf": leaf.path, "kind": kind, "key": key, "samples": len(data.samples),
                             "generated_now": data.generated_now, "rounds": data.rounds, "rejected": data.rejected})
    teacher.close()
    StageManifest(out, "generate").finish(stable_hash(gen_rows), leaves=gen_rows, teacher=teacher.info.id)

    _stage("mix")
    mixes = mix_phases(pools, cfg.phases, cfg.seed)
    datasets = []
    for i, m in enumerate(mixes, 1):
        path = out / "mix" / f"phase-{i}-{m.name}.jsonl"
        digest = write_jsonl_atomic(path, m.records)
        datasets.append({"phase": m.name, "file": str(path.relative_to(out)), "sha256": digest, "stats": m.stats})
        if not m.records:
            raise LabCIError(f"phase {m.name!r} has no data: the teacher's samples were all rejected "
                             f"or the recipe selects no leaf kind present in the taxonomy")
    StageManifest(out, "mix").finish(stable_hash(datasets), datasets=datasets)

    _stage("train")
    from ..train import api as train_api

    train_result = train_api.train_phases(
        student_dir=req.student,
        phases=[
            train_api.PhaseSpec(name=m.name, data=[out / d["file"]], epochs=p.epochs)
            for m, d, p in zip(mixes, datasets, cfg.phases)
        ],
        out_dir=out / "train",
        config=train_api.TrainConfig.from_dict({"seed": cfg.seed, **cfg.train}),
    )
    final_dir = Path(train_result.final_dir)

    _stage("postcheck")
    if req.since:
        from ..check.api import collect_leaves

        changed = {l.path for l in collect_leaves(req.taxonomy, base=req.since, head=req.commit)}
        post_leaves = [l for l in leaves if l.path in changed]
    else:
        post_leaves = leaves
    from .postcheck import postcheck

    post_rows = postcheck(req.student, final_dir, post_leaves, cfg.postcheck_max_new_tokens)
    write_json_atomic(out / "postcheck" / "results.json", post_rows)

    _stage("release")
    from .release import model_card, plot_losses

    rel = out / "release"
    if (rel / "model").exists():
        shutil.rmtree(rel / "model")
    shutil.copytree(final_dir, rel / "model")
    metrics = {ph.name: list(read_jsonl(Path(ph.metrics_file))) for ph in train_result.phases}
    loss_png = plot_losses(metrics, rel / "loss.png")
    gguf_name = None
    if cfg.export_gguf:
        from ..train.gguf_export import export_gguf

        try:
            export_gguf(rel / "model", rel / "model.gguf", quant="q8_0")
            gguf_name = "model.gguf"
        except (ValueError, NotImplementedError) as e:  # not a llama-architecture student
            log.warning("GGUF export skipped: %s", e)
    provenance = {
        "name": f"lab-ci release {commit[:12] if commit else 'working-tree'}",
        "lab_ci_version": __version__,
        "taxonomy": tax_info,
        "teacher": {"id": teacher.info.id, "spec": req.teacher},
        "student": {"base": str(req.student)},
        "generation": gen_rows,
        "datasets": datasets,
        "hyperparameters": {"recipe": cfg.to_dict(), "train": train_result.config},
        "training": [{"phase": ph.name, "steps": ph.steps, "final_loss": ph.final_loss} for ph in train_result.phases],
        "postcheck": {"leaves": sorted({r["leaf"] for r in post_rows}), "rows": len(post_rows)},
        "files": {},
        "gguf": gguf_name,
        "seconds": round(time.monotonic() - t_start, 1),
    }
    for f in sorted(rel.rglob("*")):
        if f.is_file() and f.name != "release.json":
            provenance["files"][str(f.relative_to(rel))] = sha256_file(f)
    (rel / "README.md").write_text(model_card(provenance, post_rows, "loss.png" if loss_png else None), encoding="utf-8")
    write_json_atomic(rel / "release.json", provenance)
    print(f"release written to {rel}", file=sys.stderr)
    return provenance
