"""The ``lab-ci`` command line.

Each stage owns its sub-command in its own ``cli`` module, which declares its options
with argparse and imports anything heavy (torch, llama.cpp, the web stack) only when
the sub-command runs, so ``lab-ci check`` starts fast on a light install.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import __version__
from .errors import LabCIError

#: sub-command modules, each with ``add_parser(subparsers)`` that sets ``func``.
COMMAND_MODULES = (
    "lab_ci.check.cli",
    "lab_ci.preview.cli",
    "lab_ci.builds.cli",
    "lab_ci.eval.cli",
    "lab_ci.bot.cli",
)


#: top-level module -> the extra that installs it, for a clear message on a light install
EXTRA_FOR_MODULE = {
    "llama_cpp": "preview",
    "gguf": "preview",
    "httpx": "preview",
    "tenacity": "preview",
    "jinja2": "preview",
    "tqdm": "preview",
    "torch": "train",
    "transformers": "train",
    "safetensors": "train",
    "tokenizers": "train",
    "matplotlib": "train",
    "numpy": "train",
    "uvicorn": "bot",
    "starlette": "bot",
    "github": "bot",
    "jwt": "bot",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab-ci",
        description="Validate, preview and build InstructLab-style taxonomies from git.",
    )
    parser.add_argument("--version", action="version", version=f"lab-ci {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a stage not installed in this build
            if e.name == name:
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except LabCIError as e:
        print(f"lab-ci: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("lab-ci: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # an internal error: one line, exit 2; full trace on request
        extra = EXTRA_FOR_MODULE.get((getattr(e, "name", None) or "").split(".")[0])
        if isinstance(e, ModuleNotFoundError) and extra:
            print(
                f"lab-ci: error: lab-ci {args.command} needs the {extra!r} extra: "
                f"pip install 'lab-ci[{extra}]' (no module named {e.name!r})",
                file=sys.stderr,
            )
            return 2
        if os.environ.get("LAB_CI_DEBUG"):
            raise
        print(f"lab-ci: internal error: {type(e).__name__}: {e} (set LAB_CI_DEBUG=1 for a traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
