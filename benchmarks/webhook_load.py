"""Load benchmark of the webhook service: acknowledgement latency and zero-loss enqueue.

Starts the real service (uvicorn + Starlette + SQLite queue + 2 worker threads with a
no-op router, JSON logs to a file) in a *separate process* on 127.0.0.1, then drives it
open-loop: for each rate step (default 50, 100, 200, 400 deliveries/s for ``--seconds``
each) requests are fired at their scheduled times whatever the answers, so a slow server
shows up as latency, not as a lower offered rate.

The load generator shares the 2 cores with the server, so it must be cheap. The default
client (``--client raw``) is a minimal HTTP/1.1 keep-alive client on asyncio streams
(~0.3 ms CPU per request); ``--client httpx`` uses httpx's AsyncClient, which costs
2-7 ms CPU per request here and, once behind, becomes the bottleneck itself (its
connection pool's cost grows with the number of open connections).

Each delivery is a real GitHub payload from ``shared/github/webhook-payloads`` (all events
but ping, round-robin), made unique by one added top-level field ``"bench_seq"`` (the
service deduplicates identical bodies) and signed with HMAC-SHA256 like GitHub does.
Latency is measured from the *scheduled* send time to the response (so load-generator
lag counts against the server: conservative). Baseline in the same run: the same rate of
unsigned deliveries, refused with 401 before any database work (the HTTP stack alone).

At the end the queue file is read: every delivery answered 202 must be exactly one
stored delivery and one ``delivery`` job (zero lost, zero duplicated), and the workers must
have drained them all.

Usage: ``.venv/bin/python benchmarks/webhook_load.py [--rates 50,100,200,400] [--seconds 6]``

Hostile scenario (``--hostile``): the acknowledgement latency while EVERY worker is busy
with a hostile job, the issue-10 attack: the real checker on a real alias-bomb
``qna.yaml`` (a few hundred bytes whose anchors nest aliases eight levels deep; tens of
seconds of pure-Python validation each), from a real git repository. Three servers, one
after the other, each driven at the same rate for the same time:

* ``idle``: no hostile job (the baseline, measured in the same run);
* ``isolated``: the bot as shipped: each check runs in a limited child process
  (:func:`lab_ci.bot.isolation.run_isolated`, niceness ``LAB_CI_JOB_NICE``) while the
  worker thread waits, plus the light worker lane;
* ``in-process``: the bot before isolation: the same check in the worker thread, in the
  server's process (it holds the GIL), no light lane.

Every scenario keeps ``--workers`` hostile jobs running for the whole step (more are
queued than can finish); the table says how many were running when the step began and
ended. Usage: ``.venv/bin/python benchmarks/webhook_load.py --hostile [--rate 50] [--seconds 15]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAYLOADS = Path(os.environ.get("LAB_CI_SHARED", REPO.parent / "shared")) / "github" / "webhook-payloads"
SECRET = b"benchmark-secret"


# -- the server process -------------------------------------------------------------
HOSTILE_KIND = "check"


def bomb_repository(root: Path, levels: int = 8) -> dict:
    """A real git repository whose second commit adds an alias-bomb leaf; the check
    request of that change (what the bot's check job hands its job process)."""
    from lab_ci.bot.work import CheckWork

    names = "abcdefghij"
    lines = ["version: 3", "created_by: mallory", "task_description: bomb", "a: &a {q: x, r: y}"]
    for i in range(1, levels):
        prev, cur = names[i - 1], names[i]
        lines.append(f"{cur}: &{cur} {{" + ", ".join(f"{k}: *{prev}" for k in "qrstuvwxy") + "}")
    lines.append(f"seed_examples: [*{names[levels - 1]}]")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b"}
    env["GIT_COMMITTER_EMAIL"] = "b@x"

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout

    root.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch=main")
    (root / "README.md").write_text("taxonomy\n")
    git("add", "-A")
    git("commit", "--quiet", "-m", "main")
    base = git("rev-parse", "HEAD").strip()
    leaf = root / "compositional_skills" / "mallory" / "bomb"
    leaf.mkdir(parents=True)
    (leaf / "qna.yaml").write_text("\n".join(lines) + "\n")
    (leaf / "attribution.txt").write_text("x\n")
    git("add", "-A")
    git("commit", "--quiet", "-m", "bomb")
    head = git("rev-parse", "HEAD").strip()
    return CheckWork(taxonomy=str(root), base=base, head=head).to_dict()


def serve(port: int, data_dir: Path, workers: int, synchronous: str, scenario: str = "rates") -> None:
    import logging

    import uvicorn

    from lab_ci.bot import work
    from lab_ci.bot.app import create_app
    from lab_ci.bot.jobs import JobSpec
    from lab_ci.bot.logs import configure_json_logging
    from lab_ci.bot.metrics import Metrics
    from lab_ci.bot.queue import SQLiteQueue
    from lab_ci.bot.services import Services
    from lab_ci.bot.settings import Settings
    from lab_ci.bot.worker import Worker

    configure_json_logging(logging.INFO)
    settings = Settings(webhook_secret=SECRET, data_dir=data_dir, workers=workers, db_synchronous=synchronous)
    queue = SQLiteQueue(settings.queue_path, synchronous=settings.db_synchronous)
    metrics = Metrics()
    services = Services(settings=settings, queue=queue, metrics=metrics)

    def runner(job, services):
        if job.kind != HOSTILE_KIND:
            return
        if scenario == "isolated":
            try:
                services.isolated("check", work.CHECK_TARGET, job.payload, job)
            except Exception:  # a limit: the job ends like the bot's does, the worker moves on
                pass
        else:  # the bot before isolation: the checker in the worker thread
            work.check(job.payload)

    if scenario in ("isolated", "in-process"):
        request = bomb_repository(data_dir / "hostile-taxonomy")
        for i in range(workers * 6):
            queue.enqueue(JobSpec(HOSTILE_KIND, request, key=f"hostile-{i}", max_attempts=1))
    worker = Worker(
        queue,
        services,
        router=lambda event, payload, delivery_id: [],
        runner=runner,
        light_threads=0 if scenario == "in-process" else None,
    )
    app = create_app(settings, queue, metrics=metrics, worker=worker)
    # keep-alive longer than the pauses between steps, so a reused connection is never
    # closed by the server under the client's feet (a client-side ReadError, not a loss)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, timeout_keep_alive=60)


# -- the load generator -------------------------------------------------------------
def load_bodies() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(PAYLOADS.glob("*/*.json")):
        event = path.parent.name
        if event != "ping":
            out.append((event, json.loads(path.read_text())))
    if not out:
        sys.exit(f"no webhook payloads under {PAYLOADS}")
    return out


def make_requests(n: int, payloads: list[tuple[str, dict]], start: int, signed: bool = True):
    import hashlib
    import hmac

    reqs = []
    for i in range(n):
        event, payload = payloads[(start + i) % len(payloads)]
        body = json.dumps({**payload, "bench_seq": start + i}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
        }
        if signed:
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        reqs.append((headers, body))
    return reqs


class RawClient:
    """A minimal HTTP/1.1 keep-alive client (POST only) on asyncio streams, with a FIFO
    pool of at most ``size`` connections; only the load generator uses it."""

    def __init__(self, host: str, port: int, size: int = 256):
        self.host, self.port, self.size = host, port, size
        self.idle: asyncio.Queue = asyncio.Queue()
        self.opened = 0

    async def _acquire(self):
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port)
            except Exception:
                self.opened -= 1
                raise
        return await self.idle.get()

    async def post(self, path: str, content: bytes, headers: dict) -> int:
        reader, writer = await self._acquire()
        try:
            head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(content)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            writer.write(head.encode() + content)
            status = int((await reader.readline()).split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and "close" in value.lower():
                    close = True
            if length:
                await reader.readexactly(length)
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        if close:
            writer.close()
            self.opened -= 1
        else:
            self.idle.put_nowait((reader, writer))
        return status

    async def aclose(self) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()


class HttpxClient:
    def __init__(self, base: str):
        import httpx

        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        self.base = base
        self.client = httpx.AsyncClient(timeout=30, limits=limits)

    async def post(self, path: str, content: bytes, headers: dict) -> int:
        return (await self.client.post(self.base + path, content=content, headers=headers)).status_code

    async def aclose(self) -> None:
        await self.client.aclose()


async def run_step(client, url: str, rate: float, reqs) -> dict:
    loop = asyncio.get_running_loop()
    results: list[tuple[int, float, float, str]] = []

    async def one(at: float, headers: dict, body: bytes):
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = loop.time()
        try:
            status = await client.post(url, body, headers)
        except Exception as e:  # noqa: BLE001 - counted as an error
            status = -1
            print(f"  request error: {type(e).__name__}: {e}", file=sys.stderr)
        done = loop.time()
        results.append((status, done - at, done - sent, headers["X-GitHub-Delivery"]))

    t0 = loop.time() + 0.2
    tasks = [asyncio.create_task(one(t0 + i / rate, h, b)) for i, (h, b) in enumerate(reqs)]
    await asyncio.gather(*tasks)
    end = loop.time()
    lat = sorted(r[1] for r in results)
    svc = sorted(r[2] for r in results)

    def pct(xs, p):
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000

    statuses: dict[int, int] = {}
    for r in results:
        statuses[r[0]] = statuses.get(r[0], 0) + 1
    return {
        "rate": rate,
        "sent": len(reqs),
        "statuses": statuses,
        "per_s": len(results) / (end - t0),
        "p50": pct(lat, 50),
        "p99": pct(lat, 99),
        "max": lat[-1] * 1000,
        "svc_p99": pct(svc, 99),
        "mean": statistics.fmean(lat) * 1000,
        "accepted_ids": [r[3] for r in results if r[0] == 202],
    }


async def measured(step, server_pid: int) -> dict:
    """Run ``step`` and add the CPU it cost the server and the load generator per request."""
    s0, g0 = cpu_seconds(server_pid), time.process_time()
    out = await step
    n = out["sent"]
    out["server_cpu_ms"] = (cpu_seconds(server_pid) - s0) / n * 1000
    out["client_cpu_ms"] = (time.process_time() - g0) / n * 1000
    return out


async def drive(
    port: int, kind: str, rates: list[float], seconds: float, payloads, server_pid: int
) -> tuple[list[dict], dict]:
    client = RawClient("127.0.0.1", port) if kind == "raw" else HttpxClient(f"http://127.0.0.1:{port}")
    url = "/webhook"
    try:
        # warm up connections and code paths (not counted)
        await run_step(client, url, 100, make_requests(50, payloads, 10_000_000, signed=False))
        base_rate = 200.0 if 200.0 in rates else rates[len(rates) // 2]
        baseline = await measured(
            run_step(
                client, url, base_rate, make_requests(int(base_rate * seconds), payloads, 20_000_000, signed=False)
            ),
            server_pid,
        )
        steps, seq = [], 0
        for rate in rates:
            n = int(rate * seconds)
            reqs = make_requests(n, payloads, seq)
            seq += n
            steps.append(await measured(run_step(client, url, rate, reqs), server_pid))
    finally:
        await client.aclose()
    return steps, baseline


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="50,100,200,400", help="deliveries per second, comma-separated")
    p.add_argument("--seconds", type=float, default=6.0, help="duration of each step")
    p.add_argument("--workers", type=int, default=2, help="job worker threads in the server")
    p.add_argument(
        "--db-synchronous",
        default="FULL",
        choices=["FULL", "NORMAL"],
        help="SQLite synchronous level for stored deliveries (FULL: fsync before 202)",
    )
    p.add_argument("--client", choices=["raw", "httpx"], default="raw", help="load generator's HTTP client")
    p.add_argument(
        "--hostile",
        action="store_true",
        help="ack latency while every worker runs a hostile job: idle vs isolated vs in-process",
    )
    p.add_argument("--rate", type=float, default=50.0, help="deliveries per second of --hostile (default 50)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--scenario", default="rates", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.port, args.data_dir, args.workers, args.db_synchronous, args.scenario)
        return 0
    if args.hostile:
        return hostile(args)

    rates = [float(r) for r in args.rates.split(",")]
    payloads = load_bodies()
    with tempfile.TemporaryDirectory(prefix="labci-bench-") as tmp:
        data = Path(tmp)
        server, port = start_server(args, data, "rates")
        try:
            print(f"load generator: {args.client} client; ", end="")
            print(
                f"webhook_load: {len(payloads)} real payloads, {os.cpu_count()} CPUs (shared by server, workers and load generator), "
                f"loadavg {os.getloadavg()[0]:.2f} at start"
            )
            print(
                f"server: uvicorn + Starlette, SQLite WAL synchronous={args.db_synchronous}, "
                f"{args.workers} worker threads (no-op router), JSON logs to a file"
            )
            steps, baseline = asyncio.run(drive(port, args.client, rates, args.seconds, payloads, server.pid))
            # let the workers drain the delivery jobs
            db = sqlite3.connect(data / "queue.db")
            t_drain = time.monotonic()
            while time.monotonic() - t_drain < 60:
                left = db.execute("SELECT COUNT(*) FROM jobs WHERE state != 'done'").fetchone()[0]
                if left == 0:
                    break
                time.sleep(0.2)
            drain_s = time.monotonic() - t_drain
        finally:
            stop_server(server)

        print(f"loadavg {os.getloadavg()[0]:.2f} at end")
        hdr = (
            f"{'step':>9} {'sent':>5} {'202':>5} {'other':>5} {'acked/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8} {'p99/base':>8} {'srv cpu ms':>10} {'gen cpu ms':>10}"
        )
        print(hdr)

        def row(name, s, n202, other, ratio):
            print(
                f"{name:>9} {s['sent']:>5} {n202:>5} {other:>5} {s['per_s']:>7.1f} {s['p50']:>8.2f} {s['p99']:>8.2f} "
                f"{s['max']:>8.2f} {ratio:>8.2f} {s['server_cpu_ms']:>10.2f} {s['client_cpu_ms']:>10.2f}"
            )

        row("baseline", baseline, "-", baseline["statuses"].get(401, 0), 1.0)
        for s in steps:
            other = sum(v for k, v in s["statuses"].items() if k != 202)
            row(f"{s['rate']:.0f}/s", s, s["statuses"].get(202, 0), other, s["p99"] / baseline["p99"])
        print(
            f"(baseline: unsigned deliveries refused with 401 at {baseline['rate']:.0f}/s: HTTP stack only, no HMAC "
            "match, no JSON, no DB; latency from the scheduled send time; cpu = CPU ms per request)"
        )

        accepted = [i for s in steps for i in s["accepted_ids"]]
        rows = db.execute("SELECT id FROM deliveries").fetchall()
        stored = {r[0] for r in rows}
        jobs = db.execute(
            "SELECT json_extract(payload, '$.delivery_id'), COUNT(*) FROM jobs WHERE kind = 'delivery' GROUP BY 1"
        ).fetchall()
        per_delivery = dict(jobs)
        lost = [i for i in accepted if i not in stored or per_delivery.get(i, 0) == 0]
        dup = [i for i, n in per_delivery.items() if n > 1]
        extra = stored - set(accepted)
        not_done = db.execute("SELECT COUNT(*) FROM jobs WHERE state != 'done'").fetchone()[0]
        db.close()
        print(
            f"accepted {len(accepted)} deliveries; stored {len(stored)}; delivery jobs {sum(per_delivery.values())}; "
            f"lost {len(lost)}; duplicated {len(dup)}; stored but not acknowledged {len(extra)}; "
            f"not done after drain {not_done} (drain {drain_s:.1f}s)"
        )
        ok = not lost and not dup and len(accepted) == sum(s["sent"] for s in steps)
        print("RESULT:", "zero lost, zero duplicates" if ok else "FAILED")
        return 0 if ok else 1


def start_server(args, data: Path, scenario: str) -> tuple[subprocess.Popen, int]:
    import httpx

    port = free_port()
    log = open(data / "server.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--workers",
            str(args.workers),
            "--db-synchronous",
            args.db_synchronous,
            "--scenario",
            scenario,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    server.log_file = log  # closed by stop_server
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server, port
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            sys.exit(f"the server did not start; see {data / 'server.log'}")
        time.sleep(0.1)


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    server.log_file.close()


def running_hostile(data: Path) -> int:
    db = sqlite3.connect(f"file:{data / 'queue.db'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM jobs WHERE kind = ? AND state = 'running'", (HOSTILE_KIND,)).fetchone()[
            0
        ]
    finally:
        db.close()


async def drive_one(port: int, rate: float, warm, reqs, server_pid: int) -> dict:
    """A short warm-up, then one measured step at ``rate``."""
    client = RawClient("127.0.0.1", port)
    try:
        await run_step(client, "/webhook", 10, warm)
        return await measured(run_step(client, "/webhook", rate, reqs), server_pid)
    finally:
        await client.aclose()


def hostile(args) -> int:
    payloads = load_bodies()
    n = int(args.rate * args.seconds)
    print(
        f"webhook_load --hostile: {n} signed deliveries at {args.rate:.0f}/s per scenario, {args.workers} workers, "
        f"{os.cpu_count()} CPUs shared by server, jobs and load generator, loadavg {os.getloadavg()[0]:.2f} at start"
    )
    rows = []
    for i, scenario in enumerate(("idle", "isolated", "in-process")):
        with tempfile.TemporaryDirectory(prefix="labci-bench-") as tmp:
            data = Path(tmp)
            server, port = start_server(args, data, scenario)
            try:
                if scenario != "idle":  # wait until every worker runs a hostile job
                    deadline = time.monotonic() + 60
                    while running_hostile(data) < args.workers and time.monotonic() < deadline:
                        time.sleep(0.2)
                    time.sleep(2.0)  # into the jobs' heavy part (parse, then schema walk)
                busy_before = running_hostile(data)
                warm = make_requests(20, payloads, 9_000_000 + i * 1000)
                reqs = make_requests(n, payloads, (i + 1) * 1_000_000)
                step = asyncio.run(drive_one(port, args.rate, warm, reqs, server.pid))
                busy_after = running_hostile(data)
            finally:
                stop_server(server)
            rows.append((scenario, step, busy_before, busy_after))
    base = rows[0][1]["p99"]
    print(
        f"{'scenario':>10} {'busy':>7} {'sent':>5} {'202':>5} {'other':>5} {'p50 ms':>8} {'p99 ms':>9} {'max ms':>9} "
        f"{'p99/idle':>8} {'srv cpu ms':>10}"
    )
    for scenario, s, before, after in rows:
        other = sum(v for k, v in s["statuses"].items() if k != 202)
        print(
            f"{scenario:>10} {before:>3}/{after:<3} {s['sent']:>5} {s['statuses'].get(202, 0):>5} {other:>5} "
            f"{s['p50']:>8.2f} {s['p99']:>9.2f} {s['max']:>9.2f} {s['p99'] / base:>8.2f} {s['server_cpu_ms']:>10.2f}"
        )
    print(
        "(busy: hostile jobs running when the step began/ended; latency from the scheduled send time; "
        "srv cpu: the server process's own CPU ms per request, its job processes excluded)"
    )
    isolated = rows[1][1]
    ok = isolated["p99"] < 1000 and isolated["statuses"].get(202, 0) == n and rows[1][2] >= args.workers
    print("RESULT:", "isolated p99 under 1 s with every worker busy" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
