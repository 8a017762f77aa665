"""``lab-ci build``: validate → generate → mix → train → postcheck → release.

:data:`STAGES` lists the stages in order; each is a function of the :class:`Build` it
reads from and adds to, so a new stage (an evaluation before the release) is one
function and one line in that list. Every stage writes ``<out>/<stage>/`` and, when it
is done, a ``manifest.json`` keyed by a hash of its inputs, so a killed build started
again with the same arguments skips the finished stages and resumes the unfinished one
where it stopped (generation per round of each leaf, training per checkpoint). Every
artifact records the taxonomy commit.

Crash safety: the build holds a lock on its out folder (a second build there stops
with an error); files are written whole or not at all (:mod:`lab_ci.train.files`);
the release is swapped in by renames that keep a complete release on disk at every
instant, and a swap a kill interrupted is finished or undone when the next build
starts. Disk and path problems (a full disk, an unwritable ``--out``) are user errors
naming the path, and leave no temporary files.

The side effects (git, teacher, torch, files) are called from here; the logic they
feed (recipes, caching rules, mixing, scoring, the card) lives in the sibling modules
and is testable without them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from .. import __version__
from ..check.api import collect_leaves
from ..check.engine import check_leaves
from ..check.options import CheckOptions
from ..errors import LabCIError
from ..sdg import api as sdg_api
from ..sdg.pipeline import load_pipeline
from ..taxonomy.documents import DocumentFetcher, mirrors_from_env, parse_mirrors
from ..taxonomy.gitrepo import GitTaxonomy
from ..taxonomy.leaf import LeafFile
from ..teacher import TeacherError, load_teacher
from ..train.files import atomic_dir, os_error, recover_dir, writable_dir, write_text_atomic
from ..train.gguf_export import NotExportable, export_gguf
from .config import BuildConfig, defaults, effective_recipe, load_config
from .generate import GenerationCache, LeafData, cache_key, generate_leaf_cached, leaf_kind
from .mix import mix_phases
from .postcheck import postcheck, seed_questions
from .release import model_card, plot_losses
from .store import (
    StageManifest,
    file_lock,
    read_json,
    read_jsonl,
    sha256_file,
    stable_hash,
    write_json_atomic,
    write_jsonl_atomic,
)

log = logging.getLogger(__name__)


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

    @property
    def cache_root(self) -> Path:
        return self.cache_dir or (self.out / "cache")


@dataclass
class Build:
    """One build in progress: the request and what each stage has made of it so far."""

    req: BuildRequest
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)
    commit: str | None = None
    leaves: list[LeafFile] = field(default_factory=list)
    taxonomy: dict = field(default_factory=dict)  # commit, leaves with blob ids
    teacher: dict = field(default_factory=dict)  # id, name, spec
    generation: list[dict] = field(default_factory=list)  # per leaf
    pools: dict[str, list[dict]] = field(default_factory=dict)  # leaf kind -> samples
    datasets: list[dict] = field(default_factory=list)  # per phase
    train: dict = field(default_factory=dict)  # the train manifest
    postcheck: list[dict] = field(default_factory=list)
    release: dict | None = None  # release.json

    def summary(self) -> dict:
        """The release's provenance, or what the stages that ran have made."""
        if self.release is not None:
            return self.release
        parts = {
            "taxonomy": self.taxonomy,
            "generation": self.generation,
            "datasets": self.datasets,
            "train": self.train,
            "postcheck": self.postcheck,
        }
        return {k: v for k, v in parts.items() if v}


# ------------------------------------------------------------------------------ helpers
def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _bar(total: int | None, desc: str, enabled: bool, unit: str = "sample"):
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def resolve_commit(taxonomy: Path, commit: str | None) -> str | None:
    """The full commit id ``commit`` names in the taxonomy's repository (None: working tree)."""
    if commit is None:
        return None
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


def validate_tree(taxonomy: Path, commit: str | None) -> list[LeafFile]:
    """Every leaf of the tree at ``commit`` (or on disk), checked; raises on any invalid one."""
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
        from transformers import AutoConfig  # heavy: loaded when a build runs

        AutoConfig.from_pretrained(student)
    except (OSError, ValueError, KeyError) as e:
        raise LabCIError(f"student {str(student)!r}: transformers cannot read its config: {e}") from None
    return cfg


def student_fingerprint(student: Path) -> dict:
    """Names, sizes and mtimes of the student's files: cheap, and changes when it does."""
    return {
        "path": str(Path(student).resolve()),
        "files": {
            p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(Path(student).iterdir()) if p.is_file()
        },
    }


def open_teacher(spec: str, concurrency: int):
    try:
        return (
            load_teacher(spec, concurrency=concurrency)
            if spec.startswith(("http://", "https://"))
            else load_teacher(spec)
        )
    except TeacherError as e:
        raise LabCIError(f"teacher {spec!r}: {e}") from None


def leaf_pipeline(kind: str, config: BuildConfig) -> tuple[str, str]:
    """(pipeline for SDG, its name@version). The version is part of the leaf's cache
    key: a changed pipeline generates again."""
    chosen = config.pipelines.get(kind) or defaults()["generate"]["pipelines"][kind]
    pipe = load_pipeline(chosen)
    return chosen, f"{pipe.name}@{pipe.version}"


# ------------------------------------------------------------------------------ stages
def stage_validate(b: Build) -> None:
    req = b.req
    b.commit = resolve_commit(req.taxonomy, req.commit)
    b.leaves = validate_tree(req.taxonomy, b.commit)
    if not b.leaves:
        raise LabCIError(f"{req.taxonomy}: no qna.yaml leaves to build from")
    check_student(req.student)  # fail before the expensive stages
    b.taxonomy = {
        "commit": b.commit or "working tree",
        "leaves": [{"path": l.path, "blob": l.blob_id} for l in b.leaves],
    }
    write_json_atomic(req.out / "validate" / "manifest.json", {"complete": True, **b.taxonomy})


def stage_generate(b: Build) -> None:
    """Bring every leaf's cache entry up to its target; pool the samples by leaf kind."""
    req = b.req
    teacher = open_teacher(req.teacher, req.teacher_concurrency)
    b.teacher = {"id": teacher.info.id, "name": teacher.info.name, "spec": req.teacher}
    try:
        results, targets = _generate(req, b.leaves, teacher)
    finally:
        teacher.close()
    blobs = {l.path: l.blob_id for l in b.leaves}
    for data in results:  # leaf order (sorted paths): deterministic pools
        # each sample names the leaf version it came from: a changed leaf changes the data
        b.pools.setdefault(data.kind, []).extend(
            {**r, "metadata": {**r.get("metadata", {}), "leaf_blob": blobs[data.leaf]}} for r in data.samples
        )
        b.generation.append(
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
    StageManifest(req.out, "generate").finish(
        stable_hash(b.generation),
        leaves=b.generation,
        teacher=b.teacher,
        commit=b.taxonomy["commit"],
        generated_now=sum(r["generated_now"] for r in b.generation),
    )


def _generate(req: BuildRequest, leaves: list[LeafFile], teacher) -> tuple[list[LeafData], dict[str, int]]:
    cfg = req.config
    fetcher = DocumentFetcher(
        cache_dir=req.cache_root / "documents",
        allow_file=req.allow_file_documents,
        mirrors=req.document_mirrors or {},
    )
    gcache = GenerationCache(req.cache_root / "generated")
    kinds = {l.path: leaf_kind(l) for l in leaves}
    targets = {l.path: cfg.samples_per_leaf.get(kinds[l.path], 0) for l in leaves}
    todo = [l for l in leaves if targets[l.path] > 0]
    url_teacher = req.teacher.startswith(("http://", "https://"))
    workers = req.parallel_leaves or (4 if url_teacher else 1)

    with _bar(sum(targets.values()), "generate", req.progress) as bar:

        def one(leaf: LeafFile) -> LeafData:
            pipeline, version = leaf_pipeline(kinds[leaf.path], cfg)
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
                return list(pool.map(one, todo)), targets
        return [one(l) for l in todo], targets


def stage_mix(b: Build) -> None:
    req, cfg = b.req, b.req.config
    for i, m in enumerate(mix_phases(b.pools, cfg.phases, cfg.seed), 1):
        if not m.records:
            raise LabCIError(
                f"phase {m.name!r} has no data: the teacher's samples were all rejected "
                f"or the recipe selects no leaf kind present in the taxonomy"
            )
        path = req.out / "mix" / f"phase-{i}-{m.name}.jsonl"
        digest = write_jsonl_atomic(path, m.records)
        b.datasets.append({"phase": m.name, "file": str(path.relative_to(req.out)), "sha256": digest, "stats": m.stats})
    # the training run file, also for other nodes of a multi-node run (docs: builds, scale-out)
    run = train_run_config(req, b.datasets, req.out / "train")
    write_text_atomic(req.out / "mix" / "train.yaml", yaml.safe_dump(run, sort_keys=False))
    StageManifest(req.out, "mix").finish(stable_hash(b.datasets), datasets=b.datasets, train_run_file="mix/train.yaml")


def train_run_config(req: BuildRequest, datasets: list[dict], train_dir: Path) -> dict:
    """The run file of ``python -m lab_ci.train.run`` (the training entry point)."""
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


def stage_train(b: Build) -> None:
    """Phased training, in a child process or under torchrun; resumes from the
    checkpoints in ``<out>/train`` when the inputs are the ones they were made from."""
    req = b.req
    train_dir = req.out / "train"
    run = train_run_config(req, b.datasets, train_dir)
    inputs = stable_hash(  # no path of the out folder: a moved out folder resumes as well
        {
            "train": run["train"],
            "phases": [{"name": p["name"], "epochs": p["epochs"]} for p in run["phases"]],
            "datasets": [d["sha256"] for d in b.datasets],
            "student": student_fingerprint(req.student),
        }
    )
    manifest = StageManifest(req.out, "train")
    done = manifest.done(inputs)
    if done and Path(done["final_dir"]).is_dir():
        _say("train: already done for these inputs")
        b.train = done
        return
    started = read_json(train_dir / "inputs.json")
    if isinstance(started, dict) and started.get("inputs") != inputs:
        _say("train: data or options changed since the last run here; starting training afresh")
        shutil.rmtree(train_dir)
    write_json_atomic(train_dir / "inputs.json", {"inputs": inputs})
    run_yaml = train_dir / "run.yaml"
    write_text_atomic(run_yaml, yaml.safe_dump(run, sort_keys=False))

    # Training runs in its own process (torchrun's workers, or one plain Python process):
    # a fresh interpreter whose state does not depend on what this process did before
    # (llama.cpp generation), so a resumed build trains exactly like an uninterrupted one.
    result_json, error_file = train_dir / "result.json", train_dir / "error.txt"
    result_json.unlink(missing_ok=True)
    error_file.unlink(missing_ok=True)
    env = dict(os.environ)
    if req.nproc_per_node > 0 or req.torchrun_args:
        cmd = torchrun_command(run_yaml, result_json, req.nproc_per_node, req.torchrun_args)
        env.setdefault("OMP_NUM_THREADS", "1")
    else:
        cmd = [sys.executable, "-m", "lab_ci.train.run", "--config", str(run_yaml), "--result-json", str(result_json)]
    cmd += ["--error-file", str(error_file)]
    _say("train: " + shlex.join(cmd))
    rc = run_child(cmd, env)
    result = read_json(result_json)
    if rc == 2 and error_file.is_file():  # a user error (a full disk...): its own line
        raise LabCIError(error_file.read_text(encoding="utf-8").strip())
    if rc == 3:  # lab_ci.train.run: stopped early by max_steps
        raise LabCIError(
            "training stopped before the last phase finished (train.max_steps in the recipe?); "
            "remove max_steps and run the build again to resume"
        )
    if rc != 0 or not isinstance(result, dict):
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
    b.train = manifest.finish(
        inputs, final_dir=str(result["final_dir"]), phases=phases, config=run["train"], run_file=str(run_yaml)
    )


def stage_postcheck(b: Build) -> None:
    req = b.req
    if req.since:
        changed = {l.path for l in collect_leaves(req.taxonomy, base=req.since, head=b.commit)}
        leaves = [l for l in b.leaves if l.path in changed]
    else:
        leaves = b.leaves
    inputs = stable_hash(
        {
            "train": b.train["inputs"],
            "leaves": [l.blob_id for l in leaves],
            "max_new_tokens": req.config.postcheck_max_new_tokens,
        }
    )
    manifest = StageManifest(req.out, "postcheck")
    results = req.out / "postcheck" / "results.json"
    cached = read_json(results)
    if manifest.done(inputs) and isinstance(cached, list):
        b.postcheck = cached
        return
    total = 2 * sum(len(seed_questions(l)) for l in leaves)  # before and after
    with _bar(total, "postcheck", req.progress, unit="answer") as bar:
        b.postcheck = postcheck(
            req.student,
            Path(b.train["final_dir"]),
            leaves,
            req.config.postcheck_max_new_tokens,
            on_answer=lambda: bar.update(1),
        )
    write_json_atomic(results, b.postcheck)
    manifest.finish(inputs, leaves=[l.path for l in leaves], rows=len(b.postcheck))


def stage_release(b: Build) -> None:
    """Write the release in ``release.tmp/`` and swap it in (see :func:`replace_dir`)."""
    req, cfg = b.req, b.req.config
    commit = b.commit
    prov = {
        "name": f"lab-ci-{commit[:12] if commit else 'working-tree'}",
        "lab_ci_version": __version__,
        "taxonomy": b.taxonomy,
        "teacher": b.teacher,
        "student": {"base": str(req.student), **student_fingerprint(req.student)},
        "generation": b.generation,
        "datasets": b.datasets,
        "hyperparameters": {"recipe": cfg.to_dict(), "train": b.train["config"]},
    }
    phases = b.train["phases"]
    with atomic_dir(req.out / "release", failpoints="release") as tmp:
        shutil.copytree(b.train["final_dir"], tmp / "model")
        metrics = {p["name"]: list(read_jsonl(Path(p["dir"]) / "metrics.jsonl")) for p in phases}
        write_json_atomic(tmp / "metrics.json", metrics)
        loss_png = plot_losses(metrics, tmp / "loss.png")
        gguf_name = None
        if cfg.export_gguf:
            try:
                export_gguf(tmp / "model", tmp / "model.gguf", quant=cfg.gguf_quant, name=prov["name"])
                gguf_name = "model.gguf"
            except NotExportable as e:  # not a llama-architecture student: released without it
                log.warning("GGUF export skipped: %s", e)
                _say(f"release: GGUF export skipped: {e}")
        prov.update(
            training=[
                {
                    "phase": p["name"],
                    "steps": p["steps"],
                    "final_loss": p["final_loss"],
                    "first_loss": (metrics[p["name"]][0]["loss"] if metrics.get(p["name"]) else None),
                    "data": p.get("data", {}),
                }
                for p in phases
            ],
            postcheck=_postcheck_summary(b.postcheck),
            gguf=gguf_name,
        )
        (tmp / "README.md").write_text(
            model_card(prov, b.postcheck, "loss.png" if loss_png else None), encoding="utf-8"
        )
        # every file but release.json itself, with its sha256: what a reader checks
        prov["files"] = {str(f.relative_to(tmp)): sha256_file(f) for f in sorted(tmp.rglob("*")) if f.is_file()}
        prov["timings_s"] = {**b.timings, "total": round(time.monotonic() - b.started, 2)}
        write_json_atomic(tmp / "release.json", prov)
    b.release = prov
    _say(f"release written to {req.out / 'release'}")


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


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Build], None]
    summary: str


#: The stages in order; ``--until STAGE`` stops after one of them.
STAGES: tuple[Stage, ...] = (
    Stage("validate", stage_validate, "check every leaf of the tree at the commit, the student and the recipe"),
    Stage("generate", stage_generate, "synthetic data for every leaf, cached per leaf and round"),
    Stage("mix", stage_mix, "the phases' datasets from the recipe (knowledge, then skills with replay)"),
    Stage("train", stage_train, "phased training of the student, resumable per checkpoint"),
    Stage("postcheck", stage_postcheck, "the base and the trained model answer the changed leaves' seed questions"),
    Stage("release", stage_release, "model, GGUF export, loss plot and model card, swapped in whole"),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


# ------------------------------------------------------------------------------ the build
def print_recipe(path: Path | None) -> None:
    """``lab-ci build --print-recipe``: the effective recipe as YAML on stdout."""
    sys.stdout.write(yaml.safe_dump(effective_recipe(path), sort_keys=False, default_flow_style=None))


def build_from_args(args, torchrun_args: list[str]) -> dict:
    """``lab-ci build``'s options (checked by :mod:`lab_ci.builds.cli`) as a build, run."""
    return run_build(
        BuildRequest(
            taxonomy=args.taxonomy,
            out=args.out,
            config=load_config(args.config),
            teacher=args.teacher,
            student=Path(args.student),
            commit=args.commit,
            since=args.since,
            cache_dir=args.cache_dir,
            document_mirrors={**mirrors_from_env(), **parse_mirrors(args.document_mirror)},
            allow_file_documents=args.allow_file_documents,
            progress=not args.no_progress,
            teacher_concurrency=args.teacher_concurrency,
            parallel_leaves=args.parallel_leaves,
            nproc_per_node=args.nproc_per_node,
            torchrun_args=torchrun_args,
            until=args.until,
        )
    )


def run_build(req: BuildRequest) -> dict:
    """Run (or resume) every stage up to ``req.until``; returns the release provenance
    (or, when stopped early, what the stages that ran have made)."""
    if req.until is not None and req.until not in STAGE_NAMES:
        raise LabCIError(f"--until {req.until!r}: choose one of {', '.join(STAGE_NAMES)}")
    writable_dir(req.out, "--out")
    writable_dir(req.cache_root, "--cache-dir")
    with file_lock(req.out / ".lock", blocking=False) as locked:
        if not locked:
            raise LabCIError(f"--out {req.out}: another lab-ci build is running in this folder")
        b = Build(req)
        try:
            note = recover_dir(req.out / "release")  # a swap a kill interrupted: finish or undo it
            if note:
                _say(f"release: {note}")
            for stage in STAGES:
                _say(f"== {stage.name}")
                t0 = time.monotonic()
                stage.run(b)
                b.timings[stage.name] = round(time.monotonic() - t0, 2)
                if stage.name == req.until:
                    break
        except OSError as e:  # a disk or path problem the helpers did not name: still the user's
            raise LabCIError(with_hint(str(os_error(e)))) from None
        except LabCIError as e:
            hinted = with_hint(str(e))
            if hinted != str(e):
                raise LabCIError(hinted) from None
            raise
        return b.summary()


#: what to do about a write that failed for want of room, by the errno the message names
_HINTS = {
    "(ENOSPC)": "free some space and run the build again: it resumes where it stopped",
    "(EDQUOT)": "free some space or raise the quota, and run the build again: it resumes where it stopped",
    "(EFBIG)": "a file size limit (ulimit -f, or the file system's) stopped it; raise it and run the build again",
}


def with_hint(message: str) -> str:
    """``message``, and what to do when it reports a full disk or a file size limit."""
    for code, hint in _HINTS.items():
        if message.endswith(code):
            return f"{message}; {hint}"
    return message
