"""Release builds: a merge waits for a maintainer's approval (bound to the exact
commit) on the ``lab-ci/build`` check run, then runs with the configured executor.

Jobs: ``build-request`` (a merge to the default branch), ``approve`` (the button),
``build-dispatch`` (GitHub Actions), ``build-local`` (``lab-ci build`` on this host),
``build-status`` (a ``workflow_run`` event). ``/lab approve-build`` and
``/lab cancel-build`` come through :mod:`.commands` and end here."""

from __future__ import annotations

from pathlib import Path

from lab_ci.bot import render
from lab_ci.bot.approvals import BuildRequest, InvalidTransition, check_approval, may_approve
from lab_ci.bot.config import CONFIG_PATH, RepoConfig
from lab_ci.bot.executors import WORKFLOW_CONCLUSIONS, dispatch_actions, find_dispatched_run, run_local
from lab_ci.bot.github import GitHubError
from lab_ci.bot.handlers.common import BUILD_CHECK, load_repo_config, reply, reply_key
from lab_ci.bot.jobs import Job, JobSpec, PermanentError
from lab_ci.bot.payloads import ApprovePayload, BuildRequestPayload, BuildRunPayload, BuildStatusPayload, RepoPayload
from lab_ci.bot.services import Services

APPROVE_ACTION = {
    "label": "Approve build",
    "identifier": "approve-build",
    "description": "Start the release build of this commit",
}


def build_request_spec(repo: RepoPayload, sha: str, number: int | None) -> JobSpec:
    p = BuildRequestPayload(**repo.repo_fields(), sha=sha, number=number)
    return JobSpec("build-request", p.to_dict(), key=f"{p.repo}@build", dedupe=f"build-request:{p.repo}@{sha}")


def approver(gh, repo: str, user: str, cfg: RepoConfig) -> bool:
    """May ``user`` approve or cancel release builds of ``repo``?"""
    role = gh.collaborator_role(repo, user)
    if may_approve(role, False, cfg.approvers):
        return True
    org = repo.split("/")[0]
    return any(gh.team_member(org, team, user) for team in cfg.approvers.teams)


def publish_build(
    gh,
    request: BuildRequest,
    *,
    status: str = "completed",
    conclusion: str | None = None,
    title: str,
    summary: str,
    actions: list | None = None,
    details_url: str | None = None,
    text: str | None = None,
) -> dict:
    return gh.publish_check_run(
        request.repo,
        name=BUILD_CHECK,
        head_sha=request.sha,
        status=status,
        conclusion=conclusion,
        title=title,
        summary=summary,
        text=text,
        actions=actions if actions is not None else [],
        external_id=f"build={request.id}",
        details_url=details_url,
    )


def job_approve(job: Job, p: ApprovePayload, services: Services) -> None:
    """The "Approve build" button of a ``lab-ci/build`` check run."""
    gh = services.github_for(p.installation_id)
    cfg, _ = load_repo_config(gh, p.repo, p.default_branch)
    allowed = cfg.build_enabled and approver(gh, p.repo, p.user, cfg)
    approve(
        gh, services, cfg, p.repo, p.sha, p.user, number=p.number, allowed=allowed, via="button", key=reply_key(job)
    )


def approve(
    gh, services: Services, cfg: RepoConfig, repo: str, sha: str, user: str, *, number, allowed, via, key
) -> None:
    """Approve the build request of ``sha`` (a button press or ``/lab approve-build``)."""
    store = services.approvals
    request = store.by_sha(repo, sha) if sha else None
    if request is not None and request.state != "pending" and request.approved_by == user and allowed:
        enqueue_run(services, request)  # a re-run of an approval that already went through
        return
    verdict = check_approval(request, sha, allowed=allowed)
    if not verdict.ok:
        services.log.info("approval refused for %s on %s: %s", user, repo, verdict.reason)
        number = number or (request.pr_number if request else None)
        if number:
            reply(gh, repo, number, user, f"sorry, {render.text(verdict.reason)}. Nothing was approved.", key=key)
        return
    try:
        request = store.apply(request.id, "approve", approved_by=user, executor=cfg.executor)
    except InvalidTransition:
        return
    publish_build(
        gh,
        request,
        status="in_progress",
        title=f"Approved by {user}",
        summary=f"Release build of {render.code(request.sha)} approved by {render.text(user)} (via {via}); starting it with the {render.code(cfg.executor)} executor.",
    )
    if number and via == "command":
        reply(gh, repo, number, user, f"approved the release build of {render.code(request.sha[:12])}.", key=key)
    enqueue_run(services, request)


def enqueue_run(services: Services, request: BuildRequest) -> None:
    kind = "build-local" if request.executor == "local" else "build-dispatch"
    p = BuildRunPayload(repo=request.repo, installation_id=request.installation_id, request_id=request.id)
    services.submit(
        JobSpec(kind, p.to_dict(), key=f"{request.repo}@build-run", dedupe=f"{kind}:{request.repo}:{request.id}")
    )


def cancel(gh, services: Services, repo: str, number: int, sha: str | None, user: str, *, key: str) -> None:
    """``/lab cancel-build [<sha>]``: cancel a pending or running release build."""
    store = services.approvals
    request = store.by_sha(repo, sha) if sha else next(iter(store.active(repo)), None)
    if request is None or request.state in ("succeeded", "failed", "superseded", "cancelled"):
        which = f" for {render.code(sha)}" if sha else ""
        reply(gh, repo, number, user, f"there is no pending or running release build to cancel{which}.", key=key)
        return
    request = store.apply(request.id, "cancel", note=f"cancelled by {user}")
    publish_build(
        gh,
        request,
        conclusion="cancelled",
        title=f"Cancelled by {user}",
        summary=f"The release build of {render.code(request.sha)} was cancelled by {render.text(user)}."
        + (f" The workflow run {request.run_url} may need cancelling in the Actions tab." if request.run_url else ""),
    )
    reply(gh, repo, number, user, f"cancelled the release build of {render.code(request.sha[:12])}.", key=key)


def job_build_request(job: Job, p: BuildRequestPayload, services: Services) -> None:
    gh = services.github_for(p.installation_id)
    repo, sha = p.repo, p.sha
    cfg, cfg_error = load_repo_config(gh, repo, p.default_branch)
    if not cfg.build_enabled and not cfg_error:
        return
    store = services.approvals
    request, created = store.create(
        repo=repo, installation_id=int(p.installation_id), sha=sha, ref=p.default_branch, pr_number=p.number
    )
    if request.state != "pending":
        return
    if cfg_error:
        publish_build(
            gh,
            request,
            conclusion="action_required",
            title=f"Broken {CONFIG_PATH}",
            summary=f"Fix the configuration before approving:\n\n{render.fence(cfg_error)}",
        )
        return
    who = f"`{cfg.approvers.permission}`" + (
        f" or members of {', '.join(render.code(t) for t in cfg.approvers.teams)}" if cfg.approvers.teams else ""
    )
    run = publish_build(
        gh,
        request,
        conclusion="action_required",
        title="Waiting for approval",
        summary=(
            f"Release build of merge commit {render.code(sha)} (request {request.id}) is waiting for approval.\n\n"
            f"People with the {who} role can press **Approve build** above, or comment `/lab approve-build {sha[:12]}` on the pull request."
        ),
        actions=[APPROVE_ACTION],
    )
    store.update(request.id, check_run_id=run["id"])
    for old in store.pending_older_than(repo, request.id):
        old = store.apply(old.id, "supersede", note=f"superseded by {sha}")
        publish_build(
            gh,
            old,
            conclusion="skipped",
            title=f"Superseded by {sha[:12]}",
            summary=f"A newer merge ({render.code(sha)}) replaced this unapproved build request.",
        )


def job_build_dispatch(job: Job, p: BuildRunPayload, services: Services) -> None:
    gh = services.github_for(p.installation_id)
    store = services.approvals
    request = store.get(int(p.request_id))
    if request is None or request.state != "approved":
        return
    cfg, _ = load_repo_config(gh, request.repo, request.ref)
    try:
        # Idempotent: a retry of this job (the POST may have gone through before an
        # error answer) first looks for the run the earlier attempt started.
        earlier = find_dispatched_run(gh, request.repo, workflow=cfg.workflow, request_id=request.id, sha=request.sha)
        if earlier is not None:
            request = store.update(request.id, run_id=int(earlier["id"]), run_url=earlier.get("html_url"))
        else:
            dispatch_actions(
                gh, request.repo, workflow=cfg.workflow, ref=request.ref, request_id=request.id, sha=request.sha
            )
    except GitHubError as e:
        if e.transient:
            raise
        request = store.apply(request.id, "fail", note=str(e)[:500])
        publish_build(
            gh,
            request,
            conclusion="failure",
            title="Could not start the build workflow",
            summary=f"{render.text(str(e))}\n\nCheck `build.workflow` in `.github/lab-ci.yaml` and that the workflow has `on: workflow_dispatch`.",
        )
        return
    request = store.apply(request.id, "dispatch", executor="actions")
    publish_build(
        gh,
        request,
        status="in_progress",
        title="Build dispatched",
        summary=f"Workflow {render.code(cfg.workflow)} was dispatched for {render.code(request.sha)}; this check updates when it runs.",
    )


def job_build_local(job: Job, p: BuildRunPayload, services: Services) -> None:
    gh = services.github_for(p.installation_id)
    store = services.approvals
    settings = services.settings
    request = store.get(int(p.request_id))
    if request is None or request.state not in ("approved", "running"):
        return
    if not settings.allow_local_executor:
        request = store.apply(request.id, "fail", note="local executor disabled")
        publish_build(
            gh,
            request,
            conclusion="failure",
            title="Local executor disabled",
            summary="This bot does not run builds locally (`LAB_CI_LOCAL_EXECUTOR` is not set). Use `executor: actions`.",
        )
        return
    tmpl = settings.git_url_template
    url = tmpl.format(repo=request.repo) if tmpl else f"https://github.com/{request.repo}.git"
    mirrors = services.mirrors
    mirrors.fetch_ref(request.repo, url, request.ref, token=gh.token())
    if not mirrors.has_commit(mirrors.path_for(request.repo), request.sha):
        raise PermanentError(f"merge commit {request.sha} is not on {request.ref}")
    if request.state == "approved":
        request = store.apply(request.id, "start")
    publish_build(
        gh,
        request,
        status="in_progress",
        title="Building locally",
        summary=f"`lab-ci build` is running for {render.code(request.sha)}.",
    )
    out = Path(services.data_dir) / "builds" / f"{request.id}"

    def cancelled() -> bool:
        cur = store.get(request.id)
        return job.is_cancelled() or (cur is not None and cur.state == "cancelled")

    result = run_local(
        list(settings.build_command),
        taxonomy=mirrors.path_for(request.repo),
        sha=request.sha,
        out=out,
        cancelled=cancelled,
    )
    tail = render.fence(result.log_tail or "(no output)")
    if result.returncode is None:
        return  # cancelled: the cancel already updated the check run
    event, conclusion = ("succeed", "success") if result.returncode == 0 else ("fail", "failure")
    request = store.apply(request.id, event, note=f"exit {result.returncode}")
    publish_build(
        gh,
        request,
        conclusion=conclusion,
        title=f"Build {'succeeded' if conclusion == 'success' else 'failed'} ({result.seconds:.0f}s)",
        summary=f"`lab-ci build` exited with {result.returncode} for {render.code(request.sha)}; output in {render.code(str(out))}.",
        text=render.truncate(tail),
    )


def job_build_status(job: Job, p: BuildStatusPayload, services: Services) -> None:
    gh = services.github_for(p.installation_id)
    store = services.approvals
    request = store.get(int(p.request_id))
    if request is None or request.repo != p.repo or p.sha != request.sha:
        services.log.info("workflow_run for unknown build request %s in %s", p.request_id, p.repo)
        return
    if request.state not in ("approved", "dispatched", "running"):  # never a pending one
        services.log.info("workflow_run for build request %s in state %s ignored", request.id, request.state)
        return
    cfg, _ = load_repo_config(gh, request.repo, request.ref)
    if p.path != f".github/workflows/{cfg.workflow}":
        services.log.warning(
            "workflow_run of %r claims build request %s (expected .github/workflows/%s): ignored",
            p.path,
            request.id,
            cfg.workflow,
        )
        return
    url = p.run_url
    if request.run_id is None and p.run_id:
        request = store.update(request.id, run_id=int(p.run_id), run_url=url)
    if p.action in ("requested", "in_progress"):
        if request.state == "dispatched" and p.action == "in_progress":
            request = store.apply(request.id, "start")
        if request.state in ("dispatched", "running"):
            publish_build(
                gh,
                request,
                status="in_progress",
                title="Building",
                summary=f"The build workflow is {render.text(p.status or 'running')}: {url}",
                details_url=url,
            )
        return
    event, conclusion = WORKFLOW_CONCLUSIONS.get(p.conclusion or "", ("fail", "failure"))
    try:
        request = store.apply(request.id, event, note=f"workflow {p.conclusion}")
    except InvalidTransition:
        return
    publish_build(
        gh,
        request,
        conclusion=conclusion,
        title=f"Build {render.text(p.conclusion or 'finished')}",
        summary=f"The build workflow finished ({render.text(p.conclusion or 'unknown')}): {url}",
        details_url=url,
    )
