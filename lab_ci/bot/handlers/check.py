"""The ``check`` job: fetch the pull request, check its changed leaves in a limited
child process, publish ``lab-ci/schema`` with annotations, then ask for a preview."""

from __future__ import annotations

from lab_ci.bot import render, work
from lab_ci.bot.config import CONFIG_PATH, RepoConfig
from lab_ci.bot.handlers.common import (
    SCHEMA_CHECK,
    fetch_pull_or_skip,
    load_repo_config,
    notify_refused,
    run_or_report,
)
from lab_ci.bot.handlers.preview import preview_spec
from lab_ci.bot.jobs import Job, JobSpec
from lab_ci.bot.payloads import CheckPayload, RepoPayload
from lab_ci.bot.services import Services
from lab_ci.bot.settings import Settings
from lab_ci.check.formats.markdown import render as markdown_report


def check_spec(
    repo: RepoPayload,
    pr: dict,
    delivery_id: str,
    *,
    trigger: str,
    settings: Settings,
    supersede: bool = True,
    author: str = "",
) -> JobSpec:
    """The check of pull request ``pr`` (a GitHub pull request object, or the part of
    it the event gave). Identical checks of one head coalesce; the installation's queue
    limit applies."""
    head = pr.get("head") or {}
    p = CheckPayload(
        **repo.repo_fields(),
        number=int(pr["number"]),
        head_sha=head.get("sha") or "",
        base_ref=(pr.get("base") or {}).get("ref") or repo.default_branch,
        draft=bool(pr.get("draft")),
        trigger=trigger,
        author=author or ((pr.get("user") or {}).get("login") or ""),
    )
    return JobSpec(
        "check",
        p.to_dict(),
        key=p.pr_key,
        supersede_token=p.head_sha if supersede else None,
        dedupe=f"{delivery_id}:check",
        coalesce=f"check:{p.pr_key}@{p.head_sha}",
        installation_id=p.installation_id,
        queue_limit=settings.max_queued_per_installation or None,
    )


def job_check(job: Job, p: CheckPayload, services: Services) -> None:
    gh = services.github_for(p.installation_id)
    repo, sha, number = p.repo, p.head_sha, p.number

    def publish(**kw) -> dict:
        return gh.publish_check_run(repo, name=SCHEMA_CHECK, head_sha=sha, external_id=f"pr={number}", **kw)

    cfg, cfg_error = load_repo_config(gh, repo, p.default_branch)
    if cfg_error:
        publish(
            conclusion="failure",
            title=f"Broken {CONFIG_PATH} on {p.default_branch}",
            summary=f"The repository configuration could not be read, so nothing was checked:\n\n{render.fence(cfg_error)}\n\nFix {render.code(CONFIG_PATH)} on the default branch, then comment `/lab check`.",
        )
        return
    is_head, author = True, p.author
    base_ref, draft = p.base_ref, p.draft
    if p.trigger in ("rerequested", "command") or not base_ref:
        # The button/command only knows the head: refresh the PR (state, base, draft).
        pr = gh.get_pull(repo, number)
        if pr.get("state") != "open":
            return
        if pr["head"]["sha"] != sha and p.trigger == "command":
            sha = pr["head"]["sha"]
        is_head = pr["head"]["sha"] == sha
        base_ref, draft = pr["base"]["ref"], bool(pr.get("draft"))
        author = (pr.get("user") or {}).get("login") or author
    publish(
        status="in_progress",
        title="Checking changed leaves",
        summary="Fetching the pull request and checking its changed `qna.yaml` files…",
    )
    fetched = fetch_pull_or_skip(services, gh, job, p, sha, SCHEMA_CHECK, base_ref=base_ref)
    if fetched is None:
        return
    request = work.CheckWork(
        taxonomy=str(fetched.path),
        base=fetched.base_sha,
        head=sha,
        schema_version=cfg.schema_version if cfg.schema_version is not None else "latest",
        strict=cfg.strict,
        paths=list(cfg.paths),
    )
    result = run_or_report(
        services, job, "check", work.CHECK_TARGET, request.to_dict(), publish, failed_title="The check could not run"
    )
    if result is None:
        return
    report = work.report_from_dict(result)
    conclusion = "success" if report.valid else "failure"
    publish(
        conclusion=conclusion,
        title=render.check_title(report),
        summary=render.check_summary(report, markdown=markdown_report(report)),
        annotations=render.annotations(report),
    )
    services.log.info("check %s#%d@%s: %s", repo, number, sha[:12], conclusion)
    changed = [f for f in report.files if f.change != "deleted"]
    # a re-run of an older commit previews nothing (its preview would supersede the head's)
    if report.valid and changed and is_head and not draft and cfg.preview_enabled:
        auto_preview(job, p, sha, base_ref, author, cfg, services)


def auto_preview(job: Job, p: CheckPayload, sha: str, base_ref: str, author: str, cfg: RepoConfig, services: Services):
    """The preview a valid check asks for; a limit that refuses it is shown on the
    ``lab-ci/preview`` check run."""
    spec = preview_spec(
        p,
        sha,
        cfg.samples,
        base_ref=base_ref,
        requested_by=author,
        reason=f"check:{job.id}",
        settings=services.settings,
    )
    admission = services.submit(spec)
    if admission.refused:
        notify_refused(spec, admission, services)
