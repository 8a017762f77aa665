"""The ``preview`` job: generate a few samples per changed leaf with the bot's teacher,
in a limited child process, and post them as ONE sticky comment.

The repository names a teacher only by a key of the bot's allow-list (``LAB_CI_TEACHERS``);
the spec it maps to (a GGUF path or an OpenAI-compatible URL) is loaded once by the bot
and served to the job process through the teacher service (``Services.isolated``)."""

from __future__ import annotations

from lab_ci.bot import render, work
from lab_ci.bot.config import CONFIG_PATH
from lab_ci.bot.handlers.common import (
    PREVIEW_CHECK,
    PREVIEW_MARKER,
    SCHEMA_CHECK,
    fetch_pull_or_skip,
    load_repo_config,
    run_or_report,
)
from lab_ci.bot.jobs import Job, JobSpec, Quota
from lab_ci.bot.payloads import PreviewPayload, PullPayload
from lab_ci.bot.services import Services
from lab_ci.bot.settings import Settings
from lab_ci.words import plural


def resolve_teacher(requested: str | None, settings: Settings) -> tuple[str | None, str | None]:
    """(spec, error) for a repository's ``preview.teacher`` name (pure).

    The repository only names a key of the server's allow-list; the spec (a file path
    or URL on the bot host) never comes from the repository. No name: the server's
    default (``LAB_CI_TEACHER``, itself a name of the list or a spec)."""
    table = dict(settings.teachers)
    if requested is not None:
        if requested in table:
            return table[requested], None
        offered = ", ".join(render.code(k) for k in table) or "none"
        return (
            None,
            f"`preview.teacher` is {render.code(requested)}, which this bot does not offer (it offers: {offered}). Use one of those names, or remove the key to use the bot's default.",
        )
    if settings.teacher:
        return table.get(settings.teacher, settings.teacher), None
    return None, None


def preview_spec(
    p: PullPayload,
    sha: str,
    samples: int,
    *,
    base_ref: str | None,
    requested_by: str,
    reason: str,
    settings: Settings,
) -> JobSpec:
    """A preview of ``sha``: identical requests (same head, same samples) coalesce;
    it counts against the pull request's and the requesting user's hourly previews and
    the installation's queue limit."""
    payload = PreviewPayload(
        **p.repo_fields(),
        number=p.number,
        head_sha=sha,
        base_ref=base_ref,
        samples=int(samples),
        requested_by=requested_by,
    )
    return JobSpec(
        "preview",
        payload.to_dict(),
        key=p.pr_key,
        supersede_token=sha,
        dedupe=f"preview:{p.pr_key}@{sha}:{samples}:{reason}",
        coalesce=f"preview:{p.pr_key}@{sha}:{samples}",
        installation_id=p.installation_id,
        queue_limit=settings.max_queued_per_installation or None,
        quotas=(
            Quota("pr", p.pr_key, settings.previews_per_pr_hour),
            Quota("user", requested_by.lower(), settings.previews_per_user_hour if requested_by else 0),
        ),
    )


def job_preview(job: Job, p: PreviewPayload, services: Services) -> None:
    gh = services.github_for(p.installation_id)
    settings = services.settings
    repo, sha, number = p.repo, p.head_sha, p.number
    ext = f"pr={number}"
    cfg, cfg_error = load_repo_config(gh, repo, p.default_branch)

    def publish(**kw) -> dict:
        return gh.publish_check_run(repo, name=PREVIEW_CHECK, head_sha=sha, external_id=ext, **kw)

    if cfg_error:
        publish(conclusion="skipped", title=f"Broken {CONFIG_PATH}", summary=render.fence(cfg_error))
        return
    schema = gh.find_check_run(repo, sha, SCHEMA_CHECK)
    if schema is not None and schema.get("status") == "completed" and schema.get("conclusion") == "failure":
        # `/lab preview` on a commit whose check failed (e.g. its documents cannot be
        # fetched): the check's annotations say what to fix; a preview would only fail later
        publish(
            conclusion="skipped",
            title="Not previewed: the check of this commit failed",
            summary=f"{render.code(SCHEMA_CHECK)} found problems in {render.code(sha[:12])}: fix what it lists and push; "
            "the preview follows a passing check.",
        )
        return
    teacher, teacher_error = resolve_teacher(cfg.teacher, settings)
    if teacher_error:
        publish(
            conclusion="failure",
            title=f"Unknown teacher {cfg.teacher[:60]!r} in {CONFIG_PATH}",
            summary=teacher_error,
        )
        return
    if not teacher:
        publish(
            conclusion="skipped",
            title="No teacher model configured",
            summary="The bot has no default teacher (`LAB_CI_TEACHER`) and `preview.teacher` in `.github/lab-ci.yaml` names none of its `LAB_CI_TEACHERS`.",
        )
        return
    samples = max(1, min(int(p.samples or cfg.samples), cfg.max_samples))
    publish(
        status="in_progress",
        title=f"Generating {plural(samples, 'sample')} per leaf",
        summary="The preview runs on the bot's teacher model; results appear in a comment.",
    )
    fetched = fetch_pull_or_skip(services, gh, job, p, sha, PREVIEW_CHECK, base_ref=p.base_ref or p.default_branch)
    if fetched is None:
        return
    request = work.PreviewWork(
        taxonomy=str(fetched.path),
        base=fetched.base_sha,
        head=sha,
        teacher=teacher,
        samples=samples,
        seed=settings.preview_seed,
    )
    result = run_or_report(
        services, job, "preview", work.PREVIEW_TARGET, request.to_dict(), publish, failed_title="The preview failed"
    )
    if result is None:
        return
    if job.is_cancelled():
        return
    markdown = result["markdown"]
    body = render.truncate(markdown if PREVIEW_MARKER in markdown else f"{PREVIEW_MARKER}\n{markdown}")
    body = (
        body.rstrip()
        + f"\n\n<sub>Preview of {render.code(sha[:12])}. Comment `/lab preview samples=N` to regenerate.</sub>\n"
    )
    comment, how = gh.upsert_sticky_comment(repo, number, PREVIEW_MARKER, body, bot_login=settings.bot_login)
    publish(
        conclusion="success",
        title=f"Preview ready: {plural(samples, 'sample')} per leaf",
        summary=f"Generated samples are in [the preview comment]({comment.get('html_url', '')}).",
    )
    services.log.info("preview %s#%d@%s: comment %s", repo, number, sha[:12], how)
