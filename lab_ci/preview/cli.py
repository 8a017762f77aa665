"""``lab-ci preview``: a small synthetic-data preview of the changed leaves, as the
Markdown comment the bot posts (or JSON).

Exit codes: 0 every changed leaf was previewed (or is empty or deleted); 1 a leaf was
invalid or its generation failed (the output says why); 2 usage error (checked before
generating, e.g. an output file in a missing folder) or abnormal end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import LabCIError
from ..taxonomy.docargs import add_document_options, fetcher_from_args
from ..teacher import default_teacher_spec


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "preview",
        help="generate a few synthetic samples per changed leaf and render the preview comment",
        description="Run the LAB generation pipelines on a small sample of every changed, valid "
        "leaf with a (quantized) teacher and render the Markdown comment the bot posts.",
    )
    p.add_argument("--taxonomy", default=".", metavar="DIR", help="taxonomy root (default: current folder)")
    p.add_argument("--base", metavar="REV", help="preview only leaves changed since the merge base with REV")
    p.add_argument("--head", metavar="REV", help="revision to preview (default: the working tree)")
    p.add_argument(
        "--teacher",
        metavar="GGUF|URL",
        help="teacher: a .gguf file or an OpenAI-compatible http(s):// URL "
        "(default: $LAB_CI_TEACHER, else .cache/models/teacher.gguf)",
    )
    p.add_argument("--samples", type=int, default=3, metavar="N", help="candidates per leaf (default 3)")
    p.add_argument(
        "--max-tokens", type=int, metavar="N", help="cap every generation step at N tokens (quicker, rougher previews)"
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown", help="output format")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument(
        "--json-output",
        metavar="FILE",
        help="also write the whole preview as JSON to FILE; a Markdown comment shortened to fit "
        "GitHub's limit names it",
    )
    p.add_argument(
        "--full-url",
        metavar="URL",
        help="https:// address where readers find the whole preview (e.g. the CI run's artifacts); "
        "a shortened comment links to it",
    )
    p.add_argument(
        "--precheck-model",
        metavar="GGUF|URL",
        help="answer the seed questions with this (current) model and compare with the seeds' answers",
    )
    add_document_options(p, cache=False)
    p.add_argument(
        "--pipeline-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="look for pipeline files (NAME.yaml, prompts/) here before the built-in ones (repeatable)",
    )
    p.add_argument(
        "--document-cache", metavar="DIR", help="document cache folder (default: $XDG_CACHE_HOME/lab-ci/documents)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    # lab_ci.cli imports every sub-command module to build its parser, so the preview
    # stage (sdg, check, teacher: ~0.12 s measured) is imported when the command runs,
    # not on every `lab-ci check`
    from .api import run_preview
    from .render import render_markdown

    if args.samples < 1 or args.samples > 1000:
        raise LabCIError("--samples must be between 1 and 1000")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise LabCIError("--max-tokens must be at least 1")
    for d in args.pipeline_dir:
        if not os.path.isdir(d):
            raise LabCIError(f"--pipeline-dir {d}: no such folder")
    if args.full_url and not args.full_url.startswith("https://"):
        raise LabCIError(f"--full-url {args.full_url}: must be an https:// address")
    # before generating: a preview takes minutes, and its result must not be lost for a typo
    for option, path in (("--output", args.output), ("--json-output", args.json_output)):
        if path:
            check_output_path(option, path)
    fetcher = fetcher_from_args(args)
    teacher = args.teacher or default_teacher_spec()

    bar = None
    progress = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="lab-ci preview", unit="step", file=sys.stderr, leave=False)

        def progress(what: str) -> None:
            bar.set_postfix_str(what[-60:])
            bar.update(1)

    try:
        result = run_preview(
            args.taxonomy,
            base=args.base,
            head=args.head,
            teacher=teacher,
            samples=args.samples,
            seed=args.seed,
            precheck_model=args.precheck_model,
            documents=fetcher,
            pipeline_dirs=args.pipeline_dir or None,
            progress=progress,
            max_tokens=args.max_tokens,
            # the file's name only: the comment is public, the folder is the machine's
            full_output=args.full_url or (os.path.basename(args.json_output) if args.json_output else None),
        )
    finally:
        if bar is not None:
            bar.close()
    data = ""
    if args.json_output or args.format == "json":
        data = json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if args.json_output:
        write_file("--json-output", args.json_output, data)
    text = data if args.format == "json" else render_markdown(result)
    if args.output:
        write_file("--output", args.output, text)
    else:
        sys.stdout.write(text)
    return result.exit_code


def check_output_path(option: str, path: str) -> None:
    """A usage error (exit 2) naming the path when ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise LabCIError(f"{option} {path}: is a folder, not a file")
    if not os.path.isdir(folder):
        raise LabCIError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LabCIError(f"{option} {path}: cannot write in the folder {folder}")


def write_file(option: str, path: str, text: str) -> None:
    """Write atomically (a temporary file renamed over ``path``); errors name the path."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise LabCIError(f"{option} {path}: cannot write: {e.strerror or e}") from None
