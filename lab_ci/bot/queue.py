"""The durable job queue: SQLite in WAL mode, embedded, no extra service.

:class:`Queue` is the interface the webhook app and the workers use; :class:`SQLiteQueue`
is the default implementation (another broker can be plugged in by implementing the
protocol). Properties:

* **Durable**: a delivery is acknowledged only after its row and its ``delivery`` job are
  committed (``record_delivery``, one transaction). A job survives a crash or restart:
  a claim is a *lease*; an expired lease makes the job claimable again (attempts counted;
  after ``max_attempts`` it is ``dead`` with its last error kept).
* **One at a time per key**: ``claim`` skips jobs whose ``key`` (e.g. a pull request) has
  a running job with an unexpired lease.
* **Superseded**: enqueuing a spec with ``key`` and ``supersede_token`` cancels queued
  jobs of the same key and kind with another token, and flags running ones
  (``is_cancelled`` turns true; the worker ends them as ``cancelled``).
* **Idempotent**: a spec with ``dedupe`` is not enqueued while a job with the same
  ``(kind, dedupe)`` is queued, running or done (a dead or cancelled one does not block).
* **Admission** (:meth:`SQLiteQueue.submit`, in the transaction that inserts): a spec with
  ``coalesce`` is absorbed by a queued or running job of the same kind and
  ``coalesce``; a spec with ``queue_limit`` is refused when its installation already has
  that many limited jobs queued; a spec with ``quotas`` is refused when one of them is
  used up (sliding window, table ``quota_usage``). A refused spec changes nothing.
* **Thread-safe**: one connection per thread, ``busy_timeout``, ``BEGIN IMMEDIATE`` for
  every write transaction (so claims never race), and several processes may share a file.

Job states: ``queued`` -> ``running`` -> ``done`` | ``queued`` (retry) | ``dead`` |
``cancelled``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .jobs import COALESCED, DUPLICATE, ENQUEUED, REFUSED, Admission, Job, JobSpec

DELIVERY_KIND = "delivery"
STATES = ("queued", "running", "done", "dead", "cancelled")
_PRIORITY = {DELIVERY_KIND: 10}  # route deliveries before long jobs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    body BLOB,
    received_at REAL NOT NULL,
    job_id INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_digest ON deliveries(body_sha256);
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries(received_at);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    key TEXT,
    supersede_token TEXT,
    dedupe TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    run_after REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(state, priority DESC, id);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key, state);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(state, finished_at);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedupe ON jobs(kind, dedupe)
    WHERE dedupe IS NOT NULL AND state IN ('queued', 'running', 'done');
CREATE TABLE IF NOT EXISTS quota_usage (
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    at REAL NOT NULL,
    job_id INTEGER
);
CREATE INDEX IF NOT EXISTS quota_usage_subject ON quota_usage(scope, subject, at);
"""

#: Columns added after the first release, with their definitions: added to an older
#: queue file when it is opened (``ALTER TABLE``), then indexed.
_ADDED_COLUMNS = {
    "coalesce": "TEXT",
    "installation_id": "INTEGER",
    "limited": "INTEGER NOT NULL DEFAULT 0",
}
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_coalesce ON jobs(kind, coalesce, state) WHERE coalesce IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_installation ON jobs(installation_id, state) WHERE limited = 1;
"""


class Completion:
    """What :meth:`SQLiteQueue.complete` did: truthy when this worker still held the job;
    ``admissions`` pairs every follow-up spec with its :class:`Admission`."""

    __slots__ = ("held", "admissions")

    def __init__(self, held: bool, admissions: list[tuple[JobSpec, Admission]] | None = None):
        self.held = held
        self.admissions = admissions or []

    def __bool__(self) -> bool:
        return self.held

    def __repr__(self) -> str:
        return f"Completion(held={self.held}, admissions={self.admissions!r})"


class QueuedJob(Job):
    """A :class:`Job` claimed from a queue: ``is_cancelled()`` asks the queue.

    The answer is cached for ``recheck`` seconds (the worker's heartbeat also pushes a
    cancellation as soon as it sees one), so long jobs may call it in their loops.
    """

    __slots__ = ("lease_owner", "max_attempts", "_queue", "_cancelled", "_checked_at", "recheck")

    def __init__(self, *, queue: Queue, lease_owner: str, max_attempts: int, recheck: float = 1.0, **fields):
        super().__init__(**fields)
        self.lease_owner = lease_owner
        self.max_attempts = max_attempts
        self._queue = queue
        self._cancelled = threading.Event()
        self._checked_at = time.monotonic()
        self.recheck = recheck

    def mark_cancelled(self) -> None:
        self._cancelled.set()

    def is_cancelled(self) -> bool:
        if self._cancelled.is_set():
            return True
        now = time.monotonic()
        if now - self._checked_at >= self.recheck:
            self._checked_at = now
            try:
                if self._queue.is_cancelled(self.id):
                    self._cancelled.set()
            except sqlite3.Error:
                pass  # a busy database is not a cancellation
        return self._cancelled.is_set()


@runtime_checkable
class Queue(Protocol):
    """What the webhook app and the workers need from a queue."""

    def record_delivery(self, delivery_id: str, event: str, body: bytes, *, meta: dict | None = None) -> bool: ...
    def record_deliveries(self, items: list[tuple[str, str, bytes, dict | None]]) -> list[bool]: ...
    def delivery_body(self, delivery_id: str) -> bytes | None: ...
    def enqueue(self, spec: JobSpec) -> int | None: ...
    def submit(self, spec: JobSpec) -> Admission: ...
    def claim(self, worker_id: str, lease_seconds: float, kinds: Iterable[str] | None = None) -> QueuedJob | None: ...
    def heartbeat(self, job_id: int, worker_id: str, lease_seconds: float) -> bool: ...
    def complete(self, job_id: int, *, owner: str | None = None, enqueue: Iterable[JobSpec] = ()) -> Completion: ...
    def fail(self, job_id: int, error: str, retry_in: float | None, *, owner: str | None = None) -> str: ...
    def release(self, job_id: int, *, owner: str | None = None) -> bool: ...
    def cancel_superseded(self, key: str, kind: str, token: str) -> int: ...
    def is_cancelled(self, job_id: int) -> bool: ...
    def stats(self) -> dict[str, Any]: ...
    def ping(self) -> bool: ...


class SQLiteQueue:
    """The default :class:`Queue`: one SQLite file, WAL mode, one connection per thread."""

    def __init__(self, path: str | os.PathLike, *, synchronous: str = "FULL", busy_timeout_ms: int = 30_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        db = self._conn()
        db.executescript(_SCHEMA)
        have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        for name, definition in _ADDED_COLUMNS.items():
            if name not in have:
                try:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")
                except sqlite3.OperationalError as e:  # another process added it meanwhile
                    if "duplicate column" not in str(e):
                        raise
        db.executescript(_ADDED_INDEXES)

    # -- connections ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_ms / 1000
            )
            db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.sync = self.synchronous
            db.row_factory = sqlite3.Row
            self._local.db = db
            self._local.pid = os.getpid()
            with self._lock:
                self._all.append(db)
        return db

    @contextmanager
    def _tx(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction taken with ``BEGIN IMMEDIATE`` (the write lock up front).

        ``durable`` transactions (storing deliveries) commit with the configured
        ``synchronous`` level (FULL by default: fsync before the webhook is answered).
        Job bookkeeping (claims, leases, outcomes, follow-ups) commits with NORMAL: in WAL
        mode that survives a process crash; a power cut may lose the last such commits,
        which only means a job runs again (at-least-once, idempotent side effects), and
        the next durable commit's fsync covers them anyway (WAL frames are ordered).
        """
        db = self._conn()
        level = self.synchronous if durable else "NORMAL"
        if self._local.sync != level:
            db.execute(f"PRAGMA synchronous={level}")
            self._local.sync = level
        # Threads of this process queue on a mutex for the write lock: SQLite's own busy
        # handler sleeps 1, 2, 5, 10... ms between retries, which adds tens of ms of
        # latency under load. Other processes still meet ``busy_timeout``.
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this object opened (call once, at shutdown)."""
        with self._lock:
            for db in self._all:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

    # -- deliveries ----------------------------------------------------------------
    def record_delivery(self, delivery_id: str, event: str, body: bytes, *, meta: dict | None = None) -> bool:
        """Store a delivery and its ``delivery`` job in one transaction.

        False (nothing stored) when the delivery id or the exact body was seen before.
        """
        return self.record_deliveries([(delivery_id, event, body, meta)])[0]

    def record_deliveries(self, items: list[tuple[str, str, bytes, dict | None]]) -> list[bool]:
        """``record_delivery`` for many deliveries in ONE transaction (one fsync): the
        webhook app batches concurrent requests through this (group commit). Items are
        ``(delivery_id, event, body, meta)``; a duplicate within the batch is detected too."""
        now = time.time()
        out: list[bool] = []
        with self._tx(durable=True) as db:
            for delivery_id, event, body, meta in items:
                digest = hashlib.sha256(body).hexdigest()
                seen = db.execute(
                    "SELECT 1 FROM deliveries WHERE id = ? OR body_sha256 = ? LIMIT 1", (delivery_id, digest)
                ).fetchone()
                if seen:
                    out.append(False)
                    continue
                payload = {"delivery_id": delivery_id, "event": event, **(meta or {})}
                job_id = self._insert(db, JobSpec(kind=DELIVERY_KIND, payload=payload, max_attempts=5), now).job_id
                db.execute(
                    "INSERT INTO deliveries (id, event, body_sha256, body, received_at, job_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (delivery_id, event, digest, body, now, job_id),
                )
                out.append(True)
        return out

    def delivery_body(self, delivery_id: str) -> bytes | None:
        row = self._conn().execute("SELECT body FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return bytes(row["body"]) if row and row["body"] is not None else None

    # -- enqueue -------------------------------------------------------------------
    def enqueue(self, spec: JobSpec) -> int | None:
        """Add a job; None when it was not added (deduplicated, coalesced or refused).
        Supersedes older jobs of its key and kind. :meth:`submit` says which."""
        admission = self.submit(spec)
        return admission.job_id if admission.outcome == ENQUEUED else None

    def submit(self, spec: JobSpec) -> Admission:
        """Admit ``spec``: enqueue it, or say why not (one transaction)."""
        with self._tx() as db:
            return self._insert(db, spec, time.time())

    def _admission(self, db: sqlite3.Connection, spec: JobSpec, now: float) -> Admission | None:
        """The admission of a spec that is not a new job (None: insert it)."""
        if spec.dedupe is not None:
            dup = db.execute(
                "SELECT id FROM jobs WHERE kind = ? AND dedupe = ? AND state IN ('queued', 'running', 'done') LIMIT 1",
                (spec.kind, spec.dedupe),
            ).fetchone()
            if dup:
                return Admission(DUPLICATE, job_id=int(dup[0]))
        if spec.coalesce is not None:
            same = db.execute(
                "SELECT id FROM jobs WHERE kind = ? AND coalesce = ? AND state IN ('queued', 'running')"
                " AND cancel_requested = 0 ORDER BY id LIMIT 1",
                (spec.kind, spec.coalesce),
            ).fetchone()
            if same:
                return Admission(COALESCED, job_id=int(same[0]))
        if spec.queue_limit and spec.installation_id is not None:
            sql = "SELECT COUNT(*) FROM jobs WHERE installation_id = ? AND limited = 1 AND state = 'queued'"
            args: tuple = (spec.installation_id,)
            if spec.key is not None and spec.supersede_token is not None:  # jobs this one would replace
                for kind in (spec.kind, *spec.also_supersedes):
                    sql += " AND NOT (key = ? AND kind = ? AND supersede_token IS NOT ?)"
                    args += (spec.key, kind, spec.supersede_token)
            if db.execute(sql, args).fetchone()[0] >= spec.queue_limit:
                return Admission(REFUSED, reason="queue_full", limit=spec.queue_limit)
        for quota in spec.quotas:
            if quota.limit <= 0:
                continue
            used, oldest = db.execute(
                "SELECT COUNT(*), MIN(at) FROM quota_usage WHERE scope = ? AND subject = ? AND at > ?",
                (quota.scope, quota.subject, now - quota.window),
            ).fetchone()
            if used >= quota.limit:
                return Admission(
                    REFUSED,
                    reason=f"{quota.scope}_quota",
                    limit=quota.limit,
                    retry_after=max(0.0, oldest + quota.window - now),
                )
        return None

    def _insert(self, db: sqlite3.Connection, spec: JobSpec, now: float) -> Admission:
        admission = self._admission(db, spec, now)
        if admission is not None:
            return admission
        if spec.key is not None and spec.supersede_token is not None:
            for kind in (spec.kind, *spec.also_supersedes):
                self._supersede(db, spec.key, kind, spec.supersede_token, now)
        cur = db.execute(
            "INSERT INTO jobs (kind, payload, key, supersede_token, dedupe, priority, max_attempts, run_after,"
            " created_at, coalesce, installation_id, limited) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                spec.kind,
                json.dumps(spec.payload, separators=(",", ":")),
                spec.key,
                spec.supersede_token,
                spec.dedupe,
                _PRIORITY.get(spec.kind, 0),
                max(1, int(spec.max_attempts)),
                now,
                now,
                spec.coalesce,
                spec.installation_id,
                1 if spec.queue_limit else 0,
            ),
        )
        job_id = int(cur.lastrowid)
        for quota in spec.quotas:
            if quota.limit > 0:
                db.execute(
                    "INSERT INTO quota_usage (scope, subject, at, job_id) VALUES (?, ?, ?, ?)",
                    (quota.scope, quota.subject, now, job_id),
                )
        return Admission(ENQUEUED, job_id=job_id)

    def _supersede(self, db: sqlite3.Connection, key: str, kind: str, token: str, now: float) -> int:
        n = db.execute(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, last_error = 'superseded'"
            " WHERE key = ? AND kind = ? AND state = 'queued' AND supersede_token IS NOT ?",
            (now, key, kind, token),
        ).rowcount
        n += db.execute(
            "UPDATE jobs SET cancel_requested = 1"
            " WHERE key = ? AND kind = ? AND state = 'running' AND supersede_token IS NOT ? AND cancel_requested = 0",
            (key, kind, token),
        ).rowcount
        return n

    def cancel_superseded(self, key: str, kind: str, token: str) -> int:
        """Cancel queued / flag running jobs of ``key``+``kind`` whose token is not ``token``."""
        with self._tx() as db:
            return self._supersede(db, key, kind, token, time.time())

    # -- claim and lease -----------------------------------------------------------
    def _reap(self, db: sqlite3.Connection, now: float) -> None:
        """Expired leases: cancel flagged ones, bury exhausted ones, requeue the rest."""
        db.execute(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, lease_owner = NULL, last_error = 'superseded'"
            " WHERE state = 'running' AND lease_until < ? AND cancel_requested = 1",
            (now, now),
        )
        db.execute(
            "UPDATE jobs SET state = 'dead', finished_at = ?, lease_owner = NULL,"
            " last_error = 'lease expired after ' || attempts || ' attempt(s) (worker lost); last error: '"
            " || COALESCE(last_error, 'none')"
            " WHERE state = 'running' AND lease_until < ? AND attempts >= max_attempts",
            (now, now),
        )
        db.execute(
            "UPDATE jobs SET state = 'queued', run_after = ?, lease_owner = NULL, lease_until = NULL,"
            " last_error = 'lease expired (worker lost)'"
            " WHERE state = 'running' AND lease_until < ?",
            (now, now),
        )

    def claim(self, worker_id: str, lease_seconds: float, kinds: Iterable[str] | None = None) -> QueuedJob | None:
        """Lease the next ready job (highest priority, oldest first) whose key is free;
        with ``kinds``, only a job of one of those kinds."""
        now = time.time()
        only, kind_args = "", ()
        if kinds is not None:
            kind_args = tuple(kinds)
            only = f" AND kind IN ({', '.join('?' * len(kind_args))})"
        # A read first (no write lock, no fsync): idle workers polling an empty queue
        # never contend with the webhook's writes.
        ready, expired = (
            self._conn()
            .execute(
                f"SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND run_after <= ?{only}),"
                " EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND lease_until < ?)",
                (now, *kind_args, now),
            )
            .fetchone()
        )
        if not ready and not expired:
            return None
        with self._tx() as db:
            if expired:
                self._reap(db, now)
            row = db.execute(
                f"SELECT * FROM jobs AS j WHERE state = 'queued' AND run_after <= ?{only}"
                " AND (key IS NULL OR NOT EXISTS"
                "      (SELECT 1 FROM jobs AS r WHERE r.key = j.key AND r.state = 'running'))"
                " ORDER BY priority DESC, id LIMIT 1",
                (now, *kind_args),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?,"
                " started_at = ? WHERE id = ?",
                (worker_id, now + lease_seconds, now, row["id"]),
            )
        return QueuedJob(
            queue=self,
            lease_owner=worker_id,
            max_attempts=row["max_attempts"],
            id=row["id"],
            kind=row["kind"],
            payload=json.loads(row["payload"]),
            key=row["key"],
            attempts=row["attempts"] + 1,
            supersede_token=row["supersede_token"],
        )

    def heartbeat(self, job_id: int, worker_id: str, lease_seconds: float) -> bool:
        """Extend the lease; False when this worker no longer holds the job."""
        now = time.time()
        with self._tx() as db:
            return (
                db.execute(
                    "UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'running' AND lease_owner = ?",
                    (now + lease_seconds, job_id, worker_id),
                ).rowcount
                == 1
            )

    def is_cancelled(self, job_id: int) -> bool:
        row = self._conn().execute("SELECT state, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row) and (row["state"] == "cancelled" or bool(row["cancel_requested"]))

    # -- outcomes ------------------------------------------------------------------
    @staticmethod
    def _owned(owner: str | None) -> tuple[str, tuple]:
        return (" AND lease_owner = ?", (owner,)) if owner is not None else ("", ())

    def complete(self, job_id: int, *, owner: str | None = None, enqueue: Iterable[JobSpec] = ()) -> Completion:
        """Mark done and submit follow-up jobs atomically. The answer is falsy when the
        lease was lost; its ``admissions`` say what became of each follow-up.

        A job whose cancellation was requested ends ``cancelled`` (its follow-ups dropped).
        """
        now = time.time()
        cond, args = self._owned(owner)
        with self._tx() as db:
            row = db.execute(
                f"SELECT cancel_requested FROM jobs WHERE id = ? AND state = 'running'{cond}", (job_id, *args)
            ).fetchone()
            if row is None:
                return Completion(False)
            if row["cancel_requested"]:
                db.execute(
                    "UPDATE jobs SET state = 'cancelled', finished_at = ?, lease_owner = NULL, last_error = 'superseded'"
                    " WHERE id = ?",
                    (now, job_id),
                )
                return Completion(True)
            db.execute(
                "UPDATE jobs SET state = 'done', finished_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (now, job_id),
            )
            admissions = [(spec, self._insert(db, spec, now)) for spec in enqueue]
        return Completion(True, admissions)

    def fail(self, job_id: int, error: str, retry_in: float | None, *, owner: str | None = None) -> str:
        """Record a failure: retried after ``retry_in`` s, or ``dead`` when attempts are
        exhausted or ``retry_in`` is None. Returns the new state ('' if the lease was lost)."""
        now = time.time()
        cond, args = self._owned(owner)
        error = (error or "error")[:4000]
        with self._tx() as db:
            row = db.execute(
                f"SELECT attempts, max_attempts, cancel_requested FROM jobs WHERE id = ? AND state = 'running'{cond}",
                (job_id, *args),
            ).fetchone()
            if row is None:
                return ""
            if row["cancel_requested"]:
                state = "cancelled"
            elif retry_in is None or row["attempts"] >= row["max_attempts"]:
                state = "dead"
            else:
                state = "queued"
            db.execute(
                "UPDATE jobs SET state = ?, last_error = ?, lease_owner = NULL, lease_until = NULL,"
                " run_after = ?, finished_at = ? WHERE id = ?",
                (state, error, now + (retry_in or 0), None if state == "queued" else now, job_id),
            )
        return state

    def release(self, job_id: int, *, owner: str | None = None) -> bool:
        """Give a running job back unrun (graceful shutdown): the attempt is not counted.
        A job superseded meanwhile ends ``cancelled`` instead of going back to the queue."""
        cond, args = self._owned(owner)
        now = time.time()
        with self._tx() as db:
            return (
                db.execute(
                    "UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,"
                    " finished_at = CASE WHEN cancel_requested THEN ? ELSE NULL END,"
                    " attempts = MAX(attempts - 1, 0), lease_owner = NULL,"
                    f" lease_until = NULL, run_after = ? WHERE id = ? AND state = 'running'{cond}",
                    (now, now, job_id, *args),
                ).rowcount
                == 1
            )

    # -- inspection and upkeep -----------------------------------------------------
    def ping(self) -> bool:
        """True when the database answers a read."""
        try:
            self._conn().execute("SELECT 1 FROM jobs LIMIT 1").fetchall()
            return True
        except sqlite3.Error:
            return False

    def get(self, job_id: int) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["payload"] = json.loads(out["payload"])
        return out

    def jobs(self, *, kind: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        """Rows of jobs (for operators and tests), oldest first."""
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        if kind:
            sql, args = sql + " AND kind = ?", [*args, kind]
        if state:
            sql, args = sql + " AND state = ?", [*args, state]
        rows = self._conn().execute(sql + " ORDER BY id", args).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    def stats(self) -> dict[str, Any]:
        """Counts for /metrics and /healthz: jobs by (kind, state), depth, deliveries, dead."""
        db = self._conn()
        by = {(r[0], r[1]): r[2] for r in db.execute("SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state")}
        now = time.time()
        ready = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND run_after <= ?", (now,)).fetchone()[0]
        oldest = db.execute(
            "SELECT MIN(created_at) FROM jobs WHERE state = 'queued' AND run_after <= ?", (now,)
        ).fetchone()[0]
        retries = db.execute("SELECT COALESCE(SUM(attempts - 1), 0) FROM jobs WHERE attempts > 1").fetchone()[0]
        deliveries = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        return {
            "jobs": by,
            "queued": sum(v for (k, s), v in by.items() if s == "queued"),
            "ready": ready,
            "running": sum(v for (k, s), v in by.items() if s == "running"),
            "dead": sum(v for (k, s), v in by.items() if s == "dead"),
            "oldest_ready_age": (now - oldest) if oldest else 0.0,
            "retries": retries,
            "deliveries": deliveries,
        }

    def prune(self, older_than_seconds: float) -> int:
        """Delete done/cancelled jobs and delivery records older than the window (dead jobs
        are kept for inspection). Returns the number of rows deleted."""
        cutoff = time.time() - older_than_seconds
        with self._tx() as db:
            n = db.execute(
                "DELETE FROM jobs WHERE state IN ('done', 'cancelled') AND finished_at < ?", (cutoff,)
            ).rowcount
            n += db.execute("DELETE FROM deliveries WHERE received_at < ?", (cutoff,)).rowcount
            # quota windows are an hour: a day of usage is more than any of them needs
            db.execute("DELETE FROM quota_usage WHERE at < ?", (time.time() - max(older_than_seconds, 86400),))
        return n
