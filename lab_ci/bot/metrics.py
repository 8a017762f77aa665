"""Prometheus metrics of the bot, with ``prometheus_client``.

:class:`Metrics` holds one registry per service (the app and its workers share it):
counters and histograms that the process updates (deliveries, job outcomes, durations,
admission refusals, limits), and a custom collector (:class:`QueueCollector`) that reads
the queue's gauges (jobs by kind and state, depth, dead jobs...) and the workers' health
at scrape time, so the numbers are the database's, shared by every process on it. Every
metric is declared once (:data:`PROCESS_METRICS`, :data:`QUEUE_GAUGES`);
:func:`metric_families` lists them for the generated reference.

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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class MetricFamily:
    """One metric the bot exports: its name (a counter's without ``_total``), Prometheus
    type, label names and help (the reference page is generated from these)."""

    name: str
    type: str
    labels: tuple[str, ...]
    help: str


#: What the process counts (attribute of :class:`Metrics` -> family).
PROCESS_METRICS = {
    "deliveries_received": MetricFamily(
        "labci_webhook_deliveries_received", "counter", (), "Webhook requests received (before any check)."
    ),
    "deliveries_accepted": MetricFamily(
        "labci_webhook_deliveries_accepted", "counter", ("event",), "Deliveries stored with their delivery job."
    ),
    "deliveries_rejected": MetricFamily(
        "labci_webhook_deliveries_rejected", "counter", ("reason",), "Webhook requests refused or ignored, by reason."
    ),
    "ack_seconds": MetricFamily(
        "labci_webhook_ack_seconds", "histogram", (), "Time from request start to acknowledgement."
    ),
    "jobs_finished": MetricFamily(
        "labci_jobs_finished", "counter", ("kind", "outcome"), "Job runs finished by this process, by kind and outcome."
    ),
    "job_retries": MetricFamily("labci_job_retries", "counter", ("kind",), "Job failures scheduled for a retry."),
    "job_seconds": MetricFamily("labci_job_duration_seconds", "histogram", ("kind",), "Job run durations."),
    "jobs_refused": MetricFamily(
        "labci_jobs_refused",
        "counter",
        ("kind", "reason"),
        "Jobs refused by a limit (queue_full, pr_quota, user_quota), by kind and reason.",
    ),
    "jobs_coalesced": MetricFamily(
        "labci_jobs_coalesced", "counter", ("kind",), "Requests absorbed by an identical queued or running job."
    ),
    "job_limits": MetricFamily(
        "labci_job_limits_exceeded",
        "counter",
        ("kind", "limit"),
        "Isolated jobs stopped at a limit (wall, cpu, memory), by kind.",
    ),
}
#: Gauges read at scrape time: family -> the queue stats key it shows (None: not a stat).
QUEUE_GAUGES = {
    MetricFamily("labci_jobs", "gauge", ("kind", "state"), "Jobs in the queue by kind and state."): "jobs",
    MetricFamily("labci_queue_depth", "gauge", (), "Queued jobs (ready or waiting for a retry)."): "queued",
    MetricFamily("labci_queue_ready", "gauge", (), "Queued jobs ready to run now."): "ready",
    MetricFamily("labci_jobs_running", "gauge", (), "Jobs leased by a worker."): "running",
    MetricFamily("labci_jobs_dead", "gauge", (), "Jobs that exhausted their attempts (error kept)."): "dead",
    MetricFamily("labci_queue_oldest_ready_seconds", "gauge", (), "Age of the oldest ready job."): "oldest_ready_age",
    MetricFamily("labci_job_attempt_retries", "gauge", (), "Extra attempts over all jobs in the queue."): "retries",
    MetricFamily("labci_deliveries_stored", "gauge", (), "Delivery records kept for deduplication."): "deliveries",
}
WORKERS_ALIVE = MetricFamily("labci_workers_alive", "gauge", (), "Job worker threads alive in this process.")
UPTIME = MetricFamily("labci_uptime_seconds", "gauge", (), "Seconds since this process started.")


def metric_families() -> list[MetricFamily]:
    """Every metric ``GET /metrics`` exports, in the order it exports them."""
    return [*PROCESS_METRICS.values(), *QUEUE_GAUGES, WORKERS_ALIVE, UPTIME]


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
            for family, key in QUEUE_GAUGES.items():
                if family.labels:
                    gauge = GaugeMetricFamily(family.name, family.help, labels=list(family.labels))
                    for labels, n in sorted(stats[key].items()):
                        gauge.add_metric(list(labels), n)
                    yield gauge
                else:
                    yield GaugeMetricFamily(family.name, family.help, value=stats[key])
        if self.metrics.workers_alive is not None:
            yield GaugeMetricFamily(WORKERS_ALIVE.name, WORKERS_ALIVE.help, value=self.metrics.workers_alive())
        yield GaugeMetricFamily(UPTIME.name, UPTIME.help, value=round(time.time() - self.metrics.started, 3))


class Metrics:
    """The bot's metrics (one instance shared by the app and the workers): one
    ``prometheus_client`` counter or histogram per :data:`PROCESS_METRICS` entry, as an
    attribute of the same name, and the scrape-time gauges of :class:`QueueCollector`."""

    def __init__(self) -> None:
        self.started = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        self.stats: Callable[[], dict[str, Any]] | None = None
        self.workers_alive: Callable[[], int] | None = None
        for attr, f in PROCESS_METRICS.items():
            if f.type == "counter":
                metric = Counter(f.name, f.help, f.labels, registry=self.registry)
            else:
                buckets = ACK_BUCKETS if attr == "ack_seconds" else DEFAULT_BUCKETS
                metric = Histogram(f.name, f.help, f.labels, buckets=buckets, registry=self.registry)
            setattr(self, attr, metric)
        self.registry.register(QueueCollector(self))

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
