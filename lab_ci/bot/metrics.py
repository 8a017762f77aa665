"""Prometheus metrics of the bot, with ``prometheus_client``.

:class:`Metrics` holds one registry per service (the app and its workers share it):
counters and histograms that the process updates (deliveries, job outcomes, durations,
admission refusals, limits), and a custom collector (:class:`QueueCollector`) that reads
the queue's gauges (jobs by kind and state, depth, dead jobs...) and the workers' health
at scrape time, so the numbers are the database's, shared by every process on it.

Metric names (stable; ``_total`` is the counter suffix):

=============================================  ==================================================
``labci_webhook_deliveries_received_total``     requests to ``/webhook`` (before any check)
``labci_webhook_deliveries_accepted_total``     stored deliveries, by ``event``
``labci_webhook_deliveries_rejected_total``     refused or ignored requests, by ``reason``
``labci_webhook_ack_seconds``                   histogram: request start to acknowledgement
``labci_jobs_finished_total``                   job runs, by ``kind`` and ``outcome``
``labci_job_retries_total``                     failures scheduled for a retry, by ``kind``
``labci_job_duration_seconds``                  histogram of job runs, by ``kind``
``labci_jobs_refused_total``                    jobs refused by a limit, by ``kind``, ``reason``
                                                (``queue_full``, ``pr_quota``, ``user_quota``)
``labci_jobs_coalesced_total``                  requests absorbed by an identical pending job
``labci_job_limits_exceeded_total``             isolated jobs stopped at a limit, by ``kind``,
                                                ``limit`` (``wall``, ``cpu``, ``memory``)
``labci_jobs``                                  gauge: jobs in the queue by ``kind`` and ``state``
``labci_queue_depth``, ``labci_queue_ready``    queued jobs; those ready to run now
``labci_jobs_running``, ``labci_jobs_dead``     leased jobs; jobs that exhausted their attempts
``labci_queue_oldest_ready_seconds``            age of the oldest ready job
``labci_job_attempt_retries``                   extra attempts over all jobs in the queue
``labci_deliveries_stored``                     delivery records kept for deduplication
``labci_workers_alive``                         worker threads alive in this process
``labci_uptime_seconds``                        seconds since this process started
=============================================  ==================================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lab_ci.bot.jobs import Admission
from lab_ci.bot.logs import log_event

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

# ``*_created`` samples (a counter's creation time) only add noise to our dashboards.
disable_created_metrics()
log = logging.getLogger("lab_ci.bot.metrics")


class QueueCollector(Collector):
    """Gauges read at scrape time from the queue (``stats()``) and the worker."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = None
        if self.metrics.stats is not None:
            try:
                stats = self.metrics.stats()
            except Exception as e:  # still serve the process metrics
                log_event(log, "stats_error", logging.WARNING, error=f"{type(e).__name__}: {e}")
        if stats is not None:
            jobs = GaugeMetricFamily("labci_jobs", "Jobs in the queue by kind and state.", labels=["kind", "state"])
            for (kind, state), n in sorted(stats["jobs"].items()):
                jobs.add_metric([kind, state], n)
            yield jobs
            for name, key, help in (
                ("labci_queue_depth", "queued", "Queued jobs (ready or waiting for a retry)."),
                ("labci_queue_ready", "ready", "Queued jobs ready to run now."),
                ("labci_jobs_running", "running", "Jobs leased by a worker."),
                ("labci_jobs_dead", "dead", "Jobs that exhausted their attempts (error kept)."),
                ("labci_queue_oldest_ready_seconds", "oldest_ready_age", "Age of the oldest ready job."),
                ("labci_job_attempt_retries", "retries", "Extra attempts over all jobs in the queue."),
                ("labci_deliveries_stored", "deliveries", "Delivery records kept for deduplication."),
            ):
                yield GaugeMetricFamily(name, help, value=stats[key])
        if self.metrics.workers_alive is not None:
            yield GaugeMetricFamily(
                "labci_workers_alive", "Job worker threads alive in this process.", value=self.metrics.workers_alive()
            )
        yield GaugeMetricFamily(
            "labci_uptime_seconds",
            "Seconds since this process started.",
            value=round(time.time() - self.metrics.started, 3),
        )


class Metrics:
    """The bot's metrics (one instance shared by the app and the workers)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        self.stats: Callable[[], dict[str, Any]] | None = None
        self.workers_alive: Callable[[], int] | None = None
        r = self.registry
        self.deliveries_received = Counter(
            "labci_webhook_deliveries_received", "Webhook requests received (before any check).", registry=r
        )
        self.deliveries_accepted = Counter(
            "labci_webhook_deliveries_accepted", "Deliveries stored with their delivery job.", ["event"], registry=r
        )
        self.deliveries_rejected = Counter(
            "labci_webhook_deliveries_rejected",
            "Webhook requests refused or ignored, by reason.",
            ["reason"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "labci_webhook_ack_seconds", "Time from request start to acknowledgement.", buckets=ACK_BUCKETS, registry=r
        )
        self.jobs_finished = Counter(
            "labci_jobs_finished",
            "Job runs finished by this process, by kind and outcome.",
            ["kind", "outcome"],
            registry=r,
        )
        self.job_retries = Counter("labci_job_retries", "Job failures scheduled for a retry.", ["kind"], registry=r)
        self.job_seconds = Histogram(
            "labci_job_duration_seconds", "Job run durations.", ["kind"], buckets=DEFAULT_BUCKETS, registry=r
        )
        self.jobs_refused = Counter(
            "labci_jobs_refused",
            "Jobs refused by a limit (queue_full, pr_quota, user_quota), by kind and reason.",
            ["kind", "reason"],
            registry=r,
        )
        self.jobs_coalesced = Counter(
            "labci_jobs_coalesced", "Requests absorbed by an identical queued or running job.", ["kind"], registry=r
        )
        self.job_limits = Counter(
            "labci_job_limits_exceeded",
            "Isolated jobs stopped at a limit (wall, cpu, memory), by kind.",
            ["kind", "limit"],
            registry=r,
        )
        r.register(QueueCollector(self))

    def bind(self, *, stats: Callable[[], dict] | None = None, workers_alive: Callable[[], int] | None = None) -> None:
        """Where the scrape-time gauges come from (the queue's ``stats``, the worker)."""
        if stats is not None:
            self.stats = stats
        if workers_alive is not None:
            self.workers_alive = workers_alive

    def admitted(self, kind: str, admission: Admission) -> None:
        """Count what the queue did with a submitted job (refusals, coalescing)."""
        if admission.refused:
            self.jobs_refused.labels(kind=kind, reason=admission.reason or "refused").inc()
        elif admission.outcome == "coalesced":
            self.jobs_coalesced.labels(kind=kind).inc()

    def render(self) -> bytes:
        """The exposition text (reads the queue: call it off the event loop)."""
        return generate_latest(self.registry)
