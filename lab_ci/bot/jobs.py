"""The contract between the webhook service (queue, workers) and the GitHub logic.

The webhook endpoint only verifies and enqueues one ``delivery`` job per accepted
delivery. A worker runs it by calling ``lab_ci.bot.handlers.route(event, payload,
delivery_id)``, a pure function that returns the :class:`JobSpec` list to enqueue
(check, preview, build request, command reply...). Those jobs are then run by
``lab_ci.bot.handlers.run_job(job, services)``, which does the GitHub I/O.

A spec also says how the queue admits it (:meth:`lab_ci.bot.queue.SQLiteQueue.submit`):
``dedupe`` (idempotent enqueue), ``coalesce`` (identical requests share one pending job),
``queue_limit`` (the most such jobs an installation may have waiting) and ``quotas``
(sliding-window limits per pull request or user). The answer is an :class:`Admission`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab_ci.errors import LabCIError


class PermanentError(LabCIError):
    """A job failure that retrying cannot fix: the worker marks the job dead at once.

    Any exception with ``retryable = False`` is treated the same way (e.g. a
    :class:`lab_ci.bot.github.GitHubError` that is not transient)."""

    retryable = False


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` admitted jobs for ``(scope, subject)`` within ``window`` seconds
    (e.g. scope ``"pr"``, subject ``"octo/taxonomy#12"``). ``limit <= 0``: no limit."""

    scope: str
    subject: str
    limit: int
    window: float = 3600.0


@dataclass(frozen=True, slots=True)
class JobSpec:
    kind: str  # e.g. "check", "preview", "build-request", "build-dispatch", "command"
    payload: dict[str, Any] = field(default_factory=dict)
    # Jobs with the same key never run at the same time (e.g. "octo/taxonomy#12").
    key: str | None = None
    # When set, queued or running jobs with the same key and kind whose
    # ``supersede_token`` differs (e.g. an older head sha) are cancelled.
    supersede_token: str | None = None
    # Other kinds the token supersedes too: a new head's check makes the older head's
    # preview stale (it would post a comment about code the pull request no longer has).
    also_supersedes: tuple[str, ...] = ()
    # Idempotency: a second job with the same (kind, dedupe) is not enqueued.
    dedupe: str | None = None
    max_attempts: int = 5
    # Identical requests: while a job of the same kind and ``coalesce`` is queued or
    # running, this one is absorbed by it (e.g. six "/lab preview" of the same head).
    coalesce: str | None = None
    # The installation the job works for, and the most jobs with a queue limit it may
    # have waiting (queued) when this one is submitted; None: no limit.
    installation_id: int | None = None
    queue_limit: int | None = None
    quotas: tuple[Quota, ...] = ()


#: Admission outcomes: a new job, an idempotent repeat, absorbed by an identical
#: pending job, or refused by a limit.
ENQUEUED, DUPLICATE, COALESCED, REFUSED = "enqueued", "duplicate", "coalesced", "refused"


@dataclass(frozen=True, slots=True)
class Admission:
    """What the queue did with a submitted :class:`JobSpec`.

    ``job_id``: the new job (enqueued) or the pending one that absorbed it (coalesced).
    Refused: ``reason`` is ``"queue_full"`` or ``"<scope>_quota"`` (``"pr_quota"``,
    ``"user_quota"``), ``limit`` the limit that was hit, ``retry_after`` the seconds until
    a quota frees a slot (None for a full queue)."""

    outcome: str
    job_id: int | None = None
    reason: str | None = None
    limit: int | None = None
    retry_after: float | None = None

    @property
    def refused(self) -> bool:
        return self.outcome == REFUSED


@dataclass(slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    key: str | None
    attempts: int
    supersede_token: str | None = None

    def is_cancelled(self) -> bool:
        """True once a newer job superseded this one; long jobs check it in their loops.

        A job built outside a queue is never cancelled; jobs claimed from the queue are
        :class:`lab_ci.bot.queue.QueuedJob`, whose ``is_cancelled`` asks the queue."""
        return False
