"""``lab-ci build``: an approved release build from the taxonomy at one commit."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from ..errors import LabCIError
from ..teacher import spec_from_env

#: kept in sync with lab_ci.builds.runner.STAGES (not imported: the CLI loads light)
STAGES = ("validate", "generate", "mix", "train", "postcheck", "release")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="validate, generate, mix, train (phased LAB) and write a release",
        description="Validate the whole tree at a commit, generate data for every leaf (cached per "
        "leaf, resumable), mix the phases, train the student (knowledge, then skills with "
        "replay), postcheck, and write a release with provenance. Run it again after a kill: "
        "it resumes where it stopped.",
    )
    p.add_argument("--taxonomy", type=Path, default=Path("."), help="taxonomy folder or git repository (default: .)")
    p.add_argument("--commit", help="build the tree at this commit (default: the working tree)")
    p.add_argument("--since", metavar="REV", help="postcheck only the leaves changed since REV (e.g. the last release)")
    p.add_argument(
        "--teacher",
        default=spec_from_env(),
        help="teacher: a .gguf file or an OpenAI-compatible base URL (env LAB_CI_TEACHER)",
    )
    p.add_argument(
        "--student",
        type=Path,
        default=os.environ.get("LAB_CI_STUDENT"),
        help="student: a Hugging Face causal LM folder (safetensors) (env LAB_CI_STUDENT)",
    )
    p.add_argument("--out", type=Path, default=Path("build-out"), help="output folder (default: build-out)")
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="build recipe YAML: the keys it sets replace the defaults' (see --print-recipe)",
    )
    p.add_argument("--cache-dir", type=Path, help="generation/document cache (default: <out>/cache)")
    p.add_argument(
        "--document-mirror",
        action="append",
        default=[],
        metavar="URL=PATH",
        help="fetch a knowledge document repository from a local mirror (repeatable)",
    )
    p.add_argument("--allow-file-documents", action="store_true", help="allow file:// document repositories")
    p.add_argument(
        "--teacher-concurrency",
        type=int,
        default=8,
        metavar="N",
        help="concurrent requests to an OpenAI-compatible teacher (default: 8)",
    )
    p.add_argument(
        "--parallel-leaves",
        type=int,
        metavar="N",
        help="leaves generated at the same time (default: 4 for a URL teacher, 1 for a GGUF teacher)",
    )
    p.add_argument(
        "--nproc-per-node",
        type=int,
        default=0,
        metavar="N",
        help="train under torchrun with N processes on this node (gloo on CPU, nccl on GPU); "
        "default 0: train in this process",
    )
    p.add_argument(
        "--torchrun-args",
        default="",
        metavar="ARGS",
        help="extra torchrun options, one shell-quoted string, e.g. "
        '"--nnodes=2 --node-rank=0 --rdzv-backend=c10d --rdzv-endpoint=node0:29500" (implies torchrun)',
    )
    p.add_argument(
        "--until",
        choices=STAGES,
        metavar="STAGE",
        help=f"stop after this stage ({', '.join(STAGES)}); run again without it to go on",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--print-recipe",
        action="store_true",
        help="print the recipe the build would use (the defaults updated by --config) as YAML, and exit",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the options that need nothing loaded, then run the build."""
    if args.print_recipe:
        from .runner import print_recipe  # the build itself: see the module docstring

        print_recipe(args.config)
        return 0
    if not args.teacher:
        raise LabCIError("no teacher: pass --teacher FILE.gguf|URL or set LAB_CI_TEACHER")
    if not args.student:
        raise LabCIError("no student: pass --student MODEL_DIR or set LAB_CI_STUDENT")
    if not (Path(args.student) / "config.json").is_file():
        raise LabCIError(f"student {str(args.student)!r}: not a Hugging Face model folder (no config.json)")
    for name in ("teacher_concurrency", "parallel_leaves", "nproc_per_node"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "nproc_per_node" else 1):
            raise LabCIError(f"--{name.replace('_', '-')} must be >= {0 if name == 'nproc_per_node' else 1}")
    try:
        torchrun_args = shlex.split(args.torchrun_args)
    except ValueError as e:
        raise LabCIError(f"--torchrun-args: {e}") from None
    from .runner import build_from_args  # the build itself: see the module docstring

    build_from_args(args, torchrun_args)
    return 0
