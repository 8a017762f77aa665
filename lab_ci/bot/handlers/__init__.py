"""The bot's GitHub logic: :func:`route` decides (pure), :func:`run_job` acts (I/O).

``route(event, payload, delivery_id) -> list[JobSpec]`` turns one webhook delivery into
jobs without any I/O. ``run_job(job, services)`` reads the job's typed payload
(:mod:`lab_ci.bot.payloads`) and calls its handler, which talks to GitHub (through
``services.github_for(installation_id)``), the mirrors and the isolated checker and
previewer. One module per concern:

===================  ===================================================================
:mod:`.check`        ``check``: fetch the PR head, check changed leaves in a limited child
                     process, publish ``lab-ci/schema``; if valid and not a draft, ask for
                     a preview
:mod:`.preview`      ``preview``: ``lab-ci/preview`` (in_progress -> completed) + the sticky
                     comment, generated in a limited child process
:mod:`.commands`     ``command``: a ``/lab ...`` comment: permission check, reply, follow-up
:mod:`.builds`       ``build-request`` (a merge waits for approval), ``approve`` (the button),
                     ``build-dispatch`` / ``build-local`` (executors), ``build-status``
                     (``workflow_run`` events)
:mod:`.common`       check run names, repository config, replies, refusal notices
===================  ===================================================================

Side effects are idempotent, so a job that runs twice (a worker killed mid-job) leaves
one check run per head and name and one sticky comment.
"""

from __future__ import annotations

from collections.abc import Callable

from lab_ci.bot import commands as slash
from lab_ci.bot.executors import parse_run_name
from lab_ci.bot.github import external_field
from lab_ci.bot.handlers.builds import (
    APPROVE_ACTION,
    build_request_spec,
    job_approve,
    job_build_dispatch,
    job_build_local,
    job_build_request,
    job_build_status,
)
from lab_ci.bot.handlers.check import check_spec, job_check
from lab_ci.bot.handlers.commands import job_command
from lab_ci.bot.handlers.common import (
    BUILD_CHECK,
    PREVIEW_CHECK,
    PREVIEW_MARKER,
    SCHEMA_CHECK,
    load_repo_config,
    notify_refused,
    report_giving_up,
)
from lab_ci.bot.handlers.preview import job_preview, resolve_teacher
from lab_ci.bot.jobs import Admission, Job, JobSpec, PermanentError
from lab_ci.bot.payloads import (
    ApprovePayload,
    BuildRequestPayload,
    BuildRunPayload,
    BuildStatusPayload,
    CheckPayload,
    CommandPayload,
    Payload,
    PreviewPayload,
    RepoPayload,
)
from lab_ci.bot.services import Services
from lab_ci.bot.settings import Settings

__all__ = [
    "APPROVE_ACTION",
    "BUILD_CHECK",
    "HANDLERS",
    "LIGHT_KINDS",
    "PREVIEW_CHECK",
    "PREVIEW_MARKER",
    "SCHEMA_CHECK",
    "load_repo_config",
    "on_refused",
    "resolve_teacher",
    "route",
    "run_job",
]

PR_ACTIONS = ("opened", "synchronize", "reopened", "ready_for_review")
ZERO_SHA = "0" * 40

#: job kind -> (payload type, handler)
HANDLERS: dict[str, tuple[type[Payload], Callable[[Job, Payload, Services], None]]] = {
    "check": (CheckPayload, job_check),
    "preview": (PreviewPayload, job_preview),
    "command": (CommandPayload, job_command),
    "approve": (ApprovePayload, job_approve),
    "build-request": (BuildRequestPayload, job_build_request),
    "build-dispatch": (BuildRunPayload, job_build_dispatch),
    "build-local": (BuildRunPayload, job_build_local),
    "build-status": (BuildStatusPayload, job_build_status),
}
#: Kinds the light worker lane runs: GitHub I/O and bookkeeping, nothing that reads a
#: pull request's files or runs a build (those are check, preview and build-local).
LIGHT_KINDS = ("delivery", "command", "approve", "build-request", "build-dispatch", "build-status")


# ---------------------------------------------------------------------------------------
# route(): pure
# ---------------------------------------------------------------------------------------
def _repo_of(payload: dict) -> RepoPayload | None:
    repo = payload.get("repository") or {}
    inst = (payload.get("installation") or {}).get("id")
    if not repo.get("full_name") or inst is None:
        return None
    return RepoPayload(
        repo=repo["full_name"],
        installation_id=int(inst),
        clone_url=repo.get("clone_url") or f"https://github.com/{repo['full_name']}.git",
        default_branch=repo.get("default_branch") or "main",
    )


def _is_bot(user: dict | None) -> bool:
    return (user or {}).get("type") == "Bot" or str((user or {}).get("login", "")).endswith("[bot]")


def _pr_number_of_run(run: dict) -> int | None:
    n = external_field(run.get("external_id"), "pr")
    if n and n.isdigit():
        return int(n)
    prs = run.get("pull_requests") or []
    return int(prs[0]["number"]) if prs else None


def route(event: str, payload: dict, delivery_id: str, *, settings: Settings | None = None) -> list[JobSpec]:
    """The jobs one webhook delivery asks for (pure: no I/O). Unknown or irrelevant
    events give ``[]``. ``settings`` give the admission limits (default: the defaults)."""
    settings = settings or Settings()
    base = _repo_of(payload)
    if base is None:
        return []
    action = payload.get("action")
    if event == "pull_request":
        return _route_pull_request(base, payload, action, delivery_id, settings)
    if event == "push":
        ref, after = payload.get("ref"), payload.get("after") or ""
        if ref == f"refs/heads/{base.default_branch}" and not payload.get("deleted") and after and after != ZERO_SHA:
            return [build_request_spec(base, after, None)]
        return []
    if event == "issue_comment":
        return _route_comment(base, payload, action, delivery_id)
    if event == "check_run":
        return _route_check_run(base, payload, action, delivery_id, settings)
    if event == "workflow_run":
        return _route_workflow_run(base, payload, action, delivery_id)
    return []


def _route_pull_request(base: RepoPayload, payload: dict, action, delivery_id: str, settings: Settings):
    pr = payload.get("pull_request") or {}
    number = int(pr.get("number") or payload.get("number") or 0)
    if action in PR_ACTIONS and pr.get("state", "open") == "open":
        return [check_spec(base, pr, delivery_id, trigger=action, settings=settings)]
    if (
        action == "closed"
        and pr.get("merged")
        and pr.get("merge_commit_sha")
        and (pr.get("base") or {}).get("ref") == base.default_branch
    ):
        return [build_request_spec(base, pr["merge_commit_sha"], number)]
    return []


def _route_comment(base: RepoPayload, payload: dict, action, delivery_id: str) -> list[JobSpec]:
    issue = payload.get("issue") or {}
    comment = payload.get("comment") or {}
    if (
        action != "created"
        or not issue.get("pull_request")
        or _is_bot(payload.get("sender"))
        or _is_bot(comment.get("user"))
        or comment.get("performed_via_github_app")
    ):
        return []
    cmd = slash.parse(comment.get("body") or "", max_samples=slash.MAX_SAMPLES)
    if cmd is None:
        return []
    p = CommandPayload(
        **base.repo_fields(),
        number=int(issue["number"]),
        user=(comment.get("user") or {}).get("login", ""),
        pr_author=(issue.get("user") or {}).get("login", ""),
        comment_id=comment.get("id"),
        command=cmd,
    )
    # commands of a pull request run one at a time, but never wait behind its check or
    # preview (those have the key ``repo#N``): "/lab help" is answered while they run
    return [JobSpec("command", p.to_dict(), key=f"{p.pr_key}/commands", dedupe=f"{delivery_id}:command")]


def _route_check_run(base: RepoPayload, payload: dict, action, delivery_id: str, settings: Settings):
    run = payload.get("check_run") or {}
    name = run.get("name")
    if action == "rerequested" and name in (SCHEMA_CHECK, PREVIEW_CHECK):
        number = _pr_number_of_run(run)
        if number is None:
            return []
        pr_like = {
            "number": number,
            "head": {"sha": run.get("head_sha"), "ref": None},
            "base": {"ref": base.default_branch},
            "draft": False,
        }
        for p in run.get("pull_requests") or []:
            if p.get("number") == number:
                pr_like["base"] = {"ref": (p.get("base") or {}).get("ref", base.default_branch)}
        # no supersede token: re-running an old commit must not cancel the head's check
        return [check_spec(base, pr_like, delivery_id, trigger="rerequested", settings=settings, supersede=False)]
    if action == "requested_action" and name == BUILD_CHECK:
        ident = (payload.get("requested_action") or {}).get("identifier")
        if ident != APPROVE_ACTION["identifier"] or _is_bot(payload.get("sender")):
            return []
        p = ApprovePayload(
            **base.repo_fields(),
            sha=run.get("head_sha") or "",
            user=(payload.get("sender") or {}).get("login", ""),
            via="button",
            number=None,
        )
        return [JobSpec("approve", p.to_dict(), key=f"{p.repo}@build", dedupe=f"{delivery_id}:approve")]
    return []


def _route_workflow_run(base: RepoPayload, payload: dict, action, delivery_id: str) -> list[JobSpec]:
    run = payload.get("workflow_run") or {}
    if run.get("event") != "workflow_dispatch":
        return []  # only the bot dispatches builds; a PR/push run's title proves nothing
    parsed = parse_run_name(run.get("display_title") or run.get("name"))
    if parsed is None or action not in ("requested", "in_progress", "completed"):
        return []
    request_id, sha = parsed
    p = BuildStatusPayload(
        **base.repo_fields(),
        request_id=request_id,
        sha=sha,
        action=action,
        status=run.get("status"),
        conclusion=run.get("conclusion"),
        run_id=run.get("id"),
        run_url=run.get("html_url"),
        path=run.get("path"),
    )
    return [JobSpec("build-status", p.to_dict(), key=f"{p.repo}@build", dedupe=f"{delivery_id}:build-status")]


# ---------------------------------------------------------------------------------------
# run_job(): I/O
# ---------------------------------------------------------------------------------------
def run_job(job: Job, services: Services) -> None:
    """Run one job. Transient failures raise (the queue retries them with backoff);
    permanent ones raise an error with ``retryable = False``; user-facing problems are
    reported on GitHub and the job ends normally."""
    entry = HANDLERS.get(job.kind)
    if entry is None:
        raise PermanentError(f"unknown job kind {job.kind!r}")
    payload_type, handler = entry
    try:
        handler(job, payload_type.from_dict(job.payload), services)
    except Exception as e:
        last = job.attempts >= getattr(job, "max_attempts", 5) or not getattr(e, "retryable", True)
        if last and job.kind in ("check", "preview"):
            report_giving_up(job, services, e)
        raise


def on_refused(spec: JobSpec, admission: Admission, services: Services) -> None:
    """A follow-up of a delivery the queue refused (a full queue): tell the contributor."""
    notify_refused(spec, admission, services)
