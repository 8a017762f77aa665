"""Regression tests for the review findings, through the real server, queue and workers
against the GitHub REST double (which speaks GitHub's wire format)."""

import pytest
from botlib import REPO, adapt, load_payload
from test_flow_build import bot_comments, comment_payload, main_commits, merged_payload, workflow_run_payload
from test_flow_check import VALID_PR, pr_payload, setup_pull

from lab_ci.bot.handlers import BUILD_CHECK, PREVIEW_CHECK, SCHEMA_CHECK, load_repo_config


def approve(bot, ghdouble, github_side_repo, sha):
    bot.deliver("pull_request", merged_payload(github_side_repo, sha))
    bot.wait_idle()
    bot.deliver("issue_comment", comment_payload(github_side_repo, f"/lab approve-build {sha}", "maintainer"))
    return bot.wait_idle()


# -- finding 6: writes are not retried by the HTTP layer; the job retry looks up first -----
def test_comment_whose_post_applied_then_failed_is_posted_once(bot, ghdouble, github_side_repo):
    # GitHub applies the POST, then the proxy answers 502: the job fails and is retried
    ghdouble.fail("POST", r"/issues/\d+/comments$", 502, apply=True)
    bot.deliver("issue_comment", comment_payload(github_side_repo, "/lab help", "contributor"))
    jobs = bot.wait_idle()
    [job] = [j for j in jobs if j["kind"] == "command"]
    assert job["state"] == "done" and job["attempts"] == 2  # the failed attempt, then the retry
    replies = bot_comments(ghdouble)
    assert len(replies) == 1 and "here is what I can do" in replies[0]
    assert len(ghdouble.calls_to("POST", r"/issues/\d+/comments$")) == 1  # the retry found it


def test_dispatch_whose_post_applied_then_failed_starts_one_build(bot, ghdouble, github_side_repo):
    sha = main_commits(github_side_repo)[0]
    ghdouble.fail("POST", r"/actions/workflows/[^/]+/dispatches$", 504, apply=True)
    jobs = approve(bot, ghdouble, github_side_repo, sha)
    [job] = [j for j in jobs if j["kind"] == "build-dispatch"]
    assert job["state"] == "done" and job["attempts"] == 2
    assert len(ghdouble.dispatches) == 1 and len(ghdouble.calls_to("POST", r"/dispatches$")) == 1
    [wf_run] = ghdouble.workflow_runs
    request = bot.services.approvals.by_sha(REPO, sha)
    assert (request.state, request.run_id) == ("dispatched", wf_run["id"])
    [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
    assert run["output"]["title"] == "Build dispatched"


# -- finding 1: only the dispatched build workflow updates a build -------------------------
def test_workflow_runs_that_are_not_the_dispatched_build_are_ignored(bot, ghdouble, github_side_repo):
    sha = main_commits(github_side_repo)[0]
    approve(bot, ghdouble, github_side_repo, sha)
    request = bot.services.approvals.by_sha(REPO, sha)
    assert request.state == "dispatched"
    forged = []
    # a fork pull request's workflow titled like a build request
    p = workflow_run_payload(github_side_repo, request.id, sha, "completed", "failure")
    p["workflow_run"]["event"] = "pull_request"
    forged.append(p)
    # a dispatched run of another workflow file
    p = workflow_run_payload(github_side_repo, request.id, sha, "completed", "failure")
    p["workflow_run"]["path"] = ".github/workflows/other.yml"
    forged.append(p)
    # the right workflow, but another commit / no commit in the title
    p = workflow_run_payload(github_side_repo, request.id, "f" * 40, "completed", "failure")
    forged.append(p)
    p = workflow_run_payload(github_side_repo, request.id, sha, "completed", "failure")
    p["workflow_run"]["display_title"] = f"lab-ci build request {request.id}"
    forged.append(p)
    for p in forged:
        bot.deliver("workflow_run", p)
        bot.wait_idle()
    assert bot.services.approvals.get(request.id).state == "dispatched"
    [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
    assert run["status"] == "in_progress" and run["output"]["title"] == "Build dispatched"
    # the genuine run still updates it
    bot.deliver("workflow_run", workflow_run_payload(github_side_repo, request.id, sha, "completed", "failure"))
    bot.wait_idle()
    assert bot.services.approvals.get(request.id).state == "failed"


def test_cancelled_workflow_run_does_not_cancel_a_pending_request(bot, ghdouble, github_side_repo):
    sha = main_commits(github_side_repo)[0]
    bot.deliver("pull_request", merged_payload(github_side_repo, sha))
    bot.wait_idle()
    request = bot.services.approvals.by_sha(REPO, sha)
    assert request.state == "pending"
    bot.deliver("workflow_run", workflow_run_payload(github_side_repo, request.id, sha, "completed", "cancelled"))
    bot.wait_idle()
    assert bot.services.approvals.get(request.id).state == "pending"
    [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
    assert run["conclusion"] == "action_required"


# -- finding 2: a comment that crashed the router -----------------------------------------
def test_superscript_digit_in_a_command_gets_a_reply(bot, ghdouble, github_side_repo):
    bot.deliver("issue_comment", comment_payload(github_side_repo, "/lab preview samples=\u00b2", "contributor"))
    jobs = bot.wait_idle()
    assert [(j["kind"], j["state"]) for j in jobs] == [("delivery", "done"), ("command", "done")]
    [reply] = bot_comments(ghdouble)
    assert "did not understand" in reply and "whole number" in reply


# -- finding 3: a malformed config is a clear error, not a traceback ------------------------
@pytest.mark.parametrize(
    "text",
    [
        "1: x\n",
        "check: {}\n1: x\nb: 2\n",
        "check:\n  1: x\n  strict: true\n",
        "build:\n  approvers:\n    1: a\n    b: c\n",
    ],
)
def test_config_with_odd_keys_is_reported(gh, ghdouble, text):
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = text
    cfg, error = load_repo_config(gh, REPO, "main")
    assert error is not None and error.startswith(".github/lab-ci.yaml:") and "unknown key" in error


def test_config_with_odd_keys_fails_the_check_clearly(bot, ghdouble, github_side_repo):
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = "check: {}\n1: x\nb: 2\n"
    head = setup_pull(ghdouble, github_side_repo, VALID_PR)
    bot.deliver("pull_request", pr_payload(github_side_repo, VALID_PR))
    jobs = bot.wait_idle()
    assert all(j["state"] == "done" and j["attempts"] == 1 for j in jobs)
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert run["conclusion"] == "failure" and "Broken .github/lab-ci.yaml" in run["output"]["title"]
    assert "unknown key" in run["output"]["summary"] and "Traceback" not in run["output"]["summary"]


# -- finding 14: the repository names a teacher; the server maps names to models ----------
def test_unknown_teacher_name_is_reported_on_the_preview_run(bot_settings, ghdouble, github_side_repo):
    from dataclasses import replace

    from botlib import BotServer

    bot_settings = replace(bot_settings, teachers=(("tiny", "/models/does-not-matter.gguf"),))
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = "preview:\n  teacher: huge\n"
    head = setup_pull(ghdouble, github_side_repo, VALID_PR)
    server = BotServer(bot_settings).start()
    try:
        server.deliver("pull_request", pr_payload(github_side_repo, VALID_PR))
        jobs = server.wait_idle()
    finally:
        server.stop()
    assert [(j["kind"], j["state"]) for j in jobs] == [("delivery", "done"), ("check", "done"), ("preview", "done")]
    [prev] = ghdouble.runs_named(REPO, PREVIEW_CHECK, head)
    assert prev["conclusion"] == "failure" and "Unknown teacher 'huge'" in prev["output"]["title"]
    assert "`tiny`" in prev["output"]["summary"] and "/models" not in prev["output"]["summary"]


def test_teacher_path_in_the_repository_config_is_refused(bot, ghdouble, github_side_repo):
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = "preview:\n  teacher: /etc/passwd\n"
    head = setup_pull(ghdouble, github_side_repo, VALID_PR)
    bot.deliver("pull_request", pr_payload(github_side_repo, VALID_PR))
    bot.wait_idle()
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert (
        run["conclusion"] == "failure"
        and "preview.teacher" in run["output"]["summary"]
        and "not a path or URL" in run["output"]["summary"]
    )
    assert not ghdouble.runs_named(REPO, PREVIEW_CHECK, head)


# -- finding 5: re-running an old commit's check leaves the head's check alone ------------
def test_rerequested_check_of_an_old_commit_does_not_cancel_the_head(github_side_repo, tmp_path):
    from lab_ci.bot.handlers import route
    from lab_ci.bot.queue import SQLiteQueue

    old = main_commits(github_side_repo)[0]  # a commit that is not the PR head
    [head_spec] = route("pull_request", pr_payload(github_side_repo, VALID_PR), "d-head")
    p = adapt(load_payload("check_run/rerequested.payload.json"), clone_url=f"file://{github_side_repo}")
    p["check_run"].update(name=SCHEMA_CHECK, head_sha=old, external_id=f"pr={VALID_PR}", pull_requests=[])
    [rerun_spec] = route("check_run", p, "d-rerun")
    assert rerun_spec.kind == "check" and rerun_spec.payload["head_sha"] == old
    assert rerun_spec.supersede_token is None and rerun_spec.key == head_spec.key
    q = SQLiteQueue(tmp_path / "q.db")
    try:
        head_id = q.enqueue(head_spec)
        running = q.claim("w", 30)  # the head's check is running when the re-run arrives
        assert running.id == head_id
        q.enqueue(rerun_spec)
        running.recheck = 0
        assert not running.is_cancelled() and q.get(head_id)["cancel_requested"] == 0
    finally:
        q.close()
