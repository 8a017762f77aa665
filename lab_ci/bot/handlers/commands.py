"""The ``command`` job: a ``/lab ...`` comment on a pull request (parsed by
:mod:`lab_ci.bot.commands`): permission check, a reply, and the follow-up job."""

from __future__ import annotations

from lab_ci.bot import commands as slash
from lab_ci.bot import render
from lab_ci.bot.approvals import role_rank
from lab_ci.bot.handlers.builds import approve, approver, cancel
from lab_ci.bot.handlers.check import check_spec
from lab_ci.bot.handlers.common import load_repo_config, refusal_text, reply, reply_key
from lab_ci.bot.handlers.preview import preview_spec
from lab_ci.bot.jobs import COALESCED, Job
from lab_ci.bot.payloads import CommandPayload
from lab_ci.bot.services import Services


def job_command(job: Job, p: CommandPayload, services: Services) -> None:
    gh = services.github_for(p.installation_id)
    repo, number, user, key = p.repo, p.number, p.user, reply_key(job)

    def answer(text: str) -> None:
        reply(gh, repo, number, user, text, key=key)

    cfg, cfg_error = load_repo_config(gh, repo, p.default_branch)
    cmd = p.command
    if cmd.name == "help":
        answer("here is what I can do.\n\n" + slash.help_text(cfg.max_samples))
        return
    if cmd.name in ("unknown", "invalid"):
        answer(
            f"I did not understand that ({render.text(cmd.error or 'unknown command')}).\n\n"
            + slash.help_text(cfg.max_samples)
        )
        return
    if cfg_error and cmd.name != "check":
        answer(f"the repository configuration is broken, so I cannot do that:\n\n{render.fence(cfg_error)}")
        return
    if cmd.name in ("check", "preview"):
        if user != p.pr_author and role_rank(gh.collaborator_role(repo, user)) < role_rank("write"):
            answer(
                f"sorry, only the pull request's author or people with write access can run {render.code('/lab ' + cmd.name)}."
            )
            return
        pr = gh.get_pull(repo, number)
        if pr.get("state") != "open":
            answer("this pull request is closed.")
            return
        sha = pr["head"]["sha"]
        if cmd.name == "check":
            prd = {"number": number, "head": pr["head"], "base": pr["base"], "draft": pr.get("draft")}
            spec = check_spec(
                p,
                prd,
                f"comment-{p.comment_id}",
                trigger="command",
                settings=services.settings,
                author=(pr.get("user") or {}).get("login") or p.pr_author,
            )
            what = f"a check of {render.code(sha[:12])}"
        else:
            samples = int(cmd.args.get("samples", cfg.samples))
            if samples > cfg.max_samples:
                answer(f"samples must be at most {cfg.max_samples} in this repository.")
                return
            spec = preview_spec(
                p,
                sha,
                samples,
                base_ref=pr["base"]["ref"],
                requested_by=user,
                reason=f"comment-{p.comment_id}",
                settings=services.settings,
            )
            what = f"a preview of {render.code(sha[:12])} with {samples} sample(s)"
        admission = services.submit(spec)
        if admission.refused:
            answer(f"sorry, {refusal_text(cmd.name, admission, user)}")
        elif admission.outcome == COALESCED:
            answer(f"{what} is already queued or running; its result will show on this pull request.")
        return
    # maintainer commands
    if not cfg.build_enabled:
        answer("release builds are disabled in this repository's configuration.")
        return
    if not approver(gh, repo, user, cfg):
        answer(
            "sorry, only maintainers configured in `.github/lab-ci.yaml` can approve or cancel release builds. Nothing was changed."
        )
        return
    if cmd.name == "approve-build":
        approve(gh, services, cfg, repo, cmd.positional[0], user, number=number, allowed=True, via="command", key=key)
    else:
        cancel(gh, services, repo, number, cmd.positional[0] if cmd.positional else None, user, key=key)
