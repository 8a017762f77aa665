"""Release build requests: who may approve, the state machine, and a SQLite store.

A merge to the default branch creates one *build request* bound to the merge commit.
It shows as the ``lab-ci/build`` check run on that commit, waiting for approval::

    pending --approve--> approved --dispatch--> dispatched --start--> running
       |                    |                       |                    |
       |                    +------ cancel ---------+------ cancel ------+--> cancelled
       +--supersede--> superseded          running/dispatched --finish--> succeeded|failed
       +--cancel-----> cancelled

The decisions (:func:`transition`, :func:`may_approve`, :func:`check_approval`) are
pure; :class:`ApprovalStore` persists requests in its own table of the queue's SQLite
file so approvals survive restarts.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

from lab_ci.bot.commands import sha_matches
from lab_ci.bot.config import ROLES, Approvers

STATES = ("pending", "approved", "dispatched", "running", "succeeded", "failed", "superseded", "cancelled")
FINAL = frozenset({"succeeded", "failed", "superseded", "cancelled"})
_TRANSITIONS = {
    ("pending", "approve"): "approved",
    ("pending", "supersede"): "superseded",
    ("pending", "cancel"): "cancelled",
    ("approved", "dispatch"): "dispatched",
    ("approved", "cancel"): "cancelled",
    ("approved", "start"): "running",
    ("approved", "fail"): "failed",
    ("dispatched", "start"): "running",
    ("dispatched", "cancel"): "cancelled",
    ("dispatched", "succeed"): "succeeded",
    ("dispatched", "fail"): "failed",
    ("running", "succeed"): "succeeded",
    ("running", "fail"): "failed",
    ("running", "cancel"): "cancelled",
}


class InvalidTransition(ValueError):
    pass


def transition(state: str, event: str) -> str:
    """The next state, or :class:`InvalidTransition` (e.g. approving twice)."""
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"cannot {event} a build request that is {state}") from None


def role_rank(role: str | None) -> int:
    """read < triage < write < maintain < admin; unknown/none is -1."""
    return ROLES.index(role) if role in ROLES else -1


def may_approve(role: str | None, team_member: bool, approvers: Approvers) -> bool:
    """True when a user's repository role reaches the configured minimum, or they are
    an active member of one of the configured teams."""
    return role_rank(role) >= role_rank(approvers.permission) or team_member


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str = ""  # user-facing, for the refusal reply (unescaped plain text)


def check_approval(request: BuildRequest | None, given_sha: str | None, *, allowed: bool) -> Verdict:
    """Decide an approval attempt (pure). ``given_sha`` is the sha named by the command
    or the head sha of the check run whose button was pressed."""
    if not allowed:
        return Verdict(False, "only maintainers configured in .github/lab-ci.yaml may approve release builds")
    if request is None:
        return Verdict(False, "there is no release build waiting for approval for that commit")
    if given_sha is None or not sha_matches(given_sha, request.sha):
        return Verdict(False, f"the approval must name the pending merge commit {request.sha[:12]}")
    if request.state != "pending":
        return Verdict(False, f"the build request for {request.sha[:12]} is already {request.state}")
    return Verdict(True)


@dataclass(slots=True)
class BuildRequest:
    id: int
    repo: str  # owner/name
    installation_id: int
    sha: str
    ref: str  # the default branch
    state: str = "pending"
    pr_number: int | None = None
    check_run_id: int | None = None
    approved_by: str | None = None
    executor: str | None = None
    run_id: int | None = None
    run_url: str | None = None
    note: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_COLUMNS = [f.name for f in fields(BuildRequest)]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS lab_ci_build_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    installation_id INTEGER NOT NULL,
    sha TEXT NOT NULL,
    ref TEXT NOT NULL,
    state TEXT NOT NULL,
    pr_number INTEGER,
    check_run_id INTEGER,
    approved_by TEXT,
    executor TEXT,
    run_id INTEGER,
    run_url TEXT,
    note TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (repo, sha)
);
CREATE INDEX IF NOT EXISTS lab_ci_build_requests_state ON lab_ci_build_requests (repo, state);
"""


class ApprovalStore:
    """Build requests in SQLite (``lab_ci_build_requests`` table, WAL mode). Safe to
    share between threads; every method is one short transaction."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _row(self, row) -> BuildRequest | None:
        return None if row is None else BuildRequest(**{k: row[k] for k in _COLUMNS})

    def create(
        self, *, repo: str, installation_id: int, sha: str, ref: str, pr_number: int | None = None
    ) -> tuple[BuildRequest, bool]:
        """The request for (repo, sha), created if new. Returns (request, created)."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO lab_ci_build_requests (repo, installation_id, sha, ref, state, pr_number, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                (repo, installation_id, sha, ref, pr_number, now, now),
            )
            created = cur.rowcount == 1
            if not created and pr_number is not None:
                self._db.execute(
                    "UPDATE lab_ci_build_requests SET pr_number = ? WHERE repo = ? AND sha = ? AND pr_number IS NULL",
                    (pr_number, repo, sha),
                )
            row = self._db.execute(
                "SELECT * FROM lab_ci_build_requests WHERE repo = ? AND sha = ?", (repo, sha)
            ).fetchone()
        return self._row(row), created

    def get(self, request_id: int) -> BuildRequest | None:
        with self._lock:
            return self._row(
                self._db.execute("SELECT * FROM lab_ci_build_requests WHERE id = ?", (request_id,)).fetchone()
            )

    def by_sha(self, repo: str, sha_prefix: str) -> BuildRequest | None:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM lab_ci_build_requests WHERE repo = ? AND sha LIKE ? ORDER BY id DESC",
                (repo, sha_prefix.lower() + "%"),
            ).fetchall()
        return self._row(rows[0]) if len(rows) == 1 else None

    def active(self, repo: str) -> list[BuildRequest]:
        """Requests not in a final state, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM lab_ci_build_requests WHERE repo = ? AND state NOT IN ('succeeded','failed','superseded','cancelled') ORDER BY id DESC",
                (repo,),
            ).fetchall()
        return [self._row(r) for r in rows]

    def pending_older_than(self, repo: str, request_id: int) -> list[BuildRequest]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM lab_ci_build_requests WHERE repo = ? AND state = 'pending' AND id < ? ORDER BY id",
                (repo, request_id),
            ).fetchall()
        return [self._row(r) for r in rows]

    def apply(self, request_id: int, event: str, **updates) -> BuildRequest:
        """Move a request through the state machine atomically (compare-and-set on the
        state, so two workers cannot both approve)."""
        bad = set(updates) - set(_COLUMNS) - {"state"}
        if bad:
            raise ValueError(f"unknown columns {sorted(bad)}")
        with self._lock:
            row = self._db.execute("SELECT * FROM lab_ci_build_requests WHERE id = ?", (request_id,)).fetchone()
            if row is None:
                raise KeyError(request_id)
            new = transition(row["state"], event)
            sets = {"state": new, "updated_at": time.time(), **updates}
            cols = ", ".join(f"{k} = ?" for k in sets)
            cur = self._db.execute(
                f"UPDATE lab_ci_build_requests SET {cols} WHERE id = ? AND state = ?",
                (*sets.values(), request_id, row["state"]),
            )
            if cur.rowcount != 1:
                raise InvalidTransition(f"build request {request_id} changed concurrently")
            return self._row(
                self._db.execute("SELECT * FROM lab_ci_build_requests WHERE id = ?", (request_id,)).fetchone()
            )

    def update(self, request_id: int, **updates) -> BuildRequest:
        """Set fields that are not the state (check run id, run id/url, note)."""
        bad = set(updates) - set(_COLUMNS) - {"id", "state"}
        if bad or "state" in updates:
            raise ValueError(f"cannot update {sorted(set(updates) - set(_COLUMNS)) or ['state']}")
        with self._lock:
            sets = {**updates, "updated_at": time.time()}
            cols = ", ".join(f"{k} = ?" for k in sets)
            self._db.execute(f"UPDATE lab_ci_build_requests SET {cols} WHERE id = ?", (*sets.values(), request_id))
            return self._row(
                self._db.execute("SELECT * FROM lab_ci_build_requests WHERE id = ?", (request_id,)).fetchone()
            )
