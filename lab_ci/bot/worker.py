"""Job workers: threads that claim jobs from the queue and run them.

What a job gets
---------------
``lab_ci.bot.handlers.run_job(job, services)`` receives the process's
:class:`~lab_ci.bot.services.Services` (settings, queue, metrics, log, GitHub clients,
approval store, mirrors), built once at start-up by ``lab-ci serve``. Tests build one
directly (``Services(settings=..., queue=...)``) and set ``services.github`` themselves.

Threads
-------
``threads`` general threads claim any job; ``light_threads`` more claim only
``light_kinds`` (deliveries, commands, build bookkeeping: jobs that do GitHub I/O and
nothing heavy). While every general thread waits on a long check or preview, the light
lane still routes deliveries and answers ``/lab help``.

Job outcomes
------------
* ``delivery`` jobs: the worker loads the stored body and calls
  ``router(event, payload, delivery_id) -> list[JobSpec]`` (default
  ``lab_ci.bot.handlers.route``); the delivery job is completed and its follow-ups are
  submitted in the *same* transaction (a crash never loses nor duplicates them). A
  follow-up the queue refuses (a full queue, a quota) is handed to ``refused(spec,
  admission, services)`` (default ``lab_ci.bot.handlers.on_refused``), which tells the
  contributor.
* other jobs: ``runner(job, services)`` (default ``lab_ci.bot.handlers.run_job``).
  Returning means done. Raising means a transient failure: retried after an exponential
  backoff (``settings.backoff_base * 2**(attempt-1)``, capped at ``backoff_max``, +-10%
  jitter) until ``max_attempts``, then ``dead`` with the error kept. An exception with an
  attribute ``retryable = False`` (e.g. :class:`~lab_ci.bot.jobs.PermanentError`) makes the
  job dead at once.
* cancellation: ``job.is_cancelled()`` turns true when a newer job superseded this one
  (same key and kind, other ``supersede_token``) or when the worker is shutting down and
  gave the job back; long jobs should check it and return early. A job that ends while
  cancelled is recorded ``cancelled`` (its follow-ups dropped).
* leases: a heartbeat thread extends the lease of every running job every
  ``lease_seconds / 3``; a job whose process dies is run again after the lease expires.
  Jobs on untrusted input are bounded by their isolation limits, so a renewed lease
  never keeps a hostile job alive forever.
* shutdown (``stop``, called on SIGTERM): no new claims; running jobs get ``grace``
  seconds to finish, then are given back to the queue unrun (attempt not counted).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable

from . import handlers
from .jobs import Admission, Job, JobSpec, PermanentError
from .logs import log_event
from .queue import DELIVERY_KIND, Queue, QueuedJob
from .services import Services

Router = Callable[[str, dict, str], list[JobSpec]]
Runner = Callable[[Job, Services], None]
Refused = Callable[[JobSpec, Admission, Services], None]

log = logging.getLogger("lab_ci.bot.worker")


def backoff_delay(
    attempt: int, base: float, cap: float, jitter: float = 0.1, rng: random.Random | None = None
) -> float:
    """Seconds before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``,
    capped at ``cap``, times a random factor in ``[1-jitter, 1+jitter]``."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    if jitter:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    return max(0.0, delay)


class Worker:
    """``threads`` job worker threads plus one heartbeat thread, in this process."""

    def __init__(
        self,
        queue: Queue,
        services: Services,
        *,
        threads: int | None = None,
        light_threads: int | None = None,
        light_kinds: Iterable[str] | None = None,
        router: Router | None = None,
        runner: Runner | None = None,
        refused: Refused | None = None,
        lease_seconds: float | None = None,
        poll_interval: float = 0.5,
        jitter: float = 0.1,
        name: str | None = None,
        grace: float = 30.0,
    ):
        self.queue = queue
        self.services = services
        self.threads = services.settings.workers if threads is None else threads
        light = services.settings.light_workers if light_threads is None else light_threads
        self.light_threads = light if self.threads > 0 else 0  # a lane beside general workers, never alone
        self.light_kinds = tuple(handlers.LIGHT_KINDS if light_kinds is None else light_kinds)
        self.router = router or functools.partial(handlers.route, settings=services.settings)
        self.runner = runner or handlers.run_job
        self.refused = refused or handlers.on_refused
        self.lease_seconds = lease_seconds or services.settings.lease_seconds
        self.poll_interval = poll_interval
        self.jitter = jitter
        self.grace = grace
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._running: dict[int, QueuedJob] = {}
        self._running_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._heartbeat: threading.Thread | None = None
        self._last_prune = 0.0

    # -- lifecycle -----------------------------------------------------------------
    @property
    def configured(self) -> int:
        """Worker threads this worker runs (general and light)."""
        return self.threads + self.light_threads

    def start(self) -> Worker:
        self._stop.clear()
        lanes = [(f"{self.name}/{i}", f"lab-ci-worker-{i}", None) for i in range(self.threads)]
        lanes += [(f"{self.name}/light-{i}", f"lab-ci-light-{i}", self.light_kinds) for i in range(self.light_threads)]
        for worker_id, thread_name, kinds in lanes:
            t = threading.Thread(target=self._loop, args=(worker_id, kinds), name=thread_name, daemon=True)
            t.start()
            self._threads.append(t)
        self._heartbeat = threading.Thread(target=self._beat, name="lab-ci-heartbeat", daemon=True)
        self._heartbeat.start()
        log_event(log, "workers_started", threads=self.threads, light_threads=self.light_threads, worker=self.name)
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming; wait up to ``grace`` s (default ``self.grace``) for running jobs,
        then give them back to the queue."""
        grace = self.grace if grace is None else grace
        self._stop.set()
        self.notify(all_threads=True)
        deadline = time.monotonic() + grace
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._running_lock:
            leftovers = list(self._running.values())
        for job in leftovers:
            job.mark_cancelled()
            released = self.queue.release(job.id, owner=job.lease_owner)
            log_event(log, "job_released", job_id=job.id, kind=job.kind, released=released)
        if self._heartbeat:
            self._heartbeat.join(2.0)
        self._threads = [t for t in self._threads if t.is_alive()]
        log_event(log, "workers_stopped", worker=self.name, released=len(leftovers))

    def notify(self, all_threads: bool = False) -> None:
        """Wake one idle thread (the app calls this after storing a delivery)."""
        with self._wake:
            if all_threads:
                self._wake.notify_all()
            else:
                self._wake.notify()

    def alive(self) -> int:
        """Worker threads alive (for /healthz and /metrics)."""
        return sum(t.is_alive() for t in self._threads)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- threads -------------------------------------------------------------------
    def _loop(self, worker_id: str, kinds: tuple[str, ...] | None) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once(worker_id, kinds)
            except Exception as e:  # a database hiccup: log and keep the thread alive
                log_event(log, "worker_error", logging.ERROR, worker=worker_id, error=f"{type(e).__name__}: {e}")
                ran = False
            if not ran and not self._stop.is_set():
                with self._wake:
                    self._wake.wait(self.poll_interval)

    def _beat(self) -> None:
        interval = max(0.05, self.lease_seconds / 3)
        while not self._stop.wait(interval):
            self.heartbeat_once()
            retention = self.services.settings.retention_days * 86400
            if retention > 0 and time.monotonic() - self._last_prune > 3600:
                self._last_prune = time.monotonic()
                try:
                    self.queue.prune(retention)
                except Exception as e:
                    log_event(log, "prune_error", logging.WARNING, error=str(e))

    def heartbeat_once(self) -> None:
        """Extend the leases of running jobs and pass on cancellations."""
        with self._running_lock:
            jobs = list(self._running.values())
        for job in jobs:
            try:
                held = self.queue.heartbeat(job.id, job.lease_owner, self.lease_seconds)
                if not held or self.queue.is_cancelled(job.id):
                    job.mark_cancelled()
            except Exception as e:
                log_event(log, "heartbeat_error", logging.WARNING, job_id=job.id, error=f"{type(e).__name__}: {e}")

    # -- one job -------------------------------------------------------------------
    def run_once(self, worker_id: str, kinds: Iterable[str] | None = None) -> bool:
        """Claim and run one job (of ``kinds`` only, when given); False when none was ready."""
        job = self.queue.claim(worker_id, self.lease_seconds, kinds=kinds)
        if job is None:
            return False
        with self._running_lock:
            self._running[job.id] = job
        try:
            self._run(job)
        finally:
            with self._running_lock:
                self._running.pop(job.id, None)
        return True

    def _run(self, job: QueuedJob) -> None:
        metrics = self.services.metrics
        t0 = time.monotonic()
        fields = {"job_id": job.id, "kind": job.kind, "key": job.key, "attempt": job.attempts}
        log_event(log, "job_started", logging.DEBUG, **fields)
        try:
            follow_ups: list[JobSpec] = []
            if job.is_cancelled():
                pass  # superseded before it started: complete() records it cancelled
            elif job.kind == DELIVERY_KIND:
                follow_ups = self._route(job)
            else:
                self.runner(job, self.services)
        except Exception as e:
            elapsed = time.monotonic() - t0
            error = f"{type(e).__name__}: {e}"
            if job.is_cancelled():
                self.queue.complete(job.id, owner=job.lease_owner)
                outcome = "cancelled"
            else:
                retry_in = None
                if getattr(e, "retryable", True) and job.attempts < job.max_attempts:
                    s = self.services.settings
                    retry_in = backoff_delay(job.attempts, s.backoff_base, s.backoff_max, self.jitter)
                state = self.queue.fail(job.id, error, retry_in, owner=job.lease_owner)
                outcome = {"queued": "retry", "dead": "dead", "cancelled": "cancelled"}.get(state, "lost")
                if outcome == "retry":
                    metrics.job_retries.labels(kind=job.kind).inc()
                fields["retry_in"] = retry_in
            metrics.jobs_finished.labels(kind=job.kind, outcome=outcome).inc()
            metrics.job_seconds.labels(kind=job.kind).observe(elapsed)
            log_event(
                log, "job_failed", logging.WARNING, **fields, outcome=outcome, error=error, seconds=round(elapsed, 4)
            )
            return
        elapsed = time.monotonic() - t0
        cancelled = job.is_cancelled()
        held = self.queue.complete(job.id, owner=job.lease_owner, enqueue=follow_ups)
        outcome = "lost" if not held else ("cancelled" if cancelled else "done")
        metrics.jobs_finished.labels(kind=job.kind, outcome=outcome).inc()
        metrics.job_seconds.labels(kind=job.kind).observe(elapsed)
        log_event(log, "job_finished", **fields, outcome=outcome, follow_ups=len(follow_ups), seconds=round(elapsed, 4))
        for spec, admission in getattr(held, "admissions", ()):
            metrics.admitted(spec.kind, admission)
            if admission.refused:
                log_event(log, "job_refused", kind=spec.kind, key=spec.key, reason=admission.reason)
                try:
                    self.refused(spec, admission, self.services)
                except Exception as e:  # best effort: GitHub itself may be what is failing
                    log_event(
                        log, "refusal_notice_failed", logging.WARNING, kind=spec.kind, error=f"{type(e).__name__}: {e}"
                    )

    def _route(self, job: QueuedJob) -> list[JobSpec]:
        delivery_id = job.payload["delivery_id"]
        body = self.queue.delivery_body(delivery_id)
        if body is None:
            raise PermanentError(f"delivery {delivery_id} has no stored body (pruned?)")
        try:
            specs = self.router(job.payload["event"], json.loads(body), delivery_id)
            return list(specs or [])
        except Exception as e:
            # route() is pure: the same body fails the same way on every retry, so a
            # router error is permanent (the queue's own errors come from outside here).
            raise PermanentError(f"delivery {delivery_id} could not be routed: {type(e).__name__}: {e}") from e
