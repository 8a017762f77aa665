"""The durable queue's rules, on a real SQLite file with real worker threads:
per-key serialization, supersede, dedupe, retries with backoff then dead-letter,
atomic follow-ups, graceful shutdown."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from botlib import wait_for

from lab_ci.bot.jobs import JobSpec, PermanentError
from lab_ci.bot.queue import Queue, SQLiteQueue
from lab_ci.bot.services import Services
from lab_ci.bot.settings import Settings
from lab_ci.bot.worker import Worker, backoff_delay


@pytest.fixture
def queue(tmp_path: Path):
    q = SQLiteQueue(tmp_path / "queue.db")
    yield q
    q.close()


def make_worker(queue, tmp_path, runner, *, threads=2, router=None, lease=5.0, base=0.05, **kw) -> Worker:
    settings = Settings(data_dir=tmp_path, backoff_base=base, backoff_max=1.0, lease_seconds=lease)
    ctx = Services(settings=settings, queue=queue)
    return Worker(
        queue,
        ctx,
        threads=threads,
        runner=runner,
        router=router or (lambda *a: []),
        poll_interval=0.02,
        jitter=0.0,
        **kw,
    )


def test_sqlite_queue_implements_the_protocol(queue):
    assert isinstance(queue, Queue)
    assert queue.ping()
    assert queue.path.exists()
    mode = queue._conn().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_claim_lease_complete_lifecycle(queue):
    job_id = queue.enqueue(JobSpec("check", {"n": 1}, key="o/r#1"))
    job = queue.claim("w1", lease_seconds=30)
    assert (job.id, job.kind, job.payload, job.key, job.attempts) == (job_id, "check", {"n": 1}, "o/r#1", 1)
    assert queue.claim("w2", lease_seconds=30) is None  # nothing else ready
    assert queue.heartbeat(job.id, "w1", 30)
    assert not queue.heartbeat(job.id, "w2", 30)  # not the owner
    assert not queue.complete(job.id, owner="w2")
    assert queue.complete(job.id, owner="w1")
    row = queue.get(job_id)
    assert row["state"] == "done" and row["attempts"] == 1 and row["finished_at"] >= row["started_at"]


def test_expired_lease_is_retried_and_counted_then_dead(queue):
    job_id = queue.enqueue(JobSpec("check", {}, max_attempts=2))
    first = queue.claim("lost-worker", lease_seconds=0.1)
    time.sleep(0.2)
    second = queue.claim("w2", lease_seconds=0.1)
    assert second.id == job_id and second.attempts == 2
    assert queue.get(job_id)["last_error"] == "lease expired (worker lost)"
    assert not queue.complete(first.id, owner="lost-worker")  # the lost worker cannot finish it
    time.sleep(0.2)
    assert queue.claim("w3", lease_seconds=1) is None
    row = queue.get(job_id)
    assert row["state"] == "dead" and "lease expired after 2 attempt(s)" in row["last_error"]


def test_per_key_serialization_under_four_threads(queue, tmp_path):
    intervals: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def runner(job, ctx):
        start = time.monotonic()
        time.sleep(0.05)
        with lock:
            intervals.append((job.key, start, time.monotonic()))

    for i in range(6):
        for key in ("o/r#1", "o/r#2"):
            queue.enqueue(JobSpec("check", {"i": i}, key=key))
    worker = make_worker(queue, tmp_path, runner, threads=4).start()
    try:
        assert wait_for(lambda: len(queue.jobs(state="done")) == 12)
    finally:
        worker.stop()
    for key in ("o/r#1", "o/r#2"):
        spans = sorted((s, e) for k, s, e in intervals if k == key)
        assert len(spans) == 6
        for (_s1, e1), (s2, _e2) in zip(spans, spans[1:]):
            assert s2 >= e1, f"two jobs of {key} overlapped"
    # while different keys did run side by side
    a = [(s, e) for k, s, e in intervals if k == "o/r#1"]
    b = [(s, e) for k, s, e in intervals if k == "o/r#2"]
    assert any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


def test_claim_skips_a_key_with_a_running_job(queue):
    queue.enqueue(JobSpec("check", {"n": 1}, key="k"))
    queue.enqueue(JobSpec("preview", {"n": 2}, key="k"))
    other = queue.enqueue(JobSpec("check", {"n": 3}, key="other"))
    first = queue.claim("w1", 30)
    assert first.payload == {"n": 1}
    assert queue.claim("w2", 30).id == other
    assert queue.claim("w3", 30) is None
    queue.complete(first.id, owner="w1")
    assert queue.claim("w3", 30).payload == {"n": 2}


def test_newer_head_cancels_queued_and_flags_running_job(queue, tmp_path):
    started = threading.Event()
    outcomes: dict[str, str] = {}

    def runner(job, ctx):
        name = f"{job.kind}:{job.payload['sha']}"
        if name == "check:aaa":
            started.set()
            deadline = time.monotonic() + 10
            while not job.is_cancelled() and time.monotonic() < deadline:
                time.sleep(0.01)
            outcomes[name] = "saw cancel" if job.is_cancelled() else "timed out"
        else:
            outcomes[name] = "ran"

    key = "octo/taxonomy#12"
    queue.enqueue(JobSpec("check", {"sha": "aaa"}, key=key, supersede_token="aaa"))
    worker = make_worker(queue, tmp_path, runner, threads=2, lease=2.0).start()
    try:
        assert started.wait(10)
        bbb = queue.enqueue(JobSpec("check", {"sha": "bbb"}, key=key, supersede_token="bbb"))
        ccc = queue.enqueue(JobSpec("check", {"sha": "ccc"}, key=key, supersede_token="ccc"))
        other_kind = queue.enqueue(JobSpec("preview", {"sha": "aaa"}, key=key, supersede_token="aaa"))
        assert wait_for(lambda: queue.get(ccc)["state"] == "done" and queue.get(other_kind)["state"] == "done")
    finally:
        worker.stop()
    states = {j["payload"]["sha"] + ":" + j["kind"]: j["state"] for j in queue.jobs()}
    assert states == {"aaa:check": "cancelled", "bbb:check": "cancelled", "ccc:check": "done", "aaa:preview": "done"}
    # bbb was cancelled while queued: it never ran
    assert outcomes == {"check:aaa": "saw cancel", "check:ccc": "ran", "preview:aaa": "ran"}
    assert queue.get(bbb)["last_error"] == "superseded"


def test_dedupe_blocks_while_pending_or_done_not_after_dead(queue):
    spec = JobSpec("reply", {"comment": 1}, dedupe="comment-1")
    first = queue.enqueue(spec)
    assert first is not None
    assert queue.enqueue(spec) is None  # queued
    job = queue.claim("w", 30)
    assert queue.enqueue(spec) is None  # running
    queue.complete(job.id, owner="w")
    assert queue.enqueue(spec) is None  # done
    assert queue.enqueue(JobSpec("check", {}, dedupe="comment-1")) is not None  # other kind
    dead_spec = JobSpec("reply", {"comment": 2}, dedupe="comment-2", max_attempts=1)
    queue.enqueue(dead_spec)
    job = queue.claim("w", 30)
    while job.kind != "reply":
        queue.complete(job.id, owner="w")
        job = queue.claim("w", 30)
    assert queue.fail(job.id, "boom", retry_in=1.0, owner="w") == "dead"
    assert queue.enqueue(dead_spec) is not None  # a dead job may be tried again


def test_retries_with_exponential_backoff_then_dead_letter(queue, tmp_path):
    calls: list[float] = []

    def runner(job, ctx):
        calls.append(time.monotonic())
        raise ConnectionError(f"GitHub unreachable (attempt {job.attempts})")

    job_id = queue.enqueue(JobSpec("check", {}, max_attempts=4))
    worker = make_worker(queue, tmp_path, runner, threads=1, base=0.1).start()
    try:
        assert wait_for(lambda: queue.get(job_id)["state"] == "dead")
    finally:
        worker.stop()
    row = queue.get(job_id)
    assert row["attempts"] == 4 and len(calls) == 4
    assert row["last_error"] == "ConnectionError: GitHub unreachable (attempt 4)"
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    for gap, expected in zip(gaps, (0.1, 0.2, 0.4)):
        assert gap >= expected * 0.95, (gaps, expected)
    registry = worker.services.metrics.registry
    assert registry.get_sample_value("labci_job_retries_total", {"kind": "check"}) == 3
    assert registry.get_sample_value("labci_jobs_finished_total", {"kind": "check", "outcome": "dead"}) == 1


def test_permanent_error_is_dead_at_once(queue, tmp_path):
    def runner(job, ctx):
        raise PermanentError("the pull request is gone")

    job_id = queue.enqueue(JobSpec("check", {}, max_attempts=5))
    worker = make_worker(queue, tmp_path, runner, threads=1).start()
    try:
        assert wait_for(lambda: queue.get(job_id)["state"] == "dead")
    finally:
        worker.stop()
    assert queue.get(job_id)["attempts"] == 1


def test_backoff_delay_is_exponential_capped_and_jittered():
    assert [backoff_delay(a, 10, 900, jitter=0) for a in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff_delay(20, 10, 900, jitter=0) == 900
    rng = random.Random(7)
    samples = [backoff_delay(3, 10, 900, jitter=0.1, rng=rng) for _ in range(200)]
    assert all(36 <= s <= 44 for s in samples) and len(set(samples)) > 100


def test_routing_completes_delivery_and_enqueues_follow_ups_atomically(queue, tmp_path):
    body = b'{"action": "opened", "number": 5}'
    assert queue.record_delivery("d-1", "pull_request", body, meta={"action": "opened"})
    routed = []

    def router(event, payload, delivery_id):
        routed.append((event, payload, delivery_id))
        return [
            JobSpec("check", {"n": payload["number"]}, key="o/r#5", dedupe=f"{delivery_id}:check"),
            JobSpec("reply", {"n": payload["number"]}, dedupe=f"{delivery_id}:reply"),
        ]

    delivery = queue.claim("w", 30)
    assert delivery.kind == "delivery"
    worker = make_worker(queue, tmp_path, lambda job, ctx: None, router=router)
    worker._run(delivery)
    assert routed == [("pull_request", {"action": "opened", "number": 5}, "d-1")]
    assert [(j["kind"], j["state"]) for j in queue.jobs()] == [
        ("delivery", "done"),
        ("check", "queued"),
        ("reply", "queued"),
    ]
    # a lost lease means the follow-ups are not enqueued (the next owner will route again)
    assert queue.record_delivery("d-2", "pull_request", b'{"number": 6}')
    lost = queue.claim("w", 30)
    queue.release(lost.id, owner="w")
    assert not queue.complete(lost.id, owner="w", enqueue=[JobSpec("check", {"n": 6})])
    assert len(queue.jobs(kind="check")) == 1


def test_graceful_stop_gives_running_job_back_unrun(queue, tmp_path):
    started = threading.Event()
    release = threading.Event()

    returned = threading.Event()

    def runner(job, ctx):
        started.set()
        release.wait(10)  # a job that ignores cancellation and outlives the grace period
        returned.set()

    job_id = queue.enqueue(JobSpec("preview", {}))
    worker = make_worker(queue, tmp_path, runner, threads=1).start()
    assert started.wait(10)
    worker.stop(grace=0.2)
    row = queue.get(job_id)
    assert row["state"] == "queued" and row["attempts"] == 0 and row["lease_owner"] is None
    [late] = worker._threads  # the thread still inside the runner
    release.set()
    assert returned.wait(10)
    late.join(10)  # it has finished the job (complete() with its stale lease) and exited
    assert not late.is_alive()
    assert queue.get(job_id)["state"] == "queued"  # the late finish did not clobber it
    again = queue.claim("next", 30)
    assert again.id == job_id and again.attempts == 1


def test_released_job_that_was_superseded_is_cancelled_not_requeued(queue):
    old = queue.enqueue(JobSpec("preview", {"sha": "a"}, key="k", supersede_token="a"))
    job = queue.claim("w", 30)
    new = queue.enqueue(JobSpec("preview", {"sha": "b"}, key="k", supersede_token="b"))
    assert job.id == old
    job.recheck = 0  # ask the queue now rather than within the cached second
    assert job.is_cancelled() and queue.is_cancelled(old)
    assert queue.release(old, owner="w")
    assert queue.get(old)["state"] == "cancelled"
    assert queue.claim("w", 30).id == new


def test_graceful_stop_waits_for_a_short_job(queue, tmp_path):
    started = threading.Event()

    def runner(job, ctx):
        started.set()
        time.sleep(0.3)

    job_id = queue.enqueue(JobSpec("check", {}))
    worker = make_worker(queue, tmp_path, runner, threads=1).start()
    assert started.wait(10)
    worker.stop(grace=5)
    assert queue.get(job_id)["state"] == "done"
    assert worker.alive() == 0


def test_prune_keeps_dead_and_pending_jobs(queue):
    done = queue.enqueue(JobSpec("check", {}))
    dead = queue.enqueue(JobSpec("check", {}, max_attempts=1))
    pending = queue.enqueue(JobSpec("check", {}))
    queue.complete(queue.claim("w", 30).id, owner="w")
    queue.fail(queue.claim("w", 30).id, "boom", retry_in=1, owner="w")
    assert queue.record_delivery("d", "push", b"{}")
    time.sleep(0.05)
    assert queue.prune(0.01) == 2  # the done job and the delivery record
    assert queue.get(done) is None
    assert queue.get(dead)["state"] == "dead"
    assert queue.get(pending)["state"] == "queued"


def test_a_router_crash_is_permanent_not_retried(queue, tmp_path):
    """Finding 2: route() is pure, so an exception in it fails the same way on every
    retry: the delivery is dead after ONE attempt (not five), with the reason kept."""
    calls = []

    def router(event, payload, delivery_id):
        calls.append(delivery_id)
        return [JobSpec("check", {"n": int(payload["samples"])})]  # int("²") raises

    assert queue.record_delivery("d-crash", "issue_comment", '{"samples": "\u00b2"}'.encode())
    delivery = queue.claim("w", 30)
    worker = make_worker(queue, tmp_path, lambda job, ctx: None, router=router)
    worker._run(delivery)
    row = queue.get(delivery.id)
    assert row["state"] == "dead" and row["attempts"] == 1 and calls == ["d-crash"]
    assert "could not be routed" in row["last_error"] and "ValueError" in row["last_error"]
    assert queue.jobs(kind="check") == []


def test_a_new_heads_check_supersedes_the_older_heads_preview(queue):
    """A push while a preview of the previous head runs: the new head's check cancels
    it (it would post a comment about code the pull request no longer has); a check of
    the same head leaves it alone."""
    preview = queue.enqueue(JobSpec("preview", {"sha": "a"}, key="k", supersede_token="a"))
    job = queue.claim("w", 30)
    assert job.id == preview
    queue.enqueue(JobSpec("check", {"sha": "a"}, key="k", supersede_token="a", also_supersedes=("preview",)))
    job.recheck = 0
    assert not job.is_cancelled()
    queue.enqueue(JobSpec("check", {"sha": "b"}, key="k", supersede_token="b", also_supersedes=("preview",)))
    job.recheck = 0
    assert job.is_cancelled() and queue.is_cancelled(preview)
    assert queue.release(preview, owner="w") and queue.get(preview)["state"] == "cancelled"


def test_the_bots_check_of_a_push_supersedes_previews():
    from lab_ci.bot.handlers.check import check_spec
    from lab_ci.bot.payloads import RepoPayload

    repo = RepoPayload(repo="o/r", installation_id=1, clone_url="https://github.com/o/r.git", default_branch="main")
    pr = {"number": 3, "head": {"sha": "b" * 40}, "base": {"ref": "main"}, "user": {"login": "u"}}
    spec = check_spec(repo, pr, "d1", trigger="synchronize", settings=Settings())
    assert spec.supersede_token == "b" * 40 and spec.also_supersedes == ("preview",)
