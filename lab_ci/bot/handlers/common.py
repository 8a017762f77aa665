"""What every job handler shares: check run names, the repository's configuration,
replies on pull requests, and telling the contributor when the bot gives up or refuses."""

from __future__ import annotations

import math

from lab_ci.bot import render
from lab_ci.bot.config import CONFIG_PATH, ConfigError, RepoConfig
from lab_ci.bot.config import parse as parse_config
from lab_ci.bot.isolation import Cancelled, JobFailed, LimitExceeded
from lab_ci.bot.jobs import Admission, Job, JobSpec
from lab_ci.bot.mirror import StaleHeadError
from lab_ci.bot.payloads import PullPayload, RepoPayload
from lab_ci.bot.services import Services
from lab_ci.bot.settings import Settings

SCHEMA_CHECK = "lab-ci/schema"
PREVIEW_CHECK = "lab-ci/preview"
BUILD_CHECK = "lab-ci/build"
PREVIEW_MARKER = "<!-- lab-ci:preview -->"


def load_repo_config(gh, repo: str, default_branch: str) -> tuple[RepoConfig, str | None]:
    """The repository's config from its DEFAULT branch (never a PR head): (config, error).
    A broken file gives the defaults and the error message to show."""
    text = gh.read_file(repo, CONFIG_PATH, default_branch)
    if text is None:
        return RepoConfig(), None
    try:
        return parse_config(text), None
    except ConfigError as e:
        return RepoConfig(), str(e)


def clone_url(settings: Settings, p: RepoPayload) -> str:
    """Where to fetch the repository from: ``LAB_CI_GIT_URL`` or the event's clone URL."""
    tmpl = settings.git_url_template
    return tmpl.format(repo=p.repo) if tmpl else p.clone_url


def fetch_pull_or_skip(services: Services, gh, job: Job, p: PullPayload, sha: str, check_name: str, *, base_ref: str):
    """Fetch the pull request into the mirror. None (the job should stop) when the commit
    left the pull request (the check run says so) or the job was cancelled meanwhile."""
    try:
        fetched = services.mirrors.fetch_pull(
            p.repo, clone_url(services.settings, p), number=p.number, base_ref=base_ref, head_sha=sha, token=gh.token()
        )
    except StaleHeadError as e:
        gh.publish_check_run(
            p.repo,
            name=check_name,
            head_sha=sha,
            conclusion="skipped",
            external_id=f"pr={p.number}",
            title="Superseded by a newer push",
            summary=render.text(str(e)),
        )
        return None
    if job.is_cancelled():
        return None
    return fetched


def reply(gh, repo: str, number: int, user: str | None, text: str, *, key: str | None = None) -> None:
    """Answer on the pull request, at most once per job: the reply carries a hidden
    marker naming the job (``key``), and a retry of the job (e.g. after a 5xx whose write
    went through) finds its earlier reply instead of posting another."""
    body = f"{render.code(user or 'someone', max_len=60)}: {text}"
    if not key:
        gh.create_comment(repo, int(number), body)
        return
    gh.create_comment_once(repo, int(number), f"<!-- lab-ci:reply {key} -->", body)


def reply_key(job: Job) -> str:
    return f"{job.kind}-{job.id}"


def in_minutes(seconds: float | None) -> str:
    minutes = max(1, math.ceil((seconds or 0) / 60))
    return f"about {minutes} minute{'s' if minutes > 1 else ''}"


def refusal_text(kind: str, admission: Admission, user: str) -> str:
    """Why a check or preview was not started, for the contributor (no setting names:
    those are for operators, in the docs)."""
    what = "checks and previews"
    if admission.reason == "queue_full":
        return (
            f"the bot is busy: it already has {admission.limit} {what} waiting for this repository's "
            "installation, the most it queues. Nothing was started; try again later."
        )
    if admission.reason == "pr_quota":
        return (
            f"this pull request reached the limit of {admission.limit} previews per hour. "
            f"Try again in {in_minutes(admission.retry_after)}."
        )
    if admission.reason == "user_quota":
        return (
            f"{render.code(user, max_len=60)} reached the limit of {admission.limit} previews per hour "
            f"(over all pull requests). Try again in {in_minutes(admission.retry_after)}."
        )
    return f"the {kind} was not started ({render.text(admission.reason or 'refused')})."


def notify_refused(spec: JobSpec, admission: Admission, services: Services) -> None:
    """Tell the contributor on the check run that a check or preview was refused: a check
    fails (an unchecked pull request must not pass), a preview is skipped."""
    p = spec.payload
    if spec.kind not in ("check", "preview") or not p.get("head_sha"):
        return
    gh = services.github_for(p["installation_id"])
    if spec.kind == "check":
        name, conclusion, title = SCHEMA_CHECK, "failure", "Not checked: lab-ci is busy"
        hint = "Comment `/lab check` on the pull request to try again."
    else:
        name, conclusion, title = PREVIEW_CHECK, "skipped", "Preview limit reached"
        hint = "Comment `/lab preview` on the pull request to ask again."
        if admission.reason == "queue_full":
            title = "Not previewed: lab-ci is busy"
    why = refusal_text(spec.kind, admission, p.get("requested_by") or p.get("author") or "")
    gh.publish_check_run(
        p["repo"],
        name=name,
        head_sha=p["head_sha"],
        conclusion=conclusion,
        title=title,
        summary=f"{why[0].upper()}{why[1:]}\n\n{hint}",
        external_id=f"pr={p['number']}",
    )


def report_giving_up(job: Job, services: Services, error: Exception) -> None:
    """Best effort: tell the contributor on the check run that the bot gave up."""
    p = job.payload
    name = SCHEMA_CHECK if job.kind == "check" else PREVIEW_CHECK
    msg = render.text(str(error), max_len=1000)
    try:
        gh = services.github_for(p["installation_id"])
        gh.publish_check_run(
            p["repo"],
            name=name,
            head_sha=p["head_sha"],
            conclusion="neutral" if job.kind == "preview" else "failure",
            title="lab-ci could not finish",
            summary=f"The bot gave up after {job.attempts} attempt(s): {msg}\n\nComment `/lab check` to try again.",
            external_id=f"pr={p['number']}",
        )
    except Exception as e2:  # GitHub itself may be what is failing
        services.log.warning("could not report failure of job %s: %s", job.id, type(e2).__name__)


def limit_summary(what: str, error) -> tuple[str, str]:
    """(title, summary) of a check run for an isolated job stopped at a limit."""
    title = f"Stopped: the {what} exceeded its {error.name} limit ({error.amount})"
    setting = f" (`{error.setting}` on the bot)" if error.setting else ""
    if what == "check":
        hint = (
            "A small file that takes this much usually nests YAML anchors and aliases so that it "
            "expands enormously, or is very large. Simplify the changed files and push again."
        )
    else:
        hint = "Fewer samples may fit: comment `/lab preview samples=1`. Otherwise ask the maintainers."
    summary = (
        f"lab-ci runs every {what} of a pull request in a separate process with limits on its "
        f"wall time, CPU time and memory. This one reached its **{error.name} limit of {error.amount}**"
        f"{setting} and was stopped; it is not retried.\n\n{hint}"
    )
    return title, summary


def run_or_report(
    services: Services, job: Job, kind: str, target: str, request: dict, publish, *, failed_title: str
) -> dict | None:
    """Run the isolated work of a check or preview; None when it did not finish (the
    job was cancelled, or the check run now says which limit stopped it or what failed)."""
    try:
        return services.isolated(kind, target, request, job)
    except Cancelled:
        return None
    except LimitExceeded as e:
        title, summary = limit_summary(kind, e)
        publish(conclusion="failure", title=title, summary=summary)
        services.log.warning("%s %s stopped: %s", kind, job.key, e)
        return None
    except JobFailed as e:
        publish(conclusion="failure", title=failed_title, summary=render.text(str(e)))
        return None
