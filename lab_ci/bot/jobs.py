"""The contract between the webhook service (queue, workers) and the GitHub logic.

The webhook endpoint only verifies and enqueues one ``delivery`` job per accepted
delivery. A worker runs it by calling ``lab_ci.bot.handlers.route(event, payload,
delivery_id)``, a pure function that returns the :class:`JobSpec` list to enqueue
(check, preview, build request, command reply...). Those jobs are then run by
``lab_ci.bot.handlers.run_job(job, ctx)``, which does the GitHub I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class JobSpec:
    kind: str  # e.g. "check", "preview", "build-request", "build-dispatch", "reply"
    payload: dict[str, Any] = field(default_factory=dict)
    # Jobs with the same key never run at the same time (e.g. "octo/taxonomy#12").
    key: str | None = None
    # When set, queued or running jobs with the same key and kind whose
    # ``supersede_token`` differs (e.g. an older head sha) are cancelled.
    supersede_token: str | None = None
    # Idempotency: a second job with the same (kind, dedupe) is not enqueued.
    dedupe: str | None = None
    max_attempts: int = 5


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
