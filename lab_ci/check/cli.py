"""``lab-ci check``: validate taxonomy leaves from a working copy, a revision, or a change.

    lab-ci check [PATH...] [--taxonomy DIR] [--base REV [--head REV]]
                 [--schema-version latest|declared|N] [--format FORMAT] [--jobs N]
                 [--strict] [--no-cache] [--output FILE]
                 [--fix | --diff] [--unsafe-fixes]

Exit codes: 0 every file valid (warnings allowed), 1 some file invalid (with
``--diff``: some file would change), 2 usage or internal error. Only argument parsing
happens at import; the checker loads in ``run``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

FORMAT_NAMES = ("text", "json", "github", "sarif", "markdown")


def _schema_version(value: str) -> str | int:
    if value in ("latest", "declared"):
        return value
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"expected latest, declared or a number, not {value!r}")


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 (one per CPU) or more")
    return n or (os.cpu_count() or 1)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "check",
        help="validate qna.yaml leaves (schema versions 1-3, yamllint, taxonomy rules)",
        description=(
            "Validate taxonomy leaves (qna.yaml) straight from git objects or from disk. "
            "With no PATH and no --base, every qna.yaml under the taxonomy is checked. "
            "With --base, only the leaves changed since the merge base (like a pull request)."
        ),
        epilog="exit codes: 0 all valid (warnings allowed), 1 some file invalid, 2 usage or internal error",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="qna.yaml or attribution.txt files or folders to check (relative to the current folder or the taxonomy)",
    )
    p.add_argument(
        "--taxonomy",
        metavar="DIR",
        default=".",
        help="the taxonomy folder (default: current folder); may be a subfolder of a git repository or a bare repository",
    )
    p.add_argument("--base", metavar="REV", help="check only leaves changed between merge-base(BASE, HEAD) and HEAD")
    p.add_argument(
        "--head",
        metavar="REV",
        help="the revision to check (default: the working tree, uncommitted and untracked files included; with no --base: the whole tree at REV)",
    )
    p.add_argument(
        "--schema-version",
        type=_schema_version,
        default="latest",
        metavar="latest|declared|N",
        help="schema to validate against: latest (default), the version each file declares, or 1, 2, 3",
    )
    p.add_argument("--format", choices=FORMAT_NAMES, default="text", help="output format (default: text)")
    p.add_argument(
        "--jobs", "-j", type=_jobs, default=1, metavar="N", help="check N files in parallel (0: one per CPU; default 1)"
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of standard output")
    fixing = p.add_mutually_exclusive_group()
    fixing.add_argument(
        "--fix",
        action="store_true",
        help="rewrite what is safe to rewrite (trailing spaces, final newline, blank lines, indentation, spacing, "
        "line breaks) in the files on disk, only where the data stays the same; then check",
    )
    fixing.add_argument(
        "--diff",
        action="store_true",
        help="show what --fix would change, as a unified diff, without writing (exit 1 when something would change)",
    )
    p.add_argument(
        "--unsafe-fixes",
        action="store_true",
        help="with --fix or --diff: also remove spaces at line ends inside | and > blocks (they are part of the text)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import LabCIError
    from .api import check_taxonomy, display_root
    from .formats import render
    from .options import CheckOptions

    for value in (args.taxonomy, args.output or "", *args.paths):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise LabCIError(f"path {value!r} is not valid UTF-8") from None
    options = CheckOptions(schema_version=args.schema_version, strict=args.strict)
    if args.unsafe_fixes and not (args.fix or args.diff):
        raise LabCIError("--unsafe-fixes goes with --fix or --diff")
    if args.fix or args.diff:
        changed = _fix(args, options)
        if args.diff:
            return 1 if changed else 0
    report = check_taxonomy(
        args.taxonomy,
        paths=args.paths or None,
        base=args.base,
        head=args.head,
        options=options,
        jobs=args.jobs,
        use_cache=not args.no_cache,
    )
    text = render(args.format, report, root_display=display_root(args.taxonomy, args.format))
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8", errors="backslashreplace")
        except OSError as e:
            raise LabCIError(f"cannot write {args.output!r}: {e.strerror}") from None
    else:
        try:
            sys.stdout.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
        sys.stdout.write(text)
        sys.stdout.flush()
    return report.exit_code


def _fix(args: argparse.Namespace, options) -> int:
    """``--fix`` (write) or ``--diff`` (print): the files on disk that a fix changes.
    Returns how many files changed (or would)."""
    from ..errors import LabCIError
    from ..taxonomy.collect import collect_leaves
    from .fix import fix_text, unified_diff

    if args.head:
        raise LabCIError("--fix and --diff work on the files on disk: leave out --head")
    root = Path(args.taxonomy)
    leaves = collect_leaves(
        root,
        paths=args.paths or None,
        base=args.base,
        max_bytes=options.max_file_bytes,
        folders=options.taxonomy_folders,
    )
    files = problems = 0
    notes = []
    for leaf in leaves:
        if leaf.change == "deleted" or leaf.kind != "file" or leaf.data is None:
            continue
        result = fix_text(leaf.data, options.read_limits(), unsafe=args.unsafe_fixes)
        if not result.changed:
            continue
        files += 1
        problems += sum(result.fixed.values())
        if args.diff:
            diff = unified_diff(leaf.path, _text(leaf.data), result.text)
            if result.line_breaks_changed:
                diff = f"# {leaf.path}: line breaks CRLF -> LF\n" + diff
            sys.stdout.write(diff)
        else:
            _write(root / leaf.path, result.text)
        fixed = ", ".join(f"{rule} {n}" for rule, n in sorted(result.fixed.items()))
        notes.append(f"{leaf.path}: {fixed or 'line breaks'}")
    verb = "would fix" if args.diff else "fixed"
    for note in notes:
        print(f"lab-ci: {verb} {note}", file=sys.stderr)
    print(
        f"lab-ci: {verb} {problems} problem{'s' if problems != 1 else ''} in {files} file{'s' if files != 1 else ''}.",
        file=sys.stderr,
    )
    sys.stdout.flush()
    return files


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def _write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permissions."""
    import tempfile

    from ..errors import LabCIError

    try:
        mode = path.stat().st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(prefix=".lab-ci-fix-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise LabCIError(f"cannot write {str(path)!r}: {e.strerror}") from None
