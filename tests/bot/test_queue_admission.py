"""Admission in the durable queue (issue 10, quotas): coalescing identical requests,
the per-installation queue limit, sliding-window quotas, light-job claims, and an older
queue file upgraded in place. Real SQLite files in a temp folder."""

from __future__ import annotations

import sqlite3
import time

import pytest

from lab_ci.bot.jobs import COALESCED, DUPLICATE, ENQUEUED, REFUSED, JobSpec, Quota
from lab_ci.bot.queue import SQLiteQueue


@pytest.fixture
def queue(tmp_path):
    q = SQLiteQueue(tmp_path / "queue.db", synchronous="NORMAL")
    yield q
    q.close()


def preview(sha="a" * 40, samples=3, *, reason="c1", inst=7, limit=None, quotas=(), number=1):
    return JobSpec(
        "preview",
        {"sha": sha, "samples": samples},
        key=f"o/r#{number}",
        supersede_token=sha,
        dedupe=f"preview:{number}@{sha}:{samples}:{reason}",
        coalesce=f"preview:{number}@{sha}:{samples}",
        installation_id=inst,
        queue_limit=limit,
        quotas=tuple(quotas),
    )


def test_identical_requests_coalesce_while_queued_or_running_not_after(queue):
    first = queue.submit(preview(reason="c1"))
    assert first.outcome == ENQUEUED
    again = queue.submit(preview(reason="c2"))
    assert (again.outcome, again.job_id) == (COALESCED, first.job_id)
    assert queue.submit(preview(reason="c1")).outcome == DUPLICATE  # a retried enqueue stays idempotent
    assert queue.submit(preview(samples=5, reason="c3")).outcome == ENQUEUED  # not identical: 5 samples
    job = queue.claim("w", 30)
    assert job.id == first.job_id
    assert queue.submit(preview(reason="c4")).outcome == COALESCED  # running absorbs it too
    assert queue.complete(job.id, owner="w")
    assert queue.submit(preview(reason="c5")).outcome == ENQUEUED  # done: a new request is new work
    assert len(queue.jobs(kind="preview")) == 3


def test_a_superseded_running_job_absorbs_nothing(queue):
    queue.submit(preview(sha="a" * 40))
    job = queue.claim("w", 30)
    queue.submit(preview(sha="b" * 40))  # newer head: the running one is flagged cancelled
    assert queue.is_cancelled(job.id)
    assert queue.submit(preview(sha="a" * 40, reason="again")).outcome == ENQUEUED


def test_installation_queue_limit_counts_only_its_limited_queued_jobs(queue):
    for n in (1, 2):
        assert queue.submit(preview(number=n, limit=2)).outcome == ENQUEUED
    full = queue.submit(preview(number=3, limit=2))
    assert (full.outcome, full.reason, full.limit) == (REFUSED, "queue_full", 2)
    assert queue.submit(preview(number=3, inst=8, limit=2)).outcome == ENQUEUED  # another installation
    assert queue.submit(JobSpec("command", {}, installation_id=7)).outcome == ENQUEUED  # no limit asked
    # a newer head of a queued pull request replaces its job: admitted, the queue does not grow
    assert queue.submit(preview(number=2, sha="c" * 40, limit=2)).outcome == ENQUEUED
    assert [j["state"] for j in queue.jobs(kind="preview") if j["installation_id"] == 7] == [
        "queued",
        "cancelled",
        "queued",
    ]
    # once one runs, a slot frees up
    queue.claim("w", 30, kinds=["preview"])
    assert queue.submit(preview(number=4, limit=2)).outcome == ENQUEUED


def test_quotas_are_sliding_windows_and_a_refusal_changes_nothing(queue):
    def spec(n, user="alice"):
        return preview(number=n, quotas=[Quota("pr", f"o/r#{n}", 2, window=0.5), Quota("user", user, 3, window=0.5)])

    assert queue.submit(spec(1)).outcome == ENQUEUED
    assert queue.submit(preview(number=1, samples=4, quotas=spec(1).quotas)).outcome == ENQUEUED
    pr = queue.submit(preview(number=1, samples=5, quotas=spec(1).quotas))
    assert (pr.outcome, pr.reason, pr.limit) == (REFUSED, "pr_quota", 2) and 0 < pr.retry_after <= 0.5
    assert queue.submit(spec(2)).outcome == ENQUEUED  # alice's third
    user = queue.submit(spec(3))
    assert (user.outcome, user.reason) == (REFUSED, "user_quota")
    assert queue.submit(spec(3, user="bob")).outcome == ENQUEUED
    assert len(queue.jobs(kind="preview")) == 4  # refusals left no job and no usage behind
    coalesced = queue.submit(
        preview(number=1, reason="c9", quotas=spec(1).quotas)
    )  # identical to a pending job: costs no quota at all
    assert coalesced.outcome == COALESCED
    time.sleep(0.6)  # the windows slide past the first requests
    assert queue.submit(spec(5)).outcome == ENQUEUED


def test_zero_means_no_limit(queue):
    for i in range(5):
        assert queue.submit(preview(number=i, limit=0, quotas=[Quota("user", "u", 0)])).outcome == ENQUEUED


def test_follow_ups_are_admitted_in_the_completing_transaction(queue):
    queue.submit(JobSpec("delivery-like", {}))
    job = queue.claim("w", 30)
    queue.submit(preview(number=1, limit=1))
    done = queue.complete(job.id, owner="w", enqueue=[preview(number=2, limit=1), preview(number=1, reason="x")])
    assert done and [a.outcome for _, a in done.admissions] == [REFUSED, COALESCED]
    lost = queue.complete(job.id, owner="w")
    assert not lost and lost.admissions == []


def test_claim_by_kinds_leaves_other_jobs_queued(queue):
    heavy = queue.enqueue(JobSpec("check", {}))
    light = queue.enqueue(JobSpec("command", {}))
    assert queue.claim("light", 30, kinds=["command", "delivery"]).id == light
    assert queue.claim("light", 30, kinds=["command", "delivery"]) is None
    assert queue.claim("any", 30).id == heavy


def test_an_older_queue_file_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL, key TEXT,
            supersede_token TEXT, dedupe TEXT, priority INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 5, run_after REAL NOT NULL, lease_owner TEXT,
            lease_until REAL, cancel_requested INTEGER NOT NULL DEFAULT 0, last_error TEXT,
            created_at REAL NOT NULL, started_at REAL, finished_at REAL);
        INSERT INTO jobs (kind, payload, run_after, created_at) VALUES ('check', '{"n": 1}', 0, 0);
        """
    )
    db.commit()
    db.close()
    q = SQLiteQueue(path)
    try:
        [old] = q.jobs()
        assert old["payload"] == {"n": 1} and old["limited"] == 0 and old["coalesce"] is None
        assert q.submit(preview(limit=1)).outcome == ENQUEUED
        assert q.claim("w", 30).payload == {"n": 1}  # the old job still runs first
    finally:
        q.close()
    SQLiteQueue(path).close()  # opening it again changes nothing
