"""The ``check`` job: fetch the pull request, check its changed leaves in a limited
child process (strict document rules, documents fetched unless ``LAB_CI_CHECK_DOCUMENTS``
is off, the safe ``--fix`` edits computed), publish ``lab-ci/schema`` with annotations,
post the review of suggested changes (:mod:`lab_ci.bot.suggestions`), then ask for a
preview when every leaf is valid."""

from __future__ import annotations

from pathlib import Path

from lab_ci.bot import render, suggestions, work
from lab_ci.bot.config import CONFIG_PATH, RepoConfig
from lab_ci.bot.github import GitHubError
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
        also_supersedes=("preview",),  # a new head: the older head's preview stops
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
        document_errors=True,
        documents=services.settings.check_documents,
        document_cache=str(Path(services.settings.data_dir).resolve() / "documents"),
        fixes=services.settings.max_suggestions if is_head else 0,
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
    if is_head and services.settings.max_suggestions:
        fixes = [suggestions.FileFix.from_dict(f) for f in result.get("fixes") or ()]
        suggest_fixes(gh, repo, number, sha, fixes, services)
    changed = [f for f in report.files if f.change != "deleted"]
    # a re-run of an older commit previews nothing (its preview would supersede the head's),
    # and neither does a check a newer push superseded while it ran
    if report.valid and changed and is_head and not draft and cfg.preview_enabled and not job.is_cancelled():
        auto_preview(job, p, sha, base_ref, author, cfg, services)


def suggest_fixes(gh, repo: str, number: int, sha: str, fixes: list, services: Services) -> str:
    """ONE review of suggested changes per head (:mod:`lab_ci.bot.suggestions`): the
    head's own review is kept as it is (a redelivered webhook or a re-run posts none);
    the bot's reviews of older heads get an "outdated" body and lose their suggestion
    comments (a COMMENT review cannot be dismissed); then the new review, if there is
    anything to suggest. Only the pull request's current head gets a review: the job of
    an older head that finishes late posts nothing. Returns what happened: "stale",
    "exists", "posted", "refused" or "none"."""
    settings = services.settings
    if (gh.get_pull(repo, number).get("head") or {}).get("sha") != sha:
        return "stale"
    current, older = suggestions.plan(gh.list_reviews(repo, number), settings.bot_login, sha)
    if current is not None:
        return "exists"
    for old in older:
        for c in gh.list_review_comments(repo, number, old["id"]):
            if (c.get("user") or {}).get("login") == settings.bot_login:
                gh.delete_review_comment(repo, c["id"])
        gh.update_review_body(
            repo, number, old["id"], suggestions.outdated_body(suggestions.review_head(old["body"]) or "", sha)
        )
    if not fixes:
        return "none"
    review = suggestions.build_review(fixes, gh.list_pull_files(repo, number), sha, limit=settings.max_suggestions)
    if review is None:
        return "none"
    try:
        gh.create_review(repo, number, review)
    except GitHubError as e:
        if e.status != 422:
            raise  # transient: the job's retry looks for the review first
        # GitHub refused a comment (its diff differs from the one we read, e.g. a push
        # in between): the check run stands; the suggestions are a convenience.
        services.log.warning("check %s#%d@%s: review of suggestions refused: %s", repo, number, sha[:12], e)
        return "refused"
    services.log.info("check %s#%d@%s: %d suggestion(s)", repo, number, sha[:12], len(review["comments"]))
    return "posted"


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
