"""Crash recovery and multi-process claims with real worker processes.

This file is also the worker program the tests start (``python THIS_FILE worker ...``):
a real :class:`~lab_ci.bot.worker.Worker` on the shared SQLite file whose runner appends
one line per side effect to a file, so the tests can count side effects exactly.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

THIS = Path(__file__).resolve()
REPO = THIS.parents[2]


def wait_for(*args, **kw):
    """The shared poller (tests/bot/conftest.py); imported late so that this file, run
    as the worker program, does not load the test fixtures."""
    from botlib import wait_for as shared

    return shared(*args, **kw)


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())  # one write: lines never interleave
        os.fsync(fd)
    finally:
        os.close(fd)


def worker_main(argv: list[str]) -> int:
    """The worker process: ``worker --db D --effects F --mode hang|record``."""
    from lab_ci.bot.queue import SQLiteQueue
    from lab_ci.bot.services import Services
    from lab_ci.bot.settings import Settings
    from lab_ci.bot.worker import Worker

    p = argparse.ArgumentParser()
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--effects", type=Path, required=True)
    p.add_argument("--mode", choices=["hang", "record"], required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lease", type=float, default=1.0)
    args = p.parse_args(argv)
    pid = os.getpid()

    def runner(job, ctx):
        _append(args.effects, f"start {job.id} {pid}")
        if args.mode == "hang":
            time.sleep(3600)  # killed here, mid-job
        time.sleep(0.002)
        _append(args.effects, f"done {job.id} {pid}")

    queue = SQLiteQueue(args.db)
    settings = Settings(data_dir=args.db.parent, lease_seconds=args.lease, backoff_base=0.05)
    worker = Worker(
        queue,
        Services(settings=settings, queue=queue),
        threads=args.threads,
        runner=runner,
        router=lambda *a: [],
        poll_interval=0.05,
        jitter=0.0,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    _append(args.effects, f"ready - {pid}")
    stop.wait()
    worker.stop(grace=5)
    return 0


# ---------------------------------------------------------------------------------
# tests


def start_worker(db: Path, effects: Path, mode: str, threads: int = 2, lease: float = 1.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            str(THIS),
            "worker",
            "--db",
            str(db),
            "--effects",
            str(effects),
            "--mode",
            mode,
            "--threads",
            str(threads),
            "--lease",
            str(lease),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def effects_of(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_job_killed_mid_run_is_completed_once_by_another_process(tmp_path):
    from lab_ci.bot.jobs import JobSpec
    from lab_ci.bot.queue import SQLiteQueue

    db, effects = tmp_path / "queue.db", tmp_path / "effects.log"
    queue = SQLiteQueue(db)
    ids = [queue.enqueue(JobSpec("check", {"n": i}, key=f"o/r#{i}")) for i in range(6)]

    crashing = start_worker(db, effects, "hang", threads=2, lease=1.0)
    try:
        assert wait_for(lambda: sum(e[0] == "start" for e in effects_of(effects)) == 2, proc=crashing)
        crashing.send_signal(signal.SIGKILL)  # no cleanup, no release: the leases just stop
        crashing.wait(10)
    finally:
        if crashing.poll() is None:
            crashing.kill()
    crashed = {int(e[1]) for e in effects_of(effects) if e[0] == "start"}
    assert len(crashed) == 2
    assert all(queue.get(i)["state"] == "running" for i in crashed)  # still leased to the dead process

    rescuer = start_worker(db, effects, "record", threads=2, lease=1.0)
    try:
        assert wait_for(lambda: all(queue.get(i)["state"] == "done" for i in ids), proc=rescuer)
    finally:
        assert stop(rescuer) == 0
    done = Counter(int(e[1]) for e in effects_of(effects) if e[0] == "done")
    assert done == Counter({i: 1 for i in ids})  # every job's side effect exactly once
    for i in ids:
        row = queue.get(i)
        assert row["attempts"] == (2 if i in crashed else 1), row
    assert queue.stats()["dead"] == 0
    queue.close()


def test_two_processes_claiming_concurrently_never_double_run(tmp_path):
    from lab_ci.bot.jobs import JobSpec
    from lab_ci.bot.queue import SQLiteQueue

    db, effects = tmp_path / "queue.db", tmp_path / "effects.log"
    queue = SQLiteQueue(db)
    procs = [start_worker(db, effects, "record", threads=3, lease=10.0) for _ in range(2)]
    try:
        # both processes polling before the jobs appear, so both get a fair chance to claim
        assert wait_for(lambda: sum(e[0] == "ready" for e in effects_of(effects)) == 2)
        ids = [queue.enqueue(JobSpec("check", {"n": i}, key=f"o/r#{i % 40}")) for i in range(300)]
        assert wait_for(lambda: queue.stats()["jobs"].get(("check", "done"), 0) == len(ids), timeout=90)
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0]
    lines = effects_of(effects)
    done = Counter(int(e[1]) for e in lines if e[0] == "done")
    started = Counter(int(e[1]) for e in lines if e[0] == "start")
    assert done == Counter({i: 1 for i in ids})
    assert started == done  # no job even started twice
    pids = {e[2] for e in lines if e[0] == "done"}
    assert len(pids) == 2, "both processes should have run jobs"
    assert all(queue.get(i)["attempts"] == 1 for i in ids)
    queue.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit("usage: test_queue_durability.py worker --db DB --effects FILE --mode hang|record")
