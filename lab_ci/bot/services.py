"""The objects a job needs, built once at start-up: :class:`Services`.

``lab-ci serve`` builds one :class:`Services` (:func:`build_services`) and hands it to
the workers, which pass it to every job (``run_job(job, services)``):

``settings``   the :class:`~lab_ci.bot.settings.Settings`
``queue``      the durable :class:`~lab_ci.bot.queue.Queue`; follow-up jobs go through
               :meth:`Services.submit` (admission counted in the metrics)
``metrics``    the :class:`~lab_ci.bot.metrics.Metrics`
``log``        the jobs' logger (``lab_ci.bot.jobs``); use :func:`lab_ci.bot.logs.log_event`
``github``     ``installation_id -> GitHubClient`` (:meth:`github_for`); the App's
               :class:`~lab_ci.bot.github.GitHubApp` when built from settings
``approvals``  the :class:`~lab_ci.bot.approvals.ApprovalStore` (in the queue's file)
``mirrors``    the bare git mirrors of taxonomy repositories (``DATA_DIR/mirrors``)

Work on untrusted input goes through :meth:`Services.isolated`, which runs it in a
limited child process (:mod:`lab_ci.bot.isolation`) with the limits of its kind.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab_ci.bot.approvals import ApprovalStore
from lab_ci.bot.github import GitHubApp, Transport
from lab_ci.bot.isolation import LimitExceeded, Limits, run_isolated
from lab_ci.bot.jobs import Admission, Job, JobSpec
from lab_ci.bot.metrics import Metrics
from lab_ci.bot.mirror import Mirrors
from lab_ci.bot.queue import Queue
from lab_ci.bot.settings import Settings
from lab_ci.errors import LabCIError

#: Isolated job kinds and the settings of their limits.
LIMIT_SETTINGS = {
    "check": ("check_timeout", "check_cpu_seconds", "check_memory_mb"),
    "preview": ("preview_timeout", "preview_cpu_seconds", "preview_memory_mb"),
}


@dataclass
class Services:
    """What ``run_job(job, services)`` gets; see the module docstring."""

    settings: Settings
    queue: Queue
    metrics: Metrics = field(default_factory=Metrics)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("lab_ci.bot.jobs"))
    github: Callable[[int | None], Any] | None = None
    github_app: GitHubApp | None = None
    approvals: ApprovalStore | None = None
    mirrors: Mirrors | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)

    def github_for(self, installation_id: int | None) -> Any:
        """A GitHub client acting as the App installation ``installation_id``."""
        if self.github is None:
            raise RuntimeError("no GitHub client factory in the services (services.github)")
        return self.github(installation_id)

    def submit(self, spec: JobSpec) -> Admission:
        """Submit a follow-up job to the queue; refusals and coalescing are counted."""
        admission = self.queue.submit(spec)
        self.metrics.admitted(spec.kind, admission)
        return admission

    def limits(self, kind: str) -> Limits:
        """The limits of an isolated job of ``kind`` (``check`` or ``preview``)."""
        names = LIMIT_SETTINGS[kind]
        wall, cpu, memory = (getattr(self.settings, n) for n in names)
        envs = {k: Settings.__dataclass_fields__[n].metadata["env"] for k, n in zip(("wall", "cpu", "memory"), names)}
        return Limits(wall, cpu, memory, nice=self.settings.job_nice, settings=envs)

    def isolated(self, kind: str, target: str, request: dict, job: Job) -> dict:
        """Run ``target(request)`` in a child process with the limits of ``kind``
        (see :func:`lab_ci.bot.isolation.run_isolated` for its errors). A breached limit
        is counted in ``labci_job_limits_exceeded_total``."""
        workdir = self.data_dir / "jobs" / f"{os.getpid()}-{job.id}-{job.attempts}"
        try:
            return run_isolated(target, request, self.limits(kind), workdir=workdir, cancelled=job.is_cancelled)
        except LimitExceeded as e:
            self.metrics.job_limits.labels(kind=kind, limit=e.limit).inc()
            raise

    def close(self) -> None:
        """Close the cached GitHub HTTP sessions (one per installation)."""
        if self.github_app is not None:
            self.github_app.close()


def prune_job_folders(data_dir: Path) -> int:
    """Remove the working folders that job processes of dead bot processes left behind
    (``DATA_DIR/jobs/<pid>-<job>-<attempt>``; a bot killed mid-job cannot remove its
    own). Folders of live processes, other bots on the same data folder included, stay."""
    removed = 0
    for folder in (Path(data_dir) / "jobs").glob("*-*-*"):
        pid = folder.name.split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive (or another user's)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def build_services(settings: Settings, queue: Queue, metrics: Metrics | None = None, *, github=None) -> Services:
    """The production services: a GitHub App client factory from the settings (unless
    ``github`` is given), the approval store in the queue's file, the mirrors."""
    services = Services(settings=settings, queue=queue, metrics=metrics or Metrics(), github=github)
    if github is None:
        key = settings.private_key_pem()
        if not settings.app_id or not key:
            raise LabCIError(
                "the GitHub App id and private key are required (LAB_CI_APP_ID, LAB_CI_PRIVATE_KEY[_PATH])"
            )
        transport = Transport(
            base_url=settings.github_api_url, timeout=settings.github_timeout, retries=settings.github_retries
        )
        services.github_app = GitHubApp(settings.app_id, key, transport=transport)
        services.github = services.github_app.client
    path = Path(settings.queue_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    services.approvals = ApprovalStore(path)
    services.mirrors = Mirrors(services.data_dir / "mirrors")
    prune_job_folders(services.data_dir)
    return services
