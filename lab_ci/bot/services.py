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

``teachers``   the :class:`SharedTeachers`: each teacher spec a preview uses is loaded
               ONCE in this process and served on loopback by a
               :class:`~lab_ci.teacher.service.TeacherService`. A preview's child gets
               the service's URL and a bearer token of its own (``JobTicket.env``)
               instead of the spec, and talks to it with lab-ci's OpenAI backend: it
               never loads the model. Its requests draw on a token budget
               (``LAB_CI_PREVIEW_TOKEN_BUDGET``) and are batched with other previews';
               a superseded or cancelled preview is cancelled at the service. A URL
               teacher (vLLM, llama-server) is reached through the service too
               (forwarded): its address and API key stay in this process, and budgets
               and cancellation apply alike.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab_ci.bot.approvals import ApprovalStore
from lab_ci.bot.github import GitHubApp, Transport
from lab_ci.bot.isolation import JobFailed, LimitExceeded, Limits, run_isolated
from lab_ci.bot.jobs import Admission, Job, JobSpec
from lab_ci.bot.metrics import Metrics
from lab_ci.bot.mirror import Mirrors
from lab_ci.bot.queue import Queue
from lab_ci.bot.settings import Settings
from lab_ci.errors import LabCIError
from lab_ci.teacher import load_teacher
from lab_ci.teacher.service import TeacherService

#: Isolated job kinds and the settings of their limits.
LIMIT_SETTINGS = {
    "check": ("check_timeout", "check_cpu_seconds", "check_memory_mb"),
    "preview": ("preview_timeout", "preview_cpu_seconds", "preview_memory_mb"),
}


class SharedTeachers:
    """The bot's teachers, each loaded once (on the first preview that needs it) and
    shared by every preview job through a :class:`TeacherService` on loopback."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._served: dict[str, tuple[Any, TeacherService]] = {}
        self.loads = 0  # teachers loaded by this process (one per spec)

    def service(self, spec: str) -> TeacherService:
        """The service of ``spec`` (a GGUF path or an OpenAI-compatible URL), started
        on first use; a teacher that cannot be loaded raises ``TeacherError``."""
        with self._lock:
            served = self._served.get(spec)
            if served is None:
                if spec.startswith(("http://", "https://")):
                    teacher = load_teacher(spec)  # forwarded as requests come (streamed, cancellable)
                else:
                    teacher = load_teacher(
                        spec,
                        max_parallel=self.settings.teacher_parallel,
                        prompt_store_mb=self.settings.teacher_prompt_store_mb,
                    )
                self.loads += 1
                try:
                    served = (teacher, TeacherService(teacher).start())
                except BaseException:
                    teacher.close()
                    raise
                self._served[spec] = served
            return served[1]

    def services(self) -> dict[str, TeacherService]:
        """The services started so far, by spec."""
        with self._lock:
            return {spec: svc for spec, (_, svc) in self._served.items()}

    def close(self) -> None:
        """Stop every service (their open jobs are cancelled) and close the teachers."""
        with self._lock:
            served, self._served = list(self._served.values()), {}
        for teacher, service in served:
            service.close()
            teacher.close()


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
    teachers: SharedTeachers | None = None

    def __post_init__(self) -> None:
        if self.teachers is None:
            self.teachers = SharedTeachers(self.settings)

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
        is counted in ``labci_job_limits_exceeded_total``. A preview's ``teacher`` spec
        is replaced by the shared teacher service's URL, with the job's own token and
        budget in the child's environment (:meth:`SharedTeachers.service`)."""
        workdir = self.data_dir / "jobs" / f"{os.getpid()}-{job.id}-{job.attempts}"
        cancelled, env, ticket = job.is_cancelled, None, None
        if kind == "preview" and request.get("teacher") and self.teachers is not None:
            try:
                service = self.teachers.service(request["teacher"])
            except LabCIError as e:  # its words name the bot's model path or server: log only
                self.log.error("preview %s: the teacher %r could not be loaded: %s", job.key, request["teacher"], e)
                raise JobFailed(
                    "the bot's teacher could not be loaded (the operator finds why in the bot's log)"
                ) from None
            ticket = service.open_job(f"preview:{job.key or 'job'}#{job.id}", self.settings.preview_token_budget)
            info = service.teacher.info
            request = {**request, "teacher": ticket.url, "teacher_info": {"id": info.id, "name": info.name}}
            env = ticket.env  # granted after the bot's secrets are removed

            def cancelled() -> bool:
                if job.is_cancelled():  # superseded: its requests stop at the next decoding step
                    service.cancel(ticket.key, "superseded by a newer preview")
                    return True
                return False

        try:
            return run_isolated(target, request, self.limits(kind), workdir=workdir, cancelled=cancelled, grant=env)
        except LimitExceeded as e:
            self.metrics.job_limits.labels(kind=kind, limit=e.limit).inc()
            raise
        finally:
            if ticket is not None:
                usage = service.close_job(ticket)
                self.log.info("%s %s: teacher usage %s", kind, ticket.key, usage)

    def close(self) -> None:
        """Close the cached GitHub HTTP sessions (one per installation) and the shared
        teachers."""
        if self.github_app is not None:
            self.github_app.close()
        if self.teachers is not None:
            self.teachers.close()


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
