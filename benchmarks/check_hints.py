"""How well ``lab-ci check`` explains the real mistakes of the community taxonomy.

Checks every qna.yaml contributed by the corpus's ``pr/N`` branches (about 1950 files,
``tests/check/checkcorpus_util.py``) and prints:

- the share of diagnostics that carry a hint, per source (goal: 100% of schema and
  syntax diagnostics), and how many related locations syntax errors carry;
- how many reference errors the ``schema/old-format`` summaries stand for;
- the 20 most common messages (numbers and quoted values folded into ``N`` and ``…``),
  with one real example each, so a reader can judge the words.

Usage: .venv/bin/python benchmarks/check_hints.py [--bundle PATH] [--schema-version latest|declared]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "check"))

from checkcorpus_util import corpus_files  # noqa: E402

from lab_ci.check import CheckOptions, check_leaf  # noqa: E402
from lab_ci.taxonomy.leaf import LeafFile  # noqa: E402

DEFAULT_BUNDLE = Path(os.environ.get("LAB_CI_SHARED", REPO.parent / "shared")) / "corpus" / "taxonomy-history.bundle"
_VARIABLE = re.compile(r"`[^`]*`|\d+")


def shape(message: str) -> str:
    """A message with its numbers and quoted names folded, to count kinds of message."""
    return _VARIABLE.sub(lambda m: "`…`" if m.group(0).startswith("`") else "N", message)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--schema-version", default="latest")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-ci-hints-") as tmp:
        mirror = Path(tmp) / "corpus.git"
        subprocess.run(["git", "clone", "--quiet", "--mirror", str(args.bundle), str(mirror)], check=True)
        files = corpus_files(mirror)
    options = CheckOptions(schema_version=args.schema_version)
    total: collections.Counter = collections.Counter()
    hinted: collections.Counter = collections.Counter()
    related = covered = 0
    shapes: collections.Counter = collections.Counter()
    example: dict[str, str] = {}
    for f in files:
        leaf = LeafFile(
            path=f.path,
            data=f.data,
            attribution=f.attribution,
            attribution_kind="file" if f.attribution is not None else "missing",
        )
        for d in check_leaf(leaf, options).diagnostics:
            family = "yaml syntax" if d.source == "yaml" and d.rule in ("syntax", "tabs", "construct") else d.source
            total[family] += 1
            hinted[family] += bool(d.hint)
            related += bool(d.related) and family == "yaml syntax"
            covered += len(d.covers)
            key = f"{d.source}/{d.rule}: {shape(d.message)}"
            shapes[key] += 1
            example.setdefault(key, f"pr/{f.pr}:{d.line}:{d.column}: {d.message}\n      hint: {d.hint}")
    n_all, h_all = sum(total.values()), sum(hinted.values())
    print(f"corpus: {len(files)} contributed qna.yaml files, {n_all} diagnostics ({args.schema_version} schema)")
    print(f"{'family':14} {'diagnostics':>11} {'with hint':>10} {'share':>7}")
    for family in sorted(total):
        print(f"{family:14} {total[family]:11d} {hinted[family]:10d} {hinted[family] / total[family]:7.1%}")
    print(f"{'all':14} {n_all:11d} {h_all:10d} {h_all / n_all:7.1%}")
    print(f"syntax errors with a related location (where the construct began): {related} of {total['yaml syntax']}")
    print(f"reference errors folded into schema/old-format summaries: {covered}")
    print("\nthe 20 most common messages (N: a number, `…`: a quoted name), each with a real example:")
    for key, count in shapes.most_common(20):
        print(f"{count:6d}  {key}\n      e.g. {example[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
