"""Cost of lab-ci's safe document fetch against plain git, on loopback.

A real HTTPS git server on 127.0.0.1 (``git http-backend``, the test suite's
``tests/fetch/fetchlib.py``, a CA made for the run) serves a documents repository. In one
run, each measured ``--rounds`` times with a cold cache:

- baseline: plain ``git init --bare``, ``git fetch --depth 1 URL SHA``, ``git ls-tree``,
  ``git cat-file --batch`` of the matched files (``subprocess.run``, the test CA trusted,
  nothing else configured); and the same keeping the fetched pack whole
  (``fetch.unpackLimit=1``, as lab-ci does: plain git explodes a small pack into loose
  objects, which costs more than all of lab-ci's checks);
- lab-ci: ``DocumentFetcher.fetch`` (allow-list, own resolution, address check, the TCP
  connect check, git pinned with ``http.curloptResolve``, redirects refused, the disk
  budget watched, a scratch repository removed afterwards), same URL, same files;
- lab-ci, the same fetch answered from its result cache;
- lab-ci refusing ``https://127.0.0.1:PORT/x.git`` (address not allowed: no git runs).

Usage: .venv/bin/python benchmarks/document_fetch.py [--rounds N] [--files N]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "fetch"))

from fetchlib import GitHttpsServer, make_tls, publish_docs  # noqa: E402

from lab_ci.taxonomy.documents import DocumentError, DocumentFetcher, FetchPolicy  # noqa: E402

logging.getLogger("lab_ci").setLevel(logging.ERROR)  # the refusals log a warning each

HOST = "docs.lab-ci.test"


def cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn, rounds: int) -> tuple[float, float]:
    """Median wall seconds and mean CPU seconds (this process and its children)."""
    walls, cpus = [], []
    for i in range(rounds):
        c0, t0 = cpu(), time.perf_counter()
        fn(i)
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    return statistics.median(walls), statistics.mean(cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--files", type=int, default=40, help="Markdown files in the documents repository")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-ci-bench-") as tmp:
        tmp = Path(tmp)
        root = tmp / "srv"
        root.mkdir()
        files = {
            f"docs/{i:03d}.md": (f"# Page {i}\n\n" + "Some documented text. " * 400).encode() for i in range(args.files)
        }
        sha = publish_docs(root, "docs.git", files)
        tls = make_tls(tmp / "tls", [HOST], ips=["127.0.0.1"])
        with GitHttpsServer(root, tls) as server:
            url = f"https://{HOST}:{server.port}/docs.git"
            plain_url = f"https://127.0.0.1:{server.port}/docs.git"
            env = {**os.environ, "GIT_SSL_CAINFO": str(tls["ca"]), "GIT_TERMINAL_PROMPT": "0"}

            def plain(i: int, keep_pack: bool = False) -> None:
                repo = tmp / f"plain-{i}.git"

                def git(*a, data=None):
                    return subprocess.run(
                        ["git", "--git-dir", str(repo), *a], env=env, input=data, capture_output=True, check=True
                    ).stdout

                git("init", "--quiet", "--bare")
                unpack = ["-c", "fetch.unpackLimit=1"] if keep_pack else []
                git(*unpack, "fetch", "--quiet", "--depth", "1", plain_url, sha)
                listing = git("ls-tree", "-r", "-z", "--long", sha).split(b"\0")
                oids = [e.split()[2] for e in listing if e and e.split(b"\t")[1].endswith(b".md")]
                git("cat-file", "--batch", data=b"".join(o + b"\n" for o in oids))
                shutil.rmtree(repo)

            policy = FetchPolicy(
                allowed_hosts=(f"{HOST}:{server.port}",),
                ca_file=str(tls["ca"]),
                resolver=lambda host, port: ["127.0.0.1"],
                permitted_addresses=frozenset({"127.0.0.1"}),
            )

            def safe(i: int) -> None:
                docs = DocumentFetcher(cache_dir=tmp / f"cache-{i}", policy=policy).fetch(url, sha, ["docs/*.md"])
                assert len(docs) == args.files

            warm = DocumentFetcher(cache_dir=tmp / "cache-warm", policy=policy)
            warm.fetch(url, sha, ["docs/*.md"])

            def cached(i: int) -> None:
                DocumentFetcher(cache_dir=tmp / "cache-warm", policy=policy).fetch(url, sha, ["docs/*.md"])

            def refused(i: int) -> None:
                try:
                    DocumentFetcher(cache_dir=tmp / "cache-refused").fetch(plain_url, sha, ["docs/*.md"])
                except DocumentError as e:
                    assert e.category == "address not allowed"

            rows = [
                ("baseline: plain git init/fetch --depth 1/ls-tree/cat-file", measure(plain, args.rounds)),
                (
                    "  the same, keeping the pack (fetch.unpackLimit=1, as lab-ci)",
                    measure(lambda i: plain(i, keep_pack=True), args.rounds),
                ),
                ("lab-ci DocumentFetcher.fetch, cold cache (pinned, checked)", measure(safe, args.rounds)),
                ("lab-ci DocumentFetcher.fetch, answered from the cache", measure(cached, args.rounds)),
                ("lab-ci refusing https://127.0.0.1:PORT/x.git", measure(refused, args.rounds)),
            ]
    size = sum(len(v) for v in files.values())
    print(f"\n{args.files} Markdown files, {size / 1e6:.2f} MB; {args.rounds} rounds each (median wall, mean CPU)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'what':62} {'wall ms':>9} {'cpu ms':>8} {'wall vs baseline':>17}")
    base = rows[0][1][0]
    for name, (wall, used) in rows:
        print(f"{name:62} {wall * 1000:9.1f} {used * 1000:8.1f} {wall / base:16.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
