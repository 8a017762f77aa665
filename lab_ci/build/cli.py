"""``lab-ci build``: an approved release build from the taxonomy at one commit."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


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
    p.add_argument("--teacher", default=os.environ.get("LAB_CI_TEACHER"),
                   help="teacher: a .gguf file or an OpenAI-compatible base URL (env LAB_CI_TEACHER)")
    p.add_argument("--student", type=Path, default=os.environ.get("LAB_CI_STUDENT"),
                   help="student: a Hugging Face causal LM folder (safetensors) (env LAB_CI_STUDENT)")
    p.add_argument("--out", type=Path, default=Path("build-out"), help="output folder (default: build-out)")
    p.add_argument("--config", type=Path, help="build recipe YAML (overrides the packaged default recipe)")
    p.add_argument("--cache-dir", type=Path, help="generation/document cache (default: <out>/cache)")
    p.add_argument("--document-mirror", action="append", default=[], metavar="URL=PATH",
                   help="fetch a knowledge document repository from a local mirror (repeatable)")
    p.add_argument("--allow-file-documents", action="store_true", help="allow file:// document repositories")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import LabCIError
    from .config import load_config
    from .runner import BuildRequest, run_build

    if not args.teacher:
        raise LabCIError("no teacher: pass --teacher FILE.gguf|URL or set LAB_CI_TEACHER")
    if not args.student:
        raise LabCIError("no student: pass --student MODEL_DIR or set LAB_CI_STUDENT")
    if not (Path(args.student) / "config.json").is_file():
        raise LabCIError(f"{args.student}: not a Hugging Face model folder (no config.json)")
    mirrors = {}
    for m in args.document_mirror:
        url, sep, path = m.partition("=")
        if not sep or not url or not path:
            raise LabCIError(f"--document-mirror {m!r}: expected URL=PATH")
        mirrors[url] = path
    req = BuildRequest(
        taxonomy=args.taxonomy,
        out=args.out,
        config=load_config(args.config),
        teacher=args.teacher,
        student=Path(args.student),
        commit=args.commit,
        since=args.since,
        cache_dir=args.cache_dir,
        document_mirrors=mirrors,
        allow_file_documents=args.allow_file_documents,
        progress=not args.no_progress,
    )
    run_build(req)
    return 0
