"""The bot's GitHub logic: :func:`route` decides (pure), :func:`run_job` acts (I/O).

``route(event, payload, delivery_id) -> list[JobSpec]`` turns one webhook delivery into
jobs without any I/O. ``run_job(job, ctx)`` runs one job against GitHub (through
``ctx.github_for(installation_id)``), the local mirror and the checker/previewer.

Job kinds (payloads are plain JSON):

===============  =====================================================================
``check``        fetch the PR head, check changed leaves, publish ``lab-ci/schema``;
                 if valid and not a draft, enqueue ``preview``
``preview``      publish ``lab-ci/preview`` (in_progress -> completed) + the sticky comment
``command``      a ``/lab ...`` comment: permission check, reply, follow-up jobs
``build-request``  a merge to the default branch: the ``lab-ci/build`` check run
                 waiting for approval (older pending requests superseded)
``approve``      an approval (command or check run button) of one commit
``build-dispatch`` start an approved build with the configured executor
``build-local``  the local executor (``lab-ci build`` subprocess)
``build-status`` a ``workflow_run`` event of the dispatched build workflow
===============  =====================================================================

Side effects are idempotent, so a job that runs twice (a worker killed mid-job) leaves
one check run per head and name and one sticky comment.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lab_ci.bot import commands as cmds
from lab_ci.bot import render
from lab_ci.bot.approvals import ApprovalStore, BuildRequest, InvalidTransition, check_approval, may_approve, role_rank
from lab_ci.bot.config import CONFIG_PATH, ConfigError, RepoConfig
from lab_ci.bot.config import parse as parse_config
from lab_ci.bot.executors import WORKFLOW_CONCLUSIONS, dispatch_actions, find_dispatched_run, parse_run_name, run_local
from lab_ci.bot.github import GitHubApp, GitHubError, Transport, external_field
from lab_ci.bot.jobs import Job, JobSpec
from lab_ci.errors import LabCIError

log = logging.getLogger("lab_ci.bot.handlers")

SCHEMA_CHECK = "lab-ci/schema"
PREVIEW_CHECK = "lab-ci/preview"
BUILD_CHECK = "lab-ci/build"
PREVIEW_MARKER = "<!-- lab-ci:preview -->"
APPROVE_ACTION = {
    "label": "Approve build",
    "identifier": "approve-build",
    "description": "Start the release build of this commit",
}
PR_ACTIONS = ("opened", "synchronize", "reopened", "ready_for_review")
ZERO_SHA = "0" * 40


class PermanentError(LabCIError):
    """A job failure that retrying cannot fix (the worker marks the job dead at once)."""

    retryable = False


# ---------------------------------------------------------------------------------------
# Options of this process (environment), and the context the worker hands us
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BotOptions:
    """Bot-side settings read from the environment (``BotOptions.from_env``).

    ``LAB_CI_TEACHERS``         JSON object: teacher name -> spec (GGUF path or server URL),
                                the ONLY teachers a repository may pick (``preview.teacher``)
    ``LAB_CI_TEACHER``          default teacher: a name from ``LAB_CI_TEACHERS`` or a spec
    ``LAB_CI_APP_SLUG``         the App's slug; its comments (``<slug>[bot]``) are the sticky ones
    ``LAB_CI_GIT_URL``          clone URL template, e.g. ``file:///srv/git/{repo}.git``
                                (default: the repository's ``clone_url`` from the event)
    ``LAB_CI_LOCAL_EXECUTOR``   ``1`` lets repositories choose ``executor: local``
    ``LAB_CI_BUILD_COMMAND``    the local build command (default ``<python> -m lab_ci build``)
    ``LAB_CI_GITHUB_TIMEOUT``   seconds per API request (default 15)
    ``LAB_CI_GITHUB_RETRIES``   retries per API request (default 4)
    """

    teacher: str | None = None
    teachers: tuple[tuple[str, str], ...] = ()
    app_slug: str = "lab-ci"
    git_url_template: str | None = None
    allow_local_executor: bool = False
    build_command: tuple[str, ...] = (sys.executable, "-m", "lab_ci", "build")
    github_timeout: int = 15
    github_retries: int = 4
    preview_seed: int = 0

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    @classmethod
    def from_env(cls, env=None) -> BotOptions:
        env = os.environ if env is None else env
        kw: dict[str, Any] = {}
        if env.get("LAB_CI_TEACHER"):
            kw["teacher"] = env["LAB_CI_TEACHER"]
        if env.get("LAB_CI_TEACHERS"):
            kw["teachers"] = _parse_teachers(env["LAB_CI_TEACHERS"])
        if env.get("LAB_CI_APP_SLUG"):
            kw["app_slug"] = env["LAB_CI_APP_SLUG"]
        if env.get("LAB_CI_GIT_URL"):
            kw["git_url_template"] = env["LAB_CI_GIT_URL"]
        kw["allow_local_executor"] = env.get("LAB_CI_LOCAL_EXECUTOR", "") in ("1", "true", "yes")
        if env.get("LAB_CI_BUILD_COMMAND"):
            kw["build_command"] = tuple(shlex.split(env["LAB_CI_BUILD_COMMAND"]))
        try:
            if env.get("LAB_CI_GITHUB_TIMEOUT"):
                kw["github_timeout"] = int(env["LAB_CI_GITHUB_TIMEOUT"])
            if env.get("LAB_CI_GITHUB_RETRIES"):
                kw["github_retries"] = int(env["LAB_CI_GITHUB_RETRIES"])
        except ValueError as e:
            raise LabCIError(f"bad LAB_CI_GITHUB_TIMEOUT/RETRIES: {e}") from None
        return cls(**kw)


def _parse_teachers(raw: str) -> tuple[tuple[str, str], ...]:
    """``LAB_CI_TEACHERS``: a JSON object of teacher name -> spec (path or URL)."""
    from lab_ci.bot.config import TEACHER_KEY

    try:
        data = json.loads(raw)
    except ValueError as e:
        raise LabCIError(f"LAB_CI_TEACHERS is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and TEACHER_KEY.match(k) and isinstance(v, str) and v for k, v in data.items()
    ):
        raise LabCIError(
            'LAB_CI_TEACHERS must be a JSON object of name -> model spec, e.g. {"tiny": "/models/teacher.gguf"} (names: letters, digits, ._-)'
        )
    return tuple(sorted(data.items()))


def resolve_teacher(requested: str | None, opts: BotOptions) -> tuple[str | None, str | None]:
    """(spec, error) for a repository's ``preview.teacher`` name (pure).

    The repository only names a key of the server's allow-list; the spec (a file path
    or URL on the bot host) never comes from the repository. No name: the server's
    default (``LAB_CI_TEACHER``, itself a name of the list or a spec)."""
    table = dict(opts.teachers)
    if requested is not None:
        if requested in table:
            return table[requested], None
        offered = ", ".join(render.code(k) for k in table) or "none"
        return (
            None,
            f"`preview.teacher` is {render.code(requested)}, which this bot does not offer (it offers: {offered}). Use one of those names, or remove the key to use the bot's default.",
        )
    if opts.teacher:
        return table.get(opts.teacher, opts.teacher), None
    return None, None


class Context(Protocol):
    """What run_job needs from BOT-SERVER's ``lab_ci.bot.worker.WorkerContext``."""

    settings: Any
    queue: Any
    log: logging.Logger
    extras: dict

    @property
    def data_dir(self) -> Path: ...

    def github_for(self, installation_id: int | None) -> Any: ...


def configure(ctx) -> None:
    """Called once by ``lab-ci serve`` at start-up: installs the GitHub client factory
    (App JWT auth against ``settings.github_api_url``) and the bot's shared objects."""
    opts = ctx.extras.get("bot") or BotOptions.from_env()
    ctx.extras["bot"] = opts
    key = ctx.settings.private_key_pem()
    if ctx.github is None:
        if not ctx.settings.app_id or not key:
            raise LabCIError(
                "the GitHub App id and private key are required (LAB_CI_APP_ID, LAB_CI_PRIVATE_KEY[_PATH])"
            )
        app = GitHubApp(
            ctx.settings.app_id,
            key,
            transport=Transport(
                base_url=ctx.settings.github_api_url, timeout=opts.github_timeout, retries=opts.github_retries
            ),
        )
        ctx.extras["github_app"] = app
        ctx.github = app.client
    _store(ctx)
    _mirrors(ctx)


def _opts(ctx) -> BotOptions:
    opts = ctx.extras.get("bot")
    if opts is None:
        opts = ctx.extras["bot"] = BotOptions.from_env()
    return opts


def _store(ctx) -> ApprovalStore:
    store = ctx.extras.get("approvals")
    if store is None:
        path = Path(ctx.settings.queue_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = ctx.extras["approvals"] = ApprovalStore(path)
    return store


def _mirrors(ctx):
    from lab_ci.bot.mirror import Mirrors

    m = ctx.extras.get("mirrors")
    if m is None:
        m = ctx.extras["mirrors"] = Mirrors(Path(ctx.data_dir) / "mirrors")
    return m


# ---------------------------------------------------------------------------------------
# route(): pure
# ---------------------------------------------------------------------------------------
def _repo_fields(payload: dict) -> dict | None:
    repo = payload.get("repository") or {}
    inst = (payload.get("installation") or {}).get("id")
    if not repo.get("full_name") or inst is None:
        return None
    return {
        "repo": repo["full_name"],
        "installation_id": int(inst),
        "clone_url": repo.get("clone_url") or f"https://github.com/{repo['full_name']}.git",
        "default_branch": repo.get("default_branch") or "main",
    }


def _is_bot(user: dict | None) -> bool:
    return (user or {}).get("type") == "Bot" or str((user or {}).get("login", "")).endswith("[bot]")


def route(event: str, payload: dict, delivery_id: str) -> list[JobSpec]:
    """The jobs one webhook delivery asks for (pure: no I/O). Unknown or irrelevant
    events give ``[]``."""
    base = _repo_fields(payload)
    if base is None:
        return []
    action = payload.get("action")
    repo = base["repo"]

    if event == "pull_request":
        pr = payload.get("pull_request") or {}
        number = int(pr.get("number") or payload.get("number") or 0)
        if action in PR_ACTIONS and pr.get("state", "open") == "open":
            return [_check_spec(base, pr, delivery_id, trigger=action)]
        if (
            action == "closed"
            and pr.get("merged")
            and pr.get("merge_commit_sha")
            and (pr.get("base") or {}).get("ref") == base["default_branch"]
        ):
            return [_build_request_spec(base, pr["merge_commit_sha"], number)]
        return []

    if event == "push":
        ref, after = payload.get("ref"), payload.get("after") or ""
        if ref == f"refs/heads/{base['default_branch']}" and not payload.get("deleted") and after and after != ZERO_SHA:
            return [_build_request_spec(base, after, None)]
        return []

    if event == "issue_comment":
        issue = payload.get("issue") or {}
        comment = payload.get("comment") or {}
        if (
            action != "created"
            or not issue.get("pull_request")
            or _is_bot(payload.get("sender"))
            or _is_bot(comment.get("user"))
        ):
            return []
        if comment.get("performed_via_github_app"):
            return []
        cmd = cmds.parse(comment.get("body") or "", max_samples=cmds.MAX_SAMPLES)
        if cmd is None:
            return []
        number = int(issue["number"])
        return [
            JobSpec(
                "command",
                {
                    **base,
                    "number": number,
                    "user": (comment.get("user") or {}).get("login", ""),
                    "pr_author": (issue.get("user") or {}).get("login", ""),
                    "comment_id": comment.get("id"),
                    "command": cmd.to_dict(),
                },
                key=f"{repo}#{number}",
                dedupe=f"{delivery_id}:command",
            )
        ]

    if event == "check_run":
        run = payload.get("check_run") or {}
        name = run.get("name")
        if action == "rerequested" and name in (SCHEMA_CHECK, PREVIEW_CHECK):
            number = _pr_number_of_run(run)
            if number is None:
                return []
            pr_like = {
                "number": number,
                "head": {"sha": run.get("head_sha"), "ref": None},
                "base": {"ref": base["default_branch"]},
                "draft": False,
            }
            for p in run.get("pull_requests") or []:
                if p.get("number") == number:
                    pr_like["base"] = {"ref": (p.get("base") or {}).get("ref", base["default_branch"])}
            # no supersede token: re-running an old commit must not cancel the head's check
            return [_check_spec(base, pr_like, delivery_id, trigger="rerequested", supersede=False)]
        if action == "requested_action" and name == BUILD_CHECK:
            ident = (payload.get("requested_action") or {}).get("identifier")
            if ident != APPROVE_ACTION["identifier"] or _is_bot(payload.get("sender")):
                return []
            sha = run.get("head_sha")
            return [
                JobSpec(
                    "approve",
                    {
                        **base,
                        "sha": sha,
                        "user": (payload.get("sender") or {}).get("login", ""),
                        "via": "button",
                        "number": None,
                    },
                    key=f"{repo}@build",
                    dedupe=f"{delivery_id}:approve",
                )
            ]
        return []

    if event == "workflow_run":
        run = payload.get("workflow_run") or {}
        if run.get("event") != "workflow_dispatch":
            return []  # only the bot dispatches builds; a PR/push run's title proves nothing
        parsed = parse_run_name(run.get("display_title") or run.get("name"))
        if parsed is None or action not in ("requested", "in_progress", "completed"):
            return []
        request_id, sha = parsed
        return [
            JobSpec(
                "build-status",
                {
                    **base,
                    "request_id": request_id,
                    "sha": sha,
                    "action": action,
                    "status": run.get("status"),
                    "conclusion": run.get("conclusion"),
                    "run_id": run.get("id"),
                    "run_url": run.get("html_url"),
                    "path": run.get("path"),
                },
                key=f"{repo}@build",
                dedupe=f"{delivery_id}:build-status",
            )
        ]
    return []


def _pr_number_of_run(run: dict) -> int | None:
    n = external_field(run.get("external_id"), "pr")
    if n and n.isdigit():
        return int(n)
    prs = run.get("pull_requests") or []
    return int(prs[0]["number"]) if prs else None


def _check_spec(base: dict, pr: dict, delivery_id: str, *, trigger: str, supersede: bool = True) -> JobSpec:
    number = int(pr["number"])
    head = pr.get("head") or {}
    return JobSpec(
        "check",
        {
            **base,
            "number": number,
            "head_sha": head.get("sha"),
            "base_ref": (pr.get("base") or {}).get("ref") or base["default_branch"],
            "draft": bool(pr.get("draft")),
            "trigger": trigger,
        },
        key=f"{base['repo']}#{number}",
        supersede_token=head.get("sha") if supersede else None,
        dedupe=f"{delivery_id}:check",
    )


def _build_request_spec(base: dict, sha: str, number: int | None) -> JobSpec:
    return JobSpec(
        "build-request",
        {**base, "sha": sha, "number": number},
        key=f"{base['repo']}@build",
        dedupe=f"build-request:{base['repo']}@{sha}",
    )


# ---------------------------------------------------------------------------------------
# run_job(): I/O
# ---------------------------------------------------------------------------------------
def run_job(job: Job, ctx) -> None:
    """Run one job. Transient failures raise (the queue retries them with backoff);
    permanent ones raise an error with ``retryable = False``; user-facing problems are
    reported on GitHub and the job ends normally."""
    handler = _HANDLERS.get(job.kind)
    if handler is None:
        raise PermanentError(f"unknown job kind {job.kind!r}")
    try:
        handler(job, ctx)
    except Exception as e:
        last = job.attempts >= getattr(job, "max_attempts", 5) or not getattr(e, "retryable", True)
        if last and job.kind in ("check", "preview"):
            _report_giving_up(job, ctx, e)
        raise


def _report_giving_up(job: Job, ctx, error: Exception) -> None:
    """Best effort: tell the contributor on the check run that the bot gave up."""
    p = job.payload
    name = SCHEMA_CHECK if job.kind == "check" else PREVIEW_CHECK
    msg = render.text(str(error), max_len=1000)
    try:
        gh = ctx.github_for(p["installation_id"])
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
        ctx.log.warning("could not report failure of job %s: %s", job.id, type(e2).__name__)


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


def _clone_url(ctx, p: dict) -> str:
    tmpl = _opts(ctx).git_url_template
    return tmpl.format(repo=p["repo"]) if tmpl else p["clone_url"]


def _check_options(cfg: RepoConfig):
    from lab_ci.check.options import CheckOptions

    return CheckOptions(
        schema_version=cfg.schema_version if cfg.schema_version is not None else "latest", strict=cfg.strict
    )


def _select(report, patterns: tuple[str, ...]):
    if patterns:
        report.files = [f for f in report.files if any(fnmatch.fnmatch(f.path, g) for g in patterns)]
    return report


def job_check(job: Job, ctx) -> None:
    p = job.payload
    gh = ctx.github_for(p["installation_id"])
    repo, sha, number = p["repo"], p["head_sha"], int(p["number"])
    ext = f"pr={number}"
    cfg, cfg_error = load_repo_config(gh, repo, p["default_branch"])
    if cfg_error:
        gh.publish_check_run(
            repo,
            name=SCHEMA_CHECK,
            head_sha=sha,
            conclusion="failure",
            external_id=ext,
            title=f"Broken {CONFIG_PATH} on {p['default_branch']}",
            summary=f"The repository configuration could not be read, so nothing was checked:\n\n{render.fence(cfg_error)}\n\nFix {render.code(CONFIG_PATH)} on the default branch, then comment `/lab check`.",
        )
        return
    is_head = True
    if p.get("trigger") in ("rerequested", "command") or not p.get("base_ref"):
        # The button/command only knows the head: refresh the PR (state, base, draft).
        pr = gh.get_pull(repo, number)
        if pr.get("state") != "open":
            return
        if pr["head"]["sha"] != sha and p.get("trigger") == "command":
            sha = pr["head"]["sha"]
        is_head = pr["head"]["sha"] == sha
        p = {**p, "head_sha": sha, "base_ref": pr["base"]["ref"], "draft": bool(pr.get("draft"))}
    gh.publish_check_run(
        repo,
        name=SCHEMA_CHECK,
        head_sha=sha,
        status="in_progress",
        title="Checking changed leaves",
        summary="Fetching the pull request and checking its changed `qna.yaml` files…",
        external_id=ext,
    )
    fetched = _fetch_pull_or_skip(ctx, gh, job, p, sha, SCHEMA_CHECK, base_ref=p["base_ref"])
    if fetched is None:
        return
    from lab_ci.check.api import check_taxonomy

    try:
        report = _select(
            check_taxonomy(
                str(fetched.path), base=fetched.base_sha, head=sha, options=_check_options(cfg), use_cache=False
            ),
            cfg.paths,
        )
    except LabCIError as e:
        gh.publish_check_run(
            repo,
            name=SCHEMA_CHECK,
            head_sha=sha,
            conclusion="failure",
            external_id=ext,
            title="The check could not run",
            summary=f"{render.text(str(e))}",
        )
        return
    md = _report_markdown(report)
    conclusion = "success" if report.valid else "failure"
    gh.publish_check_run(
        repo,
        name=SCHEMA_CHECK,
        head_sha=sha,
        conclusion=conclusion,
        external_id=ext,
        title=render.check_title(report),
        summary=render.check_summary(report, markdown=md),
        annotations=render.annotations(report),
    )
    ctx.log.info("check %s#%d@%s: %s", repo, number, sha[:12], conclusion)
    changed = [f for f in report.files if f.change != "deleted"]
    # a re-run of an older commit previews nothing (its preview would supersede the head's)
    if report.valid and changed and is_head and not p.get("draft") and cfg.preview_enabled:
        ctx.queue.enqueue(_preview_spec(p, sha, cfg.samples, reason=f"check:{job.id}"))


def _fetch_pull_or_skip(ctx, gh, job: Job, p: dict, sha: str, check_name: str, *, base_ref: str):
    """Fetch the pull request into the mirror. None (the job should stop) when the commit
    left the pull request (the check run says so) or the job was cancelled meanwhile."""
    from lab_ci.bot.mirror import StaleHeadError

    number = int(p["number"])
    try:
        fetched = _mirrors(ctx).fetch_pull(
            p["repo"], _clone_url(ctx, p), number=number, base_ref=base_ref, head_sha=sha, token=gh.token()
        )
    except StaleHeadError as e:
        gh.publish_check_run(
            p["repo"],
            name=check_name,
            head_sha=sha,
            conclusion="skipped",
            external_id=f"pr={number}",
            title="Superseded by a newer push",
            summary=render.text(str(e)),
        )
        return None
    if job.is_cancelled():
        return None
    return fetched


def _report_markdown(report) -> str:
    try:
        from lab_ci.check.formats.markdown import render as md_render

        return md_render(report)
    except ImportError:
        return render.check_summary(report)


def _preview_spec(p: dict, sha: str, samples: int, *, reason: str) -> JobSpec:
    keep = ("repo", "installation_id", "clone_url", "default_branch", "number", "base_ref")
    return JobSpec(
        "preview",
        {**{k: p[k] for k in keep if k in p}, "head_sha": sha, "samples": int(samples)},
        key=f"{p['repo']}#{p['number']}",
        supersede_token=sha,
        dedupe=f"preview:{p['repo']}#{p['number']}@{sha}:{samples}:{reason}",
    )


def job_preview(job: Job, ctx) -> None:
    p = job.payload
    gh = ctx.github_for(p["installation_id"])
    opts = _opts(ctx)
    repo, sha, number = p["repo"], p["head_sha"], int(p["number"])
    ext = f"pr={number}"
    cfg, cfg_error = load_repo_config(gh, repo, p["default_branch"])
    if cfg_error:
        gh.publish_check_run(
            repo,
            name=PREVIEW_CHECK,
            head_sha=sha,
            conclusion="skipped",
            external_id=ext,
            title=f"Broken {CONFIG_PATH}",
            summary=render.fence(cfg_error),
        )
        return
    teacher, teacher_error = resolve_teacher(cfg.teacher, opts)
    if teacher_error:
        gh.publish_check_run(
            repo,
            name=PREVIEW_CHECK,
            head_sha=sha,
            conclusion="failure",
            external_id=ext,
            title=f"Unknown teacher {cfg.teacher[:60]!r} in {CONFIG_PATH}",
            summary=teacher_error,
        )
        return
    if not teacher:
        gh.publish_check_run(
            repo,
            name=PREVIEW_CHECK,
            head_sha=sha,
            conclusion="skipped",
            external_id=ext,
            title="No teacher model configured",
            summary="The bot has no default teacher (`LAB_CI_TEACHER`) and `preview.teacher` in `.github/lab-ci.yaml` names none of its `LAB_CI_TEACHERS`.",
        )
        return
    samples = max(1, min(int(p.get("samples") or cfg.samples), cfg.max_samples))
    gh.publish_check_run(
        repo,
        name=PREVIEW_CHECK,
        head_sha=sha,
        status="in_progress",
        external_id=ext,
        title=f"Generating {samples} sample(s) per leaf",
        summary="The preview runs on the bot's teacher model; results appear in a comment.",
    )
    fetched = _fetch_pull_or_skip(
        ctx, gh, job, p, sha, PREVIEW_CHECK, base_ref=p.get("base_ref") or p["default_branch"]
    )
    if fetched is None:
        return
    from lab_ci.preview.api import run_preview
    from lab_ci.preview.render import render_markdown

    try:
        result = run_preview(
            str(fetched.path), base=fetched.base_sha, head=sha, teacher=teacher, samples=samples, seed=opts.preview_seed
        )
    except LabCIError as e:
        gh.publish_check_run(
            repo,
            name=PREVIEW_CHECK,
            head_sha=sha,
            conclusion="failure",
            external_id=ext,
            title="The preview failed",
            summary=render.text(str(e)),
        )
        return
    if job.is_cancelled():
        return
    markdown = render_markdown(result)
    body = render.truncate(markdown if PREVIEW_MARKER in markdown else f"{PREVIEW_MARKER}\n{markdown}")
    body = (
        body.rstrip()
        + f"\n\n<sub>Preview of {render.code(sha[:12])}. Comment `/lab preview samples=N` to regenerate.</sub>\n"
    )
    comment, how = gh.upsert_sticky_comment(repo, number, PREVIEW_MARKER, body, bot_login=opts.bot_login)
    gh.publish_check_run(
        repo,
        name=PREVIEW_CHECK,
        head_sha=sha,
        conclusion="success",
        external_id=ext,
        title=f"Preview ready: {samples} sample(s) per leaf",
        summary=f"Generated samples are in [the preview comment]({comment.get('html_url', '')}).",
    )
    ctx.log.info("preview %s#%d@%s: comment %s", repo, number, sha[:12], how)


# -- commands -------------------------------------------------------------------------------
def _reply(gh, p: dict, text: str) -> None:
    """Answer on the pull request, at most once per job: the reply carries a hidden
    marker naming the job (``p["reply_key"]``), and a retry of the job (e.g. after a 5xx
    whose write went through) finds its earlier reply instead of posting another."""
    who = render.code(p.get("user") or "someone", max_len=60)
    body = f"{who}: {text}"
    key = p.get("reply_key")
    if not key:
        gh.create_comment(p["repo"], int(p["number"]), body)
        return
    gh.create_comment_once(p["repo"], int(p["number"]), f"<!-- lab-ci:reply {key} -->", body)


def _with_reply_key(job: Job) -> dict:
    return {**job.payload, "reply_key": f"{job.kind}-{job.id}"}


def _approver(gh, repo: str, user: str, cfg: RepoConfig) -> bool:
    role = gh.collaborator_role(repo, user)
    if may_approve(role, False, cfg.approvers):
        return True
    org = repo.split("/")[0]
    return any(gh.team_member(org, team, user) for team in cfg.approvers.teams)


def job_command(job: Job, ctx) -> None:
    p = _with_reply_key(job)
    gh = ctx.github_for(p["installation_id"])
    repo, number, user = p["repo"], int(p["number"]), p["user"]
    cfg, cfg_error = load_repo_config(gh, repo, p["default_branch"])
    cmd = cmds.Command.from_dict(p["command"])
    if cmd.name == "help":
        _reply(gh, p, "here is what I can do.\n\n" + cmds.help_text(cfg.max_samples))
        return
    if cmd.name in ("unknown", "invalid"):
        _reply(
            gh,
            p,
            f"I did not understand that ({render.text(cmd.error or 'unknown command')}).\n\n"
            + cmds.help_text(cfg.max_samples),
        )
        return
    if cfg_error and cmd.name != "check":
        _reply(gh, p, f"the repository configuration is broken, so I cannot do that:\n\n{render.fence(cfg_error)}")
        return
    if cmd.name in ("check", "preview"):
        if user != p.get("pr_author") and role_rank(gh.collaborator_role(repo, user)) < role_rank("write"):
            _reply(
                gh,
                p,
                f"sorry, only the pull request's author or people with write access can run {render.code('/lab ' + cmd.name)}.",
            )
            return
        pr = gh.get_pull(repo, number)
        if pr.get("state") != "open":
            _reply(gh, p, "this pull request is closed.")
            return
        base = {k: p[k] for k in ("repo", "installation_id", "clone_url", "default_branch")}
        prd = {"number": number, "head": pr["head"], "base": pr["base"], "draft": pr.get("draft")}
        if cmd.name == "check":
            spec = _check_spec(base, prd, f"comment-{p.get('comment_id')}", trigger="command")
        else:
            samples = int(cmd.args.get("samples", cfg.samples))
            if samples > cfg.max_samples:
                _reply(gh, p, f"samples must be at most {cfg.max_samples} in this repository.")
                return
            spec = _preview_spec(
                {**base, "number": number, "base_ref": pr["base"]["ref"]},
                pr["head"]["sha"],
                samples,
                reason=f"comment-{p.get('comment_id')}",
            )
        ctx.queue.enqueue(spec)
        return
    # maintainer commands
    if not cfg.build_enabled:
        _reply(gh, p, "release builds are disabled in this repository's configuration.")
        return
    if not _approver(gh, repo, user, cfg):
        _reply(
            gh,
            p,
            "sorry, only maintainers configured in `.github/lab-ci.yaml` can approve or cancel release builds. Nothing was changed.",
        )
        return
    store = _store(ctx)
    if cmd.name == "approve-build":
        _approve(gh, ctx, cfg, p, cmd.positional[0], user, allowed=True, via="command")
    else:
        _cancel(gh, ctx, p, cmd.positional[0] if cmd.positional else None, user, store)


def job_approve(job: Job, ctx) -> None:
    """The "Approve build" button of a ``lab-ci/build`` check run."""
    p = _with_reply_key(job)
    gh = ctx.github_for(p["installation_id"])
    cfg, _ = load_repo_config(gh, p["repo"], p["default_branch"])
    allowed = cfg.build_enabled and _approver(gh, p["repo"], p["user"], cfg)
    _approve(gh, ctx, cfg, p, p["sha"], p["user"], allowed=allowed, via="button")


def _approve(gh, ctx, cfg: RepoConfig, p: dict, sha: str, user: str, *, allowed: bool, via: str) -> None:
    store = _store(ctx)
    repo = p["repo"]
    request = store.by_sha(repo, sha) if sha else None
    if request is not None and request.state != "pending" and request.approved_by == user and allowed:
        _enqueue_dispatch(ctx, request)  # a re-run of an approval that already went through
        return
    verdict = check_approval(request, sha, allowed=allowed)
    if not verdict.ok:
        ctx.log.info("approval refused for %s on %s: %s", user, repo, verdict.reason)
        number = p.get("number") or (request.pr_number if request else None)
        if number:
            _reply(gh, {**p, "number": number}, f"sorry, {render.text(verdict.reason)}. Nothing was approved.")
        return
    try:
        request = store.apply(request.id, "approve", approved_by=user, executor=cfg.executor)
    except InvalidTransition:
        return
    _publish_build(
        gh,
        request,
        status="in_progress",
        title=f"Approved by {user}",
        summary=f"Release build of {render.code(request.sha)} approved by {render.text(user)} (via {via}); starting it with the {render.code(cfg.executor)} executor.",
    )
    if p.get("number") and via == "command":
        _reply(gh, p, f"approved the release build of {render.code(request.sha[:12])}.")
    _enqueue_dispatch(ctx, request)


def _enqueue_dispatch(ctx, request: BuildRequest) -> None:
    kind = "build-local" if request.executor == "local" else "build-dispatch"
    ctx.queue.enqueue(
        JobSpec(
            kind,
            {"repo": request.repo, "installation_id": request.installation_id, "request_id": request.id},
            key=f"{request.repo}@build-run",
            dedupe=f"{kind}:{request.repo}:{request.id}",
        )
    )


def _cancel(gh, ctx, p: dict, sha: str | None, user: str, store: ApprovalStore) -> None:
    repo = p["repo"]
    request = store.by_sha(repo, sha) if sha else next(iter(store.active(repo)), None)
    if request is None or request.state in ("succeeded", "failed", "superseded", "cancelled"):
        _reply(
            gh,
            p,
            "there is no pending or running release build to cancel"
            + (f" for {render.code(sha)}" if sha else "")
            + ".",
        )
        return
    request = store.apply(request.id, "cancel", note=f"cancelled by {user}")
    _publish_build(
        gh,
        request,
        conclusion="cancelled",
        title=f"Cancelled by {user}",
        summary=f"The release build of {render.code(request.sha)} was cancelled by {render.text(user)}."
        + (f" The workflow run {request.run_url} may need cancelling in the Actions tab." if request.run_url else ""),
    )
    _reply(gh, p, f"cancelled the release build of {render.code(request.sha[:12])}.")


# -- builds ---------------------------------------------------------------------------------
def _publish_build(
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
    run = gh.publish_check_run(
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
    return run


def job_build_request(job: Job, ctx) -> None:
    p = job.payload
    gh = ctx.github_for(p["installation_id"])
    repo, sha = p["repo"], p["sha"]
    cfg, cfg_error = load_repo_config(gh, repo, p["default_branch"])
    if not cfg.build_enabled and not cfg_error:
        return
    store = _store(ctx)
    request, created = store.create(
        repo=repo,
        installation_id=int(p["installation_id"]),
        sha=sha,
        ref=p["default_branch"],
        pr_number=p.get("number"),
    )
    if request.state != "pending":
        return
    if cfg_error:
        _publish_build(
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
    run = _publish_build(
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
        _publish_build(
            gh,
            old,
            conclusion="skipped",
            title=f"Superseded by {sha[:12]}",
            summary=f"A newer merge ({render.code(sha)}) replaced this unapproved build request.",
        )


def job_build_dispatch(job: Job, ctx) -> None:
    p = job.payload
    gh = ctx.github_for(p["installation_id"])
    store = _store(ctx)
    request = store.get(int(p["request_id"]))
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
        _publish_build(
            gh,
            request,
            conclusion="failure",
            title="Could not start the build workflow",
            summary=f"{render.text(str(e))}\n\nCheck `build.workflow` in `.github/lab-ci.yaml` and that the workflow has `on: workflow_dispatch`.",
        )
        return
    request = store.apply(request.id, "dispatch", executor="actions")
    _publish_build(
        gh,
        request,
        status="in_progress",
        title="Build dispatched",
        summary=f"Workflow {render.code(cfg.workflow)} was dispatched for {render.code(request.sha)}; this check updates when it runs.",
    )


def job_build_local(job: Job, ctx) -> None:
    p = job.payload
    gh = ctx.github_for(p["installation_id"])
    store = _store(ctx)
    opts = _opts(ctx)
    request = store.get(int(p["request_id"]))
    if request is None or request.state not in ("approved", "running"):
        return
    if not opts.allow_local_executor:
        request = store.apply(request.id, "fail", note="local executor disabled")
        _publish_build(
            gh,
            request,
            conclusion="failure",
            title="Local executor disabled",
            summary="This bot does not run builds locally (`LAB_CI_LOCAL_EXECUTOR` is not set). Use `executor: actions`.",
        )
        return
    url = (
        _opts(ctx).git_url_template.format(repo=request.repo)
        if opts.git_url_template
        else f"https://github.com/{request.repo}.git"
    )
    mirrors = _mirrors(ctx)
    mirrors.fetch_ref(request.repo, url, request.ref, token=gh.token())
    if not mirrors.has_commit(mirrors.path_for(request.repo), request.sha):
        raise PermanentError(f"merge commit {request.sha} is not on {request.ref}")
    if request.state == "approved":
        request = store.apply(request.id, "start")
    _publish_build(
        gh,
        request,
        status="in_progress",
        title="Building locally",
        summary=f"`lab-ci build` is running for {render.code(request.sha)}.",
    )
    out = Path(ctx.data_dir) / "builds" / f"{request.id}"

    def cancelled() -> bool:
        cur = store.get(request.id)
        return job.is_cancelled() or (cur is not None and cur.state == "cancelled")

    result = run_local(
        list(opts.build_command), taxonomy=mirrors.path_for(request.repo), sha=request.sha, out=out, cancelled=cancelled
    )
    tail = render.fence(result.log_tail or "(no output)")
    if result.returncode is None:
        return  # cancelled: the cancel already updated the check run
    event, conclusion = ("succeed", "success") if result.returncode == 0 else ("fail", "failure")
    request = store.apply(request.id, event, note=f"exit {result.returncode}")
    _publish_build(
        gh,
        request,
        conclusion=conclusion,
        title=f"Build {'succeeded' if conclusion == 'success' else 'failed'} ({result.seconds:.0f}s)",
        summary=f"`lab-ci build` exited with {result.returncode} for {render.code(request.sha)}; output in {render.code(str(out))}.",
        text=render.truncate(tail),
    )


def job_build_status(job: Job, ctx) -> None:
    p = job.payload
    gh = ctx.github_for(p["installation_id"])
    store = _store(ctx)
    request = store.get(int(p["request_id"]))
    if request is None or request.repo != p["repo"] or p.get("sha") != request.sha:
        ctx.log.info("workflow_run for unknown build request %s in %s", p["request_id"], p["repo"])
        return
    if request.state not in ("approved", "dispatched", "running"):  # never a pending one
        ctx.log.info("workflow_run for build request %s in state %s ignored", request.id, request.state)
        return
    cfg, _ = load_repo_config(gh, request.repo, request.ref)
    if p.get("path") != f".github/workflows/{cfg.workflow}":
        ctx.log.warning(
            "workflow_run of %r claims build request %s (expected .github/workflows/%s): ignored",
            p.get("path"),
            request.id,
            cfg.workflow,
        )
        return
    url = p.get("run_url")
    if request.run_id is None and p.get("run_id"):
        request = store.update(request.id, run_id=int(p["run_id"]), run_url=url)
    if p["action"] in ("requested", "in_progress"):
        if request.state == "dispatched" and p["action"] == "in_progress":
            request = store.apply(request.id, "start")
        if request.state in ("dispatched", "running"):
            _publish_build(
                gh,
                request,
                status="in_progress",
                title="Building",
                summary=f"The build workflow is {render.text(p.get('status') or 'running')}: {url}",
                details_url=url,
            )
        return
    event, conclusion = WORKFLOW_CONCLUSIONS.get(p.get("conclusion") or "", ("fail", "failure"))
    try:
        request = store.apply(request.id, event, note=f"workflow {p.get('conclusion')}")
    except InvalidTransition:
        return
    _publish_build(
        gh,
        request,
        conclusion=conclusion,
        title=f"Build {render.text(p.get('conclusion') or 'finished')}",
        summary=f"The build workflow finished ({render.text(p.get('conclusion') or 'unknown')}): {url}",
        details_url=url,
    )


_HANDLERS = {
    "check": job_check,
    "preview": job_preview,
    "command": job_command,
    "approve": job_approve,
    "build-request": job_build_request,
    "build-dispatch": job_build_dispatch,
    "build-local": job_build_local,
    "build-status": job_build_status,
}
