"""Speed of ``lab-ci check`` against the reference validator on the real corpus.

Lays out every qna.yaml contributed by the corpus's ``pr/N`` branches (about 1950
files) and checks all of them, in the same run, with:

- the reference: ``instructlab.schema.taxonomy.TaxonomyParser`` (latest schema), which
  runs the ``yamllint`` command per file (yq disabled: with yq it is slower still);
- lab-ci ``check_leaves`` in one process and with ``--jobs 2``;
- the real command ``lab-ci check --no-cache --format json`` on the laid-out tree;
- ``check_leaves`` with a result cache, cold (fills it) and warm (an unchanged tree);
- the real command ``lab-ci check --format json`` again on the unchanged tree, its cache
  warm: the re-check a contributor or CI runs most (process start, walking the tree,
  reading every leaf, the cache, the JSON output). CPU seconds of that process are
  printed too (the machines are shared: wall time is noisy).

Usage: .venv/bin/python benchmarks/check_corpus.py [--bundle PATH] [--reference-limit N]
(``--reference-limit`` times the reference on the first N files only; its files/s
is what the ratios use.)
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "check"))

from checkcorpus_util import corpus_files, lay_out  # noqa: E402

from lab_ci.check import CheckOptions, check_leaves  # noqa: E402
from lab_ci.check.cache import ResultCache  # noqa: E402
from lab_ci.taxonomy.leaf import LeafFile  # noqa: E402

DEFAULT_BUNDLE = Path(os.environ.get("LAB_CI_SHARED", REPO.parent / "shared")) / "corpus" / "taxonomy-history.bundle"


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def run_reference(paths: list[Path]) -> int:
    from instructlab.schema.taxonomy import TaxonomyParser, TaxonomyReadingException

    logging.getLogger("instructlab.schema.taxonomy").disabled = True
    parser = TaxonomyParser(message_format="LOGGING")
    parser.yq_available = False
    invalid = 0
    for p in paths:
        try:
            invalid += parser.parse(p).errors > 0
        except TaxonomyReadingException:
            invalid += 1
    return invalid


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument(
        "--reference-limit", type=int, default=0, help="time the reference on the first N files only (0: all)"
    )
    args = ap.parse_args()
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")

    def cli(tmp: Path, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "lab_ci",
            "check",
            "--taxonomy",
            str(tmp / "tree"),
            *extra,
            "--format",
            "json",
            "-o",
            str(tmp / "out.json"),
        ]

    with tempfile.TemporaryDirectory(prefix="lab-ci-bench-") as tmp:
        tmp = Path(tmp)
        mirror = tmp / "corpus.git"
        subprocess.run(["git", "clone", "--quiet", "--mirror", str(args.bundle), str(mirror)], check=True)
        files = corpus_files(mirror)
        paths = lay_out(files, tmp / "tree")
        leaves = [
            LeafFile(
                path=f.path,
                data=f.data,
                blob_id=f.blob_id,
                attribution=f.attribution,
                attribution_kind="file" if f.attribution is not None else "missing",
            )
            for f in files
        ]
        n = len(leaves)
        opts = CheckOptions()
        rows: list[tuple[str, int, float, str]] = []

        ref_paths = paths[: args.reference_limit] if args.reference_limit else paths
        t_ref, ref_invalid = timed(lambda: run_reference(ref_paths))
        ref_rate = len(ref_paths) / t_ref
        rows.append(
            ("reference TaxonomyParser (yamllint command per file)", len(ref_paths), t_ref, f"{ref_invalid} invalid")
        )

        t1, rep1 = timed(lambda: check_leaves(leaves, opts, jobs=1))
        rows.append(("lab-ci check_leaves, 1 process", n, t1, f"{rep1.summary()['invalid']} invalid"))
        t2, rep2 = timed(lambda: check_leaves(leaves, opts, jobs=2))
        rows.append(("lab-ci check_leaves, --jobs 2", n, t2, f"{rep2.summary()['invalid']} invalid"))

        t_cli, proc = timed(lambda: subprocess.run(cli(tmp, "--no-cache"), capture_output=True, text=True))
        if proc.returncode in (0, 1):
            rows.append(("lab-ci check --no-cache --format json (whole command)", n, t_cli, f"exit {proc.returncode}"))
        else:
            print(f"(CLI run failed, exit {proc.returncode}: {proc.stderr.strip()[-300:]})")

        cache = ResultCache(tmp / "cache")
        t_cold, _ = timed(lambda: check_leaves(leaves, opts, cache=cache))
        rows.append(("lab-ci check_leaves + cache, cold (fills it)", n, t_cold, ""))
        t_warm, rep_warm = timed(lambda: check_leaves(leaves, opts, cache=ResultCache(tmp / "cache")))
        rows.append(
            (
                "lab-ci check_leaves + cache, warm (unchanged tree)",
                n,
                t_warm,
                f"{rep_warm.summary()['invalid']} invalid",
            )
        )

        # The whole command on the unchanged tree, cache warm (its own cache folder).
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "xdg")}
        subprocess.run(cli(tmp), capture_output=True, env=env)  # fills the cache
        best = None
        for _ in range(3):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t_warm_cli, proc = timed(lambda: subprocess.run(cli(tmp), capture_output=True, text=True, env=env))
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            if best is None or t_warm_cli < best[0]:
                best = (t_warm_cli, cpu, proc.returncode)
        rows.append(
            (
                "lab-ci check --format json, warm cache (best of 3)",
                n,
                best[0],
                f"exit {best[2]}, {best[1]:.2f} s CPU",
            )
        )

    print(
        f"\ncorpus: {n} contributed qna.yaml files; machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'runner':58} {'files':>6} {'seconds':>8} {'files/s':>9} {'vs reference':>13}  note")
    for name, count, secs, note in rows:
        rate = count / secs
        print(f"{name:58} {count:6d} {secs:8.2f} {rate:9.1f} {rate / ref_rate:12.1f}x  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
