"""``lab-ci eval``: compare a candidate model with a baseline on a taxonomy change.

Exit codes: 0 every gate passed (or none is set); 1 a gate failed (the reasons are
printed and in ``results.json``); 2 usage error or abnormal end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..taxonomy.docargs import add_document_options, fetcher_from_args
from ..teacher import default_teacher_spec


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="compare a candidate model with a baseline on the changed leaves (MMLU- and MT-Bench-Branch)",
        description="Evaluate a candidate model against a baseline on the leaves a change touched: "
        "knowledge leaves by multiple-choice questions the teacher writes from their documents "
        "(log-likelihood scoring), skill leaves by the teacher judging both models' answers to "
        "the seed questions against the contributors' answers; unchanged leaves sampled as a "
        "regression guard. Writes `results.json`, `report.md` and `deltas.png` to --out.",
    )
    p.add_argument("--taxonomy", default=".", metavar="DIR", help="taxonomy root (default: current folder)")
    p.add_argument("--base", metavar="REV", help="evaluate the leaves changed since the merge base with REV")
    p.add_argument("--head", metavar="REV", help="revision to evaluate (default: the working tree)")
    p.add_argument("--candidate", required=True, metavar="DIR", help="the new model: a Hugging Face model folder")
    p.add_argument(
        "--baseline", required=True, metavar="DIR", help="the model to beat (the last release, or the base student)"
    )
    p.add_argument(
        "--teacher",
        metavar="GGUF|URL",
        help="writes the multiple-choice questions: a .gguf file or an OpenAI-compatible http(s):// URL "
        "(default: $LAB_CI_TEACHER, else .cache/models/teacher.gguf)",
    )
    p.add_argument("--judge", metavar="GGUF|URL", help="rates the skill answers (default: the teacher)")
    p.add_argument("--out", default="eval", metavar="DIR", help="output folder (default: eval)")
    p.add_argument("--cache-dir", metavar="DIR", help="question, score and judgment cache (default: OUT/cache)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument(
        "--questions",
        type=int,
        default=20,
        metavar="N",
        help="teacher-written multiple-choice candidates per knowledge leaf (default 20)",
    )
    p.add_argument(
        "--mcq-sources",
        default="seeds,teacher",
        metavar="LIST",
        help="where knowledge questions come from: seeds (the contributor's Q/As), teacher "
        "(written from the documents), or both (default seeds,teacher)",
    )
    p.add_argument(
        "--guard-skills",
        type=int,
        default=4,
        metavar="N",
        help="unchanged skill leaves in the regression guard (default 4)",
    )
    p.add_argument(
        "--guard-knowledge",
        type=int,
        default=0,
        metavar="N",
        help="unchanged knowledge leaves in the regression guard (default 0)",
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=256, metavar="N", help="longest answer to a seed question (default 256)"
    )
    p.add_argument(
        "--gates", metavar="FILE", help="gates from a YAML file (its eval.gates section, or the mapping itself)"
    )
    p.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one gate, e.g. knowledge.max_leaf_drop=0.1 or rule=lenient (repeatable; over --gates)",
    )
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the models run (default auto)"
    )
    p.add_argument(
        "--dtype", default="auto", choices=("auto", "fp32", "bf16", "fp16"), help="model dtype (default auto)"
    )
    p.add_argument(
        "--max-batch-tokens",
        type=int,
        default=8192,
        metavar="N",
        help="padded tokens per forward pass when scoring (default 8192)",
    )
    p.add_argument("--resamples", type=int, default=2000, metavar="N", help="bootstrap resamples (default 2000)")
    p.add_argument("--max-leaves", type=int, default=200, metavar="N", help="most leaves to evaluate (default 200)")
    add_document_options(p)
    p.add_argument(
        "--pipeline-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="look for mmlu_branch.yaml and the judge prompts here first (repeatable)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(func=run)
    return p


def load_gates(path: str | None, items: list[str]):
    """Gates from ``--gates FILE`` (an ``eval.gates`` section or the bare mapping) and
    ``--gate KEY=VALUE`` items; errors name the file and key."""
    import yaml

    from ..errors import LabCIError
    from .gates import GateConfigError, Gates

    gates = Gates()
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise LabCIError(f"--gates {path}: cannot read: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise LabCIError(f"--gates {path}: invalid YAML: {e}") from None
        prefix = ""
        if isinstance(data, dict) and isinstance(data.get("eval"), dict):
            data, prefix = data["eval"].get("gates"), "eval.gates."
        try:
            gates = Gates.from_dict(data, prefix)
        except GateConfigError as e:
            raise LabCIError(f"{path}: {e}") from None
    try:
        return Gates.from_assignments(items, gates) if items else gates
    except GateConfigError as e:
        raise LabCIError(f"--gate {e}") from None


def run(args) -> int:
    from ..errors import LabCIError
    from .runner import EvalOptions, run_eval

    for name, low in (("questions", 1), ("guard_skills", 0), ("guard_knowledge", 0), ("max_new_tokens", 1)):
        if getattr(args, name) < low:
            raise LabCIError(f"--{name.replace('_', '-')} must be at least {low}")
    if not 1 <= args.questions <= 200:
        raise LabCIError("--questions must be from 1 to 200")
    if args.resamples < 100:
        raise LabCIError("--resamples must be at least 100")
    if args.max_batch_tokens < 1 or args.max_leaves < 1:
        raise LabCIError("--max-batch-tokens and --max-leaves must be at least 1")
    for d in args.pipeline_dir:
        if not os.path.isdir(d):
            raise LabCIError(f"--pipeline-dir {d}: no such folder")
    gates = load_gates(args.gates, args.gate)
    from .runner import MCQ_SOURCES

    sources = tuple(dict.fromkeys(x.strip() for x in args.mcq_sources.split(",") if x.strip()))
    if not sources or set(sources) - set(MCQ_SOURCES):
        raise LabCIError(f"--mcq-sources {args.mcq_sources!r}: a comma-separated list of {', '.join(MCQ_SOURCES)}")
    teacher = args.teacher or default_teacher_spec()
    fetcher = fetcher_from_args(args)

    def progress(what: str) -> None:
        if not args.quiet:
            print(f"eval: {what}", file=sys.stderr, flush=True)

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    results = run_eval(
        Path(args.taxonomy),
        EvalOptions(
            candidate=Path(args.candidate),
            baseline=Path(args.baseline),
            teacher=teacher,
            judge=args.judge,
            out=Path(args.out),
            cache_dir=Path(args.cache_dir) if args.cache_dir else None,
            seed=args.seed,
            mcq_per_leaf=args.questions,
            mcq_sources=sources,
            guard_skills=args.guard_skills,
            guard_knowledge=args.guard_knowledge,
            max_new_tokens=args.max_new_tokens,
            documents=fetcher,
            pipeline_dirs=args.pipeline_dir,
            device=args.device,
            dtype=args.dtype,
            max_batch_tokens=args.max_batch_tokens,
            gates=gates,
            resamples=args.resamples,
            max_leaves=args.max_leaves,
            progress=progress,
        ),
        base=args.base,
        head=args.head,
    )
    print(summary_text(results, Path(args.out)))
    return 0 if results["gates"]["passed"] else 1


def summary_text(results: dict, out: Path) -> str:
    """A few lines for the terminal: per metric the changed/guard deltas, then the gates."""
    lines = []
    for metric, unit in (("knowledge", "accuracy"), ("skills", "judge score")):
        sec = results.get(metric) or {}
        not_done = [r for r in sec.get("leaves") or [] if r.get("status") != "evaluated"]
        if not_done:
            reasons = sorted({r.get("reason", "") for r in not_done})
            lines.append(f"{metric}: {len(not_done)} leaves not evaluated ({'; '.join(reasons)})")
        for role in ("changed", "guard"):
            g = sec.get(role) or {}
            if g.get("leaves"):
                ci = g.get("ci")
                lines.append(
                    f"{metric} ({role}, {g['leaves']} leaves, {g['n']} questions): {unit} "
                    f"{g['baseline']:.2f} -> {g['candidate']:.2f}, delta {g['delta']:+.2f}"
                    + (f" [95% {ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
                )
    g = results["gates"]
    if not g["active"]:
        lines.append("gates: none set")
    elif g["passed"]:
        lines.append(f"gates: passed ({len(g['checks'])} checks)")
    else:
        lines.append("gates: FAILED")
        lines += [f"  {f['message']}" for f in g["failures"]]
    lines.append(f"results: {out / 'results.json'}, report: {out / 'report.md'}")
    return "\n".join(lines)
