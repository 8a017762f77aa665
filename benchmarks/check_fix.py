"""What ``lab-ci check --fix`` repairs on the real corpus, and that it never changes data.

For every qna.yaml contributed by the corpus's ``pr/N`` branches (about 1950 files),
with safe fixes only (``--fix``) and with unsafe ones (``--fix --unsafe-fixes``):

- runs :func:`lab_ci.check.fix.fix_text` (what ``--fix`` writes);
- data check, independent of the fixer's own: PyYAML's pure-Python ``safe_load`` (the
  reference's reader) of the file before and after must give identical data, for
  every file the fixer changed (goal: 0 files changed; with unsafe fixes, 0 files
  changed in anything but white space at the ends of lines);
- the files that are invalid only for lint reasons (every error is a yamllint
  problem; latest schema, as the reference checks): the share that the fix makes
  valid (goal: at least 90%);
- problems fixed by rule, what was left unfixed and why, and the time taken.

Usage: .venv/bin/python benchmarks/check_fix.py [--bundle PATH]
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "check"))

from checkcorpus_util import corpus_files  # noqa: E402

from lab_ci.check import CheckOptions, check_leaf  # noqa: E402
from lab_ci.check.fix import fix_text, without_line_end_space  # noqa: E402
from lab_ci.taxonomy.leaf import LeafFile  # noqa: E402

DEFAULT_BUNDLE = Path(os.environ.get("LAB_CI_SHARED", REPO.parent / "shared")) / "corpus" / "taxonomy-history.bundle"


def identical(a, b) -> bool:
    """Same types and values all the way down (True is not 1; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(map(repr, a)) == list(map(repr, b)) and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    return a == b


def measure(files, unsafe: bool) -> bool:
    options = CheckOptions()
    changed = data_changed = lint_only = lint_only_fixed = not_tried = 0
    lint_any = lint_any_fixed = 0
    fixed: collections.Counter = collections.Counter()
    unfixed: collections.Counter = collections.Counter()
    still: collections.Counter = collections.Counter()
    t0 = time.perf_counter()
    for f in files:
        leaf = LeafFile(path=f.path, data=f.data, attribution=f.attribution, attribution_kind="file")
        before = check_leaf(leaf, options)
        errors = [d for d in before.diagnostics if d.severity == "error"]
        only_lint = bool(errors) and all(d.source == "yamllint" for d in errors)
        has_lint_error = any(d.source == "yamllint" for d in errors)
        result = fix_text(f.data, unsafe=unsafe)
        not_tried += bool(result.error)
        fixed.update(result.fixed)
        unfixed.update(rule for _, rule, _ in result.unfixed)
        if result.changed:
            changed += 1
            old = yaml.safe_load(f.data.decode("utf-8"))
            new = yaml.safe_load(result.text)
            if unsafe:
                old, new = without_line_end_space(old), without_line_end_space(new)
            if not identical(old, new):
                data_changed += 1
                print(f"DATA CHANGED: pr/{f.pr}:{f.path}")
        if has_lint_error:
            after = check_leaf(
                LeafFile(path=f.path, data=result.text.encode(), attribution=f.attribution, attribution_kind="file"),
                options,
            )
            lint_any += 1
            lint_any_fixed += not any(d.source == "yamllint" and d.severity == "error" for d in after.diagnostics)
        if only_lint:
            lint_only += 1
            if after.valid:
                lint_only_fixed += 1
            else:
                still.update(d.rule for d in after.diagnostics if d.severity == "error")
    secs = time.perf_counter() - t0
    what = "--fix --unsafe-fixes" if unsafe else "--fix"
    print(f"\n{what}: {len(files)} contributed qna.yaml files, fixed and checked in {secs:.1f} s")
    print(
        f"  files changed: {changed}; files whose data changed"
        f"{' in more than white space at line ends' if unsafe else ''}: {data_changed} (goal 0)"
    )
    print(f"  files not tried (they do not parse, or are not UTF-8): {not_tried}")
    share = lint_only_fixed / lint_only if lint_only else 1.0
    print(f"  files invalid only for lint reasons: {lint_only}; valid after the fix: {lint_only_fixed} ({share:.1%})")
    print(
        f"  files with yamllint errors (and maybe others): {lint_any}; without yamllint errors after the fix: "
        f"{lint_any_fixed} ({lint_any_fixed / max(lint_any, 1):.1%})"
    )
    print("  problems fixed, by rule: " + ", ".join(f"{r} {n}" for r, n in fixed.most_common()))
    print("  left unfixed, by rule: " + (", ".join(f"{r} {n}" for r, n in unfixed.most_common()) or "none"))
    if still:
        print("  errors left in lint-only files: " + ", ".join(f"{r} {n}" for r, n in still.most_common()))
    return data_changed == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-ci-fix-") as tmp:
        mirror = Path(tmp) / "corpus.git"
        subprocess.run(["git", "clone", "--quiet", "--mirror", str(args.bundle), str(mirror)], check=True)
        files = corpus_files(mirror)
    ok = measure(files, unsafe=False)
    ok = measure(files, unsafe=True) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
