"""Observability of the bot: Prometheus metrics and structured JSON logs.

Metrics are written in the Prometheus text exposition format (version 0.0.4) by a small
thread-safe registry (counters, gauges, histograms with labels), so the bot needs no
extra package. Process-local counters (deliveries, job outcomes, durations) live here;
queue gauges (jobs by kind and state, depth, dead jobs) are read from the queue at scrape
time by :func:`render`.

Logs: :class:`JsonFormatter` writes one JSON object per line; :func:`log_event` adds
fields, dropping any whose name looks secret (secret, token, password, private key,
authorization, signature, body, payload).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if float(v).is_integer():
        return str(int(v))
    return repr(float(v))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Iterable[str] = ()):
        self.name, self.help, self.labelnames = name, help, tuple(labels)
        self._lock = threading.Lock()
        self._values: dict[tuple, Any] = {}

    def _key(self, labels: dict) -> tuple:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels) -> float:
        return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels(self.labelnames, k)} {_num(v)}" for k, v in items]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, labels: Iterable[str] = (), buckets=DEFAULT_BUCKETS):
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)

    def observe(self, value: float, **labels) -> None:
        key = self._key(labels)
        with self._lock:
            counts, total = self._values.get(key, ([0] * len(self.buckets), 0.0))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            self._values[key] = (counts, total + value)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), s)) for k, (c, s) in self._values.items())
        lines = self.header()
        for key, (counts, total) in items:
            for bound, n in zip(self.buckets, counts):
                le = 'le="' + _num(bound) + '"'
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {n}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_num(total)}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {counts[-1]}")
        return lines


class Metrics:
    """The bot's process-local metrics (one instance shared by the app and the workers)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.deliveries_received = Counter(
            "labci_webhook_deliveries_received_total", "Webhook requests received (before any check)."
        )
        self.deliveries_accepted = Counter(
            "labci_webhook_deliveries_accepted_total", "Deliveries stored with their delivery job.", ["event"]
        )
        self.deliveries_rejected = Counter(
            "labci_webhook_deliveries_rejected_total", "Webhook requests refused or ignored, by reason.", ["reason"]
        )
        self.ack_seconds = Histogram(
            "labci_webhook_ack_seconds",
            "Time from request start to acknowledgement.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.jobs_finished = Counter(
            "labci_jobs_finished_total", "Job runs finished by this process, by kind and outcome.", ["kind", "outcome"]
        )
        self.job_retries = Counter("labci_job_retries_total", "Job failures scheduled for a retry.", ["kind"])
        self.job_seconds = Histogram("labci_job_duration_seconds", "Job run durations.", ["kind"])

    def local(self) -> list[_Metric]:
        return [
            self.deliveries_received,
            self.deliveries_accepted,
            self.deliveries_rejected,
            self.ack_seconds,
            self.jobs_finished,
            self.job_retries,
            self.job_seconds,
        ]

    def render(self, queue_stats: dict[str, Any] | None = None, workers_alive: int | None = None) -> str:
        """The exposition text: local metrics plus queue gauges from ``queue_stats``."""
        lines: list[str] = []
        for m in self.local():
            lines += m.render()
        if queue_stats is not None:
            jobs = Gauge("labci_jobs", "Jobs in the queue by kind and state.", ["kind", "state"])
            for (kind, state), n in queue_stats["jobs"].items():
                jobs.set(n, kind=kind, state=state)
            lines += jobs.render()
            for name, key, help in (
                ("labci_queue_depth", "queued", "Queued jobs (ready or waiting for a retry)."),
                ("labci_queue_ready", "ready", "Queued jobs ready to run now."),
                ("labci_jobs_running", "running", "Jobs leased by a worker."),
                ("labci_jobs_dead", "dead", "Jobs that exhausted their attempts (error kept)."),
                ("labci_queue_oldest_ready_seconds", "oldest_ready_age", "Age of the oldest ready job."),
                ("labci_job_attempt_retries", "retries", "Extra attempts over all jobs in the queue."),
                ("labci_deliveries_stored", "deliveries", "Delivery records kept for deduplication."),
            ):
                g = Gauge(name, help)
                g.set(queue_stats[key])
                lines += g.render()
        if workers_alive is not None:
            g = Gauge("labci_workers_alive", "Job worker threads alive in this process.")
            g.set(workers_alive)
            lines += g.render()
        up = Gauge("labci_uptime_seconds", "Seconds since this process started.")
        up.set(round(time.time() - self.started, 3))
        lines += up.render()
        return "\n".join(lines) + "\n"


# -- structured logs ---------------------------------------------------------------
_SECRET_WORDS = ("secret", "token", "password", "private_key", "authorization", "signature", "body", "payload")


def _safe(name: str) -> bool:
    lowered = name.lower()
    return not any(w in lowered for w in _SECRET_WORDS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event/message and safe extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if _safe(k)})
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(out, default=str, separators=(",", ":"))


def log_event(logger: logging.Logger, message: str, level: int = logging.INFO, /, **fields) -> None:
    """Log ``message`` (an event name) with ``fields`` (secret-looking names dropped)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": {k: v for k, v in fields.items() if _safe(k)}})


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send the ``lab_ci`` and ``uvicorn`` loggers to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("lab_ci", "uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level)
        lg.propagate = False
