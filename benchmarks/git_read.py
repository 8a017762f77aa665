"""Cost of lab-ci's one git runner when reading a taxonomy from git objects.

On a mirror of the real corpus (every ``pr/N`` branch), in one run:

- read every ``qna.yaml`` blob of the trees of the first N pull request branches with
  lab-ci's ``GitTaxonomy.read_blobs`` (one ``git cat-file --batch`` per call, through
  ``lab_ci.taxonomy.gitrun``), against the baseline: the same ``git cat-file --batch``
  started with plain ``subprocess.run`` (no scrubbing, no session, no bounds);
- if GitPython is installed (lab-ci used it before the runner), the same blobs read
  through GitPython's persistent ``cat-file`` (``repo.odb.stream``), as it was done;
- ``collect_leaves(head=pr/N)`` end to end (open, resolve, ls-tree, read) per branch,
  against the plain-subprocess baseline of the same four git commands;
- 200 ``git rev-parse HEAD`` processes through the runner against ``subprocess.run``
  (the per-process overhead of the runner's environment, session and select loop).

Usage: .venv/bin/python benchmarks/git_read.py [--bundle PATH] [--branches N]
Prints the median wall and mean CPU seconds (this process and its children) of 7 runs
and the ratio to the baseline of the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab_ci.taxonomy.collect import collect_leaves  # noqa: E402
from lab_ci.taxonomy.gitrepo import GitTaxonomy, parse_ls_tree  # noqa: E402
from lab_ci.taxonomy.gitrun import GitRunner  # noqa: E402

DEFAULT_BUNDLE = Path(os.environ.get("LAB_CI_SHARED", REPO.parent / "shared")) / "corpus" / "taxonomy-history.bundle"


def cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, repeat: int = 7):
    """Median wall time of ``repeat`` runs, mean CPU time, and the last value."""
    walls, cpus, value = [], [], None
    for _ in range(repeat):
        c0, t0 = cpu(), time.perf_counter()
        value = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    return statistics.median(walls), statistics.mean(cpus), value


def plain(args: list[str], git_dir: Path, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], input=data, capture_output=True, check=True).stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--branches", type=int, default=40, help="pull request branches to read (default 40)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-ci-bench-") as tmp:
        mirror = Path(tmp) / "corpus.git"
        subprocess.run(["git", "clone", "--quiet", "--mirror", str(args.bundle), str(mirror)], check=True)
        refs = plain(["for-each-ref", "--format=%(refname:short)", "refs/heads/pr/"], mirror).decode().split()
        refs = sorted(refs, key=lambda r: int(r.rsplit("/", 1)[1]))[: args.branches]
        blobs: dict[str, int] = {}
        for ref in refs:
            for e in parse_ls_tree(plain(["ls-tree", "-r", "-l", "-z", ref], mirror)):
                if e.path.endswith("qna.yaml") and e.kind == "file":
                    blobs[e.sha] = e.size or 0
        shas = list(blobs)
        payload = "".join(f"{s}\n" for s in shas).encode()
        rows = []

        base = timed(lambda: plain(["cat-file", "--batch"], mirror, payload))
        rows.append(("baseline: subprocess.run git cat-file --batch", base))
        gt = GitTaxonomy.open(mirror)
        got = timed(lambda: gt.read_blobs(shas, sizes=blobs, max_bytes=1 << 20))
        assert len(got[2]) == len(shas)
        rows.append(("lab-ci GitTaxonomy.read_blobs (runner)", got))
        try:
            import git  # GitPython, what lab-ci used before the runner
        except ImportError:
            print("(GitPython not installed: its row is skipped)")
        else:
            repo = git.Repo(mirror)
            old = timed(lambda: [repo.odb.stream(bytes.fromhex(s)).read() for s in shas])
            repo.close()
            rows.append(("before: GitPython odb.stream per blob", old))

        def plain_collect():
            for ref in refs:
                plain(["rev-parse", "--is-bare-repository", "--absolute-git-dir"], mirror)
                sha = plain(["rev-parse", "--verify", f"{ref}^{{commit}}"], mirror).strip()
                entries = parse_ls_tree(plain(["ls-tree", "-r", "-t", "-l", "-z", "--full-tree", sha], mirror))
                want = "".join(f"{e.sha}\n" for e in entries if e.path.endswith("qna.yaml") and e.kind == "file")
                plain(["cat-file", "--batch"], mirror, want.encode())

        rows.append(("baseline: the same 4 git commands per branch, plain", timed(plain_collect)))
        rows.append(
            (
                "lab-ci collect_leaves(head=pr/N) per branch",
                timed(lambda: [collect_leaves(mirror, head=r) for r in refs]),
            )
        )
        runner = GitRunner()
        rows.append(
            (
                "baseline: 200 x subprocess.run git rev-parse",
                timed(lambda: [plain(["rev-parse", "HEAD"], mirror) for _ in range(200)]),
            )
        )
        rows.append(
            (
                "lab-ci 200 x GitRunner.run git rev-parse",
                timed(lambda: [runner.run(["rev-parse", "HEAD"], git_dir=mirror) for _ in range(200)]),
            )
        )

    size = sum(blobs.values())
    print(f"\n{len(refs)} pull request branches, {len(shas)} qna.yaml blobs, {size / 1e6:.1f} MB")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; median of 7 runs each, mean CPU")
    print(f"{'what':55} {'wall s':>8} {'cpu s':>8} {'wall vs baseline':>17}")
    baseline = None
    for name, (wall, used, _) in rows:
        if name.startswith("baseline"):
            baseline = wall
        print(f"{name:55} {wall:8.3f} {used:8.3f} {wall / baseline:16.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
