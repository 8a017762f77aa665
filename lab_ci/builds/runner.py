"""``lab-ci build``: validate → generate → mix → train → postcheck → release.

Every stage writes ``<out>/<stage>/manifest.json`` when it is done, keyed by a hash
of its inputs, so a killed build started again with the same arguments skips the
finished stages and resumes the unfinished one where it stopped (generation per
round of each leaf, training per checkpoint). Every artifact records the taxonomy
commit. The side effects (git, teacher, torch, files) are called from here; the
logic they feed (recipes, caching rules, mixing, scoring, the card) lives in the
sibling modules and is testable without them.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import LabCIError
from ..taxonomy.leaf import LeafFile
from .config import BuildConfig
from .generate import GenerationCache, LeafData, cache_key, generate_leaf_cached, leaf_kind
from .mix import mix_phases
from .store import StageManifest, read_json, read_jsonl, sha256_file, stable_hash, write_json_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)

#: The stages in order; ``--until STAGE`` stops after one of them.
STAGES = ("validate", "generate", "mix", "train", "postcheck", "release")


class BuildInvalidTaxonomy(LabCIError):
    """The tree at the commit has invalid leaves: exit 1, like ``lab-ci check``."""

    exit_code = 1


@dataclass
class BuildRequest:
    taxonomy: Path
    out: Path
    config: BuildConfig
    teacher: str
    student: Path
    commit: str | None = None  # None: the working tree (files on disk)
    since: str | None = None  # only leaves changed since this revision get the postcheck
    cache_dir: Path | None = None  # default <out>/cache
    document_mirrors: dict[str, str] | None = None
    allow_file_documents: bool = False
    progress: bool = True
    teacher_concurrency: int = 8  # concurrent requests to an OpenAI-compatible teacher
    parallel_leaves: int | None = None  # leaves generated at once (default: 4 for a URL teacher, 1 for GGUF)
    nproc_per_node: int = 0  # >0: train under torchrun with this many processes per node
    torchrun_args: list[str] = field(default_factory=list)  # extra torchrun options (multi-node)
    until: str | None = None  # stop after this stage


# ------------------------------------------------------------------------------ helpers
def _stage(name: str) -> None:
    print(f"== {name}", file=sys.stderr, flush=True)


def _bar(total: int | None, desc: str, enabled: bool, unit: str = "sample"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def resolve_commit(taxonomy: Path, commit: str | None) -> str | None:
    """The full commit id ``commit`` names in the taxonomy's repository (None: working tree)."""
    if commit is None:
        return None
    from ..taxonomy.gitrepo import GitTaxonomy  # CHECK-IO's git layer

    with GitTaxonomy.open(taxonomy) as gt:
        return gt.resolve(commit)


def invalid_tree_message(report, limit: int = 20) -> str | None:
    """``path:line:column: message`` for the first error of each invalid file, or None."""
    bad = [f for f in report.files if not f.valid]
    if not bad:
        return None
    lines = []
    for f in bad[:limit]:
        first = next(d for d in f.diagnostics if d.severity == "error")
        lines.append(f"  {f.path}:{first.line}:{first.column}: {first.message}")
    more = f"\n  ... and {len(bad) - limit} more" if len(bad) > limit else ""
    return (
        f"{len(bad)} invalid leaf file(s); a release build needs a valid tree "
        f"(run `lab-ci check` for details):\n" + "\n".join(lines) + more
    )


def validate(taxonomy: Path, commit: str | None) -> list[LeafFile]:
    """Every leaf of the tree at ``commit`` (or on disk), checked; raises on any invalid one."""
    from ..check.api import collect_leaves
    from ..check.engine import check_leaves
    from ..check.options import CheckOptions

    leaves = collect_leaves(taxonomy, head=commit) if commit else collect_leaves(taxonomy)
    message = invalid_tree_message(check_leaves(leaves, CheckOptions()))
    if message:
        raise BuildInvalidTaxonomy(message)
    return sorted((l for l in leaves if l.kind == "file" and l.change != "deleted"), key=lambda l: l.path)


def check_student(student: Path) -> dict:
    """The student's config (a clear error when the folder is not a usable HF causal LM)."""
    student = Path(student)
    if not student.is_dir():
        raise LabCIError(f"student {str(student)!r}: not a folder (expected a Hugging Face model folder)")
    cfg_path = student / "config.json"
    cfg = read_json(cfg_path)
    if not isinstance(cfg, dict):
        raise LabCIError(
            f"student {str(student)!r}: {cfg_path.name} is missing or not valid JSON (expected a Hugging Face model folder)"
        )
    if not any(student.glob("*.safetensors")):
        raise LabCIError(f"student {str(student)!r}: no *.safetensors weights")
    if not ((student / "tokenizer.json").is_file() or (student / "tokenizer_config.json").is_file()):
        raise LabCIError(f"student {str(student)!r}: no tokenizer (tokenizer.json / tokenizer_config.json)")
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(student)
    except (OSError, ValueError, KeyError) as e:
        raise LabCIError(f"student {str(student)!r}: transformers cannot read its config: {e}") from None
    return cfg


def _check_recipe(cfg: BuildConfig) -> None:
    """Load the recipe's pipelines and type-check its ``train`` section before generating."""
    from ..sdg.pipeline import load_pipeline
    from ..train import TrainConfig

    for kind, name in cfg.pipelines.items():
        try:
            load_pipeline(name)
        except LabCIError as e:
            raise LabCIError(f"build recipe 'generate.pipelines.{kind}': {e}") from None
    try:
        TrainConfig.from_dict({"seed": cfg.seed, **cfg.train})
    except LabCIError as e:
        raise LabCIError(f"build recipe 'train': {e}") from None


def student_fingerprint(student: Path) -> dict:
    """Names, sizes and mtimes of the student's files: cheap, and changes when it does."""
    return {
        "path": str(Path(student).resolve()),
        "files": {
            p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(Path(student).iterdir()) if p.is_file()
        },
    }


def open_teacher(spec: str, concurrency: int):
    from ..teacher import TeacherError, load_teacher

    try:
        return (
            load_teacher(spec, concurrency=concurrency)
            if spec.startswith(("http://", "https://"))
            else load_teacher(spec)
        )
    except TeacherError as e:
        raise LabCIError(f"teacher {spec!r}: {e}") from None


def leaf_pipeline(leaf: LeafFile, kind: str, config: BuildConfig) -> tuple[str | None, str]:
    """(pipeline to pass to SDG or None for the leaf's built-in one, its name@version).
    The version is part of the leaf's cache key: a changed pipeline regenerates."""
    from ..sdg.api import PIPELINE_VERSION
    from ..sdg.pipeline import load_pipeline
    from ..sdg.seeds import parse_leaf

    chosen = config.pipelines.get(kind)
    if chosen:
        pipe = load_pipeline(chosen)
        return chosen, f"{pipe.name}@{pipe.version}"
    name = parse_leaf(leaf).default_pipeline
    return None, f"{name}@{PIPELINE_VERSION.get(name, 'unknown')}"


# ------------------------------------------------------------------------------ stages
def stage_generate(req: BuildRequest, leaves: list[LeafFile], teacher) -> tuple[list[dict], dict[str, list[dict]]]:
    """Bring every leaf's cache entry up to its target; returns (manifest rows, pools by kind)."""
    from ..sdg import api as sdg_api
    from ..sdg.documents import DocumentFetcher

    cfg = req.config
    cache_root = req.cache_dir or (req.out / "cache")
    fetcher = DocumentFetcher(
        cache_dir=cache_root / "documents",
        allow_file=req.allow_file_documents,
        mirrors=req.document_mirrors or {},
    )
    gcache = GenerationCache(cache_root / "generated")
    kinds = {l.path: leaf_kind(l) for l in leaves}
    targets = {l.path: cfg.samples_per_leaf.get(kinds[l.path], 0) for l in leaves}
    todo = [l for l in leaves if targets[l.path] > 0]
    url_teacher = req.teacher.startswith(("http://", "https://"))
    workers = req.parallel_leaves or (4 if url_teacher else 1)

    with _bar(sum(targets.values()), "generate", req.progress) as bar:

        def one(leaf: LeafFile) -> LeafData:
            pipeline, version = leaf_pipeline(leaf, kinds[leaf.path], cfg)
            key = cache_key(leaf, version, teacher.info.id, cfg.seed, cfg.round_size)

            def run_round(n: int, seed: int) -> tuple[list[dict], int]:
                g = sdg_api.generate_leaf(leaf, teacher, samples=n, seed=seed, documents=fetcher, pipeline=pipeline)
                return list(g.accepted), len(g.rejected)

            data = generate_leaf_cached(
                leaf,
                kind=kinds[leaf.path],
                target=targets[leaf.path],
                cache=gcache,
                key=key,
                round_size=cfg.round_size,
                max_rounds=cfg.max_rounds,
                seed=cfg.seed,
                run_round=run_round,
                on_round=bar.update,
            )
            bar.update(len(data.samples) - data.generated_now)  # cached samples count as done
            return data

        if workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lab-ci-gen") as pool:
                results = list(pool.map(one, todo))
        else:
            results = [one(l) for l in todo]

    rows, pools = [], {}
    for data in results:  # leaf order (sorted paths): deterministic pools
        pools.setdefault(data.kind, []).extend(data.samples)
        rows.append(
            {
                "leaf": data.leaf,
                "kind": data.kind,
                "key": data.cache_key,
                "target": targets[data.leaf],
                "samples": len(data.samples),
                "generated_now": data.generated_now,
                "rounds": data.rounds,
                "rounds_now": data.rounds_now,
                "rejected": data.rejected,
            }
        )
        if len(data.samples) < targets[data.leaf]:
            log.warning(
                "%s: %d of %d samples after %d rounds (the judges rejected the rest)",
                data.leaf,
                len(data.samples),
                targets[data.leaf],
                data.rounds,
            )
    return rows, pools


def stage_mix(req: BuildRequest, pools: dict[str, list[dict]]) -> list[dict]:
    cfg = req.config
    datasets = []
    for i, m in enumerate(mix_phases(pools, cfg.phases, cfg.seed), 1):
        if not m.records:
            raise LabCIError(
                f"phase {m.name!r} has no data: the teacher's samples were all rejected "
                f"or the recipe selects no leaf kind present in the taxonomy"
            )
        path = req.out / "mix" / f"phase-{i}-{m.name}.jsonl"
        digest = write_jsonl_atomic(path, m.records)
        datasets.append({"phase": m.name, "file": str(path.relative_to(req.out)), "sha256": digest, "stats": m.stats})
    return datasets


def train_run_config(req: BuildRequest, datasets: list[dict], train_dir: Path) -> dict:
    """The run file of ``python -m lab_ci.train.run`` (TRAIN's torchrun entry point)."""
    return {
        "student": str(Path(req.student).resolve()),
        "out": str(train_dir.resolve()),
        "train": {"seed": req.config.seed, **req.config.train},
        "phases": [
            {"name": d["phase"], "data": [str((req.out / d["file"]).resolve())], "epochs": p.epochs}
            for d, p in zip(datasets, req.config.phases)
        ],
    }


def torchrun_command(run_yaml: Path, result_json: Path, nproc_per_node: int, extra: list[str]) -> list[str]:
    """``python -m torch.distributed.run ... -m lab_ci.train.run --config run.yaml``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={max(1, nproc_per_node)}"]
    if not any(a.startswith(("--nnodes", "--rdzv", "--master", "--standalone")) for a in extra):
        cmd.append("--standalone")  # one node: a free local rendezvous
    return [*cmd, *extra, "-m", "lab_ci.train.run", "--config", str(run_yaml), "--result-json", str(result_json)]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when the build process dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_child(cmd: list[str], env: dict) -> int:
    """Run a stage's child process; SIGTERM/SIGINT to the build are passed on to it, and
    it is stopped when the build dies, so no training outlives its build."""
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: proc.send_signal(signum))
    try:
        rc = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if rc < 0:
        raise LabCIError(
            f"training was stopped by signal {-rc}; run the build again to resume from its last checkpoint"
        )
    return rc


def stage_train(req: BuildRequest, datasets: list[dict]) -> dict:
    """Phased training, in this process or under torchrun; resumes from the checkpoints
    in ``<out>/train`` when the inputs are the ones they were made from."""
    import yaml

    train_dir = req.out / "train"
    run = train_run_config(req, datasets, train_dir)
    inputs = stable_hash(
        {
            "run": {**run, "out": None},
            "datasets": [d["sha256"] for d in datasets],
            "student": student_fingerprint(req.student),
        }
    )
    manifest = StageManifest(req.out, "train")
    done = manifest.done(inputs)
    if done and Path(done["final_dir"]).is_dir():
        print("train: already done for these inputs", file=sys.stderr)
        return done
    started = read_json(train_dir / "inputs.json")
    if isinstance(started, dict) and started.get("inputs") != inputs:
        print("train: data or options changed since the last run here; starting training afresh", file=sys.stderr)
        shutil.rmtree(train_dir)
    write_json_atomic(train_dir / "inputs.json", {"inputs": inputs})
    run_yaml = train_dir / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(run, sort_keys=False), encoding="utf-8")

    # Training runs in its own process (torchrun's workers, or one plain Python process):
    # a fresh interpreter whose state does not depend on what this process did before
    # (llama.cpp generation), so a resumed build trains exactly like an uninterrupted one.
    result_json = train_dir / "result.json"
    result_json.unlink(missing_ok=True)
    env = dict(os.environ)
    if req.nproc_per_node > 0 or req.torchrun_args:
        cmd = torchrun_command(run_yaml, result_json, req.nproc_per_node, req.torchrun_args)
        env.setdefault("OMP_NUM_THREADS", "1")
    else:
        cmd = [sys.executable, "-m", "lab_ci.train.run", "--config", str(run_yaml), "--result-json", str(result_json)]
    print("train: " + shlex.join(cmd), file=sys.stderr, flush=True)
    rc = run_child(cmd, env)
    result = read_json(result_json)
    if rc == 3:  # lab_ci.train.run: stopped early by max_steps
        result = {**(result or {}), "completed": False, "final_dir": None, "phases": (result or {}).get("phases", [])}
    elif rc != 0 or not isinstance(result, dict):
        raise LabCIError(
            f"training failed (exit {rc}); its log is above. "
            f"Run the build again to resume from the last checkpoint in {train_dir}"
        )
    phases = [
        {
            "name": p["name"],
            "dir": p["out_dir"],
            "steps": p["global_step"],
            "final_loss": p["last_loss"],
            "data": p.get("data_stats", {}),
        }
        for p in result["phases"]
    ]
    final_dir, completed = result["final_dir"], result["completed"]
    if not completed or final_dir is None:
        raise LabCIError(
            "training stopped before the last phase finished (train.max_steps in the recipe?); "
            "remove max_steps and run the build again to resume"
        )
    return manifest.finish(inputs, final_dir=str(final_dir), phases=phases, config=run["train"], run_file=str(run_yaml))


def stage_postcheck(
    req: BuildRequest, leaves: list[LeafFile], commit: str | None, final_dir: Path, train_inputs: str
) -> list[dict]:
    from .postcheck import postcheck

    if req.since:
        from ..check.api import collect_leaves

        changed = {l.path for l in collect_leaves(req.taxonomy, base=req.since, head=commit)}
        post_leaves = [l for l in leaves if l.path in changed]
    else:
        post_leaves = leaves
    inputs = stable_hash(
        {
            "train": train_inputs,
            "leaves": [l.blob_id for l in post_leaves],
            "max_new_tokens": req.config.postcheck_max_new_tokens,
        }
    )
    manifest = StageManifest(req.out, "postcheck")
    results = req.out / "postcheck" / "results.json"
    if manifest.done(inputs) and isinstance(read_json(results), list):
        return read_json(results)
    from .postcheck import seed_questions

    total = 2 * sum(len(seed_questions(l)) for l in post_leaves)  # before and after
    with _bar(total, "postcheck", req.progress, unit="answer") as bar:
        rows = postcheck(
            req.student, final_dir, post_leaves, req.config.postcheck_max_new_tokens, on_answer=lambda: bar.update(1)
        )
    write_json_atomic(results, rows)
    manifest.finish(inputs, leaves=[l.path for l in post_leaves], rows=len(rows))
    return rows


def stage_release(req: BuildRequest, prov: dict, train: dict, post_rows: list[dict]) -> dict:
    from .release import model_card, plot_losses

    rel = req.out / "release"
    tmp = req.out / "release.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copytree(train["final_dir"], tmp / "model")
    metrics = {p["name"]: list(read_jsonl(Path(p["dir"]) / "metrics.jsonl")) for p in train["phases"]}
    write_json_atomic(tmp / "metrics.json", metrics)
    loss_png = plot_losses(metrics, tmp / "loss.png")
    gguf_name = None
    if req.config.export_gguf:
        from ..train.gguf_export import export_gguf

        try:
            export_gguf(tmp / "model", tmp / "model.gguf", quant=req.config.gguf_quant, name=prov["name"])
            gguf_name = "model.gguf"
        except LabCIError as e:  # e.g. not a llama-architecture student: the release goes on without it
            log.warning("GGUF export skipped: %s", e)
            print(f"release: GGUF export skipped: {e}", file=sys.stderr)
    prov = {
        **prov,
        "training": [
            {
                "phase": p["name"],
                "steps": p["steps"],
                "final_loss": p["final_loss"],
                "first_loss": (metrics[p["name"]][0]["loss"] if metrics.get(p["name"]) else None),
                "data": p.get("data", {}),
            }
            for p in train["phases"]
        ],
        "postcheck": _postcheck_summary(post_rows),
        "gguf": gguf_name,
        "files": {},
    }
    for f in sorted(tmp.rglob("*")):
        if f.is_file():
            prov["files"][str(f.relative_to(tmp))] = sha256_file(f)
    (tmp / "README.md").write_text(model_card(prov, post_rows, "loss.png" if loss_png else None), encoding="utf-8")
    write_json_atomic(tmp / "release.json", prov)
    shutil.rmtree(rel, ignore_errors=True)
    os.replace(tmp, rel)
    return prov


def _postcheck_summary(rows: list[dict]) -> dict:
    leaves: dict[str, list[dict]] = {}
    for r in rows:
        leaves.setdefault(r["leaf"], []).append(r)
    return {
        leaf: {
            "questions": len(rs),
            "score_before": round(sum(r["score_before"] for r in rs) / len(rs), 3),
            "score_after": round(sum(r["score_after"] for r in rs) / len(rs), 3),
        }
        for leaf, rs in sorted(leaves.items())
    }


# ------------------------------------------------------------------------------ the build
def run_build(req: BuildRequest) -> dict:
    """Run (or resume) every stage up to ``req.until``; returns the release provenance
    (or, when stopped early, the manifests written so far)."""
    out = req.out
    out.mkdir(parents=True, exist_ok=True)
    cfg = req.config
    if req.until is not None and req.until not in STAGES:
        raise LabCIError(f"--until {req.until!r}: choose one of {', '.join(STAGES)}")
    stop = STAGES.index(req.until) if req.until else len(STAGES) - 1
    t_start = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> None:
        timings[name] = round(time.monotonic() - t0, 2)

    t0 = time.monotonic()
    _stage("validate")
    commit = resolve_commit(req.taxonomy, req.commit)
    leaves = validate(req.taxonomy, commit)
    if not leaves:
        raise LabCIError(f"{req.taxonomy}: no qna.yaml leaves to build from")
    check_student(req.student)  # fail before the expensive stages
    _check_recipe(cfg)
    tax_info = {"commit": commit or "working tree", "leaves": [{"path": l.path, "blob": l.blob_id} for l in leaves]}
    write_json_atomic(out / "validate" / "manifest.json", {"complete": True, **tax_info})
    lap("validate", t0)
    if stop == 0:
        return {"taxonomy": tax_info}

    t0 = time.monotonic()
    _stage("generate")
    teacher = open_teacher(req.teacher, req.teacher_concurrency)
    teacher_info = {"id": teacher.info.id, "name": teacher.info.name, "spec": req.teacher}
    try:
        gen_rows, pools = stage_generate(req, leaves, teacher)
    finally:
        teacher.close()
    StageManifest(out, "generate").finish(
        stable_hash(gen_rows),
        leaves=gen_rows,
        teacher=teacher_info,
        commit=tax_info["commit"],
        generated_now=sum(r["generated_now"] for r in gen_rows),
    )
    lap("generate", t0)
    if stop == 1:
        return {"taxonomy": tax_info, "generation": gen_rows}

    t0 = time.monotonic()
    _stage("mix")
    datasets = stage_mix(req, pools)
    # the training run file, also for other nodes of a multi-node run (README, build section)
    import yaml

    (out / "mix" / "train.yaml").write_text(
        yaml.safe_dump(train_run_config(req, datasets, out / "train"), sort_keys=False), encoding="utf-8"
    )
    StageManifest(out, "mix").finish(stable_hash(datasets), datasets=datasets, train_run_file="mix/train.yaml")
    lap("mix", t0)
    if stop == 2:
        return {"taxonomy": tax_info, "generation": gen_rows, "datasets": datasets}

    t0 = time.monotonic()
    _stage("train")
    train = stage_train(req, datasets)
    lap("train", t0)
    if stop == 3:
        return {"taxonomy": tax_info, "generation": gen_rows, "datasets": datasets, "train": train}

    t0 = time.monotonic()
    _stage("postcheck")
    post_rows = stage_postcheck(req, leaves, commit, Path(train["final_dir"]), train["inputs"])
    lap("postcheck", t0)
    if stop == 4:
        return {"taxonomy": tax_info, "postcheck": post_rows}

    t0 = time.monotonic()
    _stage("release")
    prov = {
        "name": f"lab-ci-{commit[:12] if commit else 'working-tree'}",
        "lab_ci_version": __version__,
        "taxonomy": tax_info,
        "teacher": teacher_info,
        "student": {"base": str(req.student), **student_fingerprint(req.student)},
        "generation": gen_rows,
        "datasets": datasets,
        "hyperparameters": {"recipe": cfg.to_dict(), "train": train["config"]},
        "timings_s": timings,
    }
    prov = stage_release(req, prov, train, post_rows)
    lap("release", t0)
    prov["timings_s"] = {**timings, "total": round(time.monotonic() - t_start, 2)}
    write_json_atomic(out / "release" / "release.json", prov)
    print(f"release written to {out / 'release'}", file=sys.stderr)
    return prov
