"""Merge -> build request waiting for approval -> approval (command or button) ->
dispatched build -> status from workflow_run, through the real server and queue."""

import sys
import textwrap
from dataclasses import replace

from botlib import REPO, BotServer, adapt, load_payload, run_git

from lab_ci.bot.handlers import BUILD_CHECK

PR = 736


def merged_payload(github_side_repo, sha, number=PR):
    p = adapt(load_payload("pull_request/closed.payload.json"), clone_url=f"file://{github_side_repo}", number=number)
    p["pull_request"].update(merged=True, merge_commit_sha=sha, state="closed")
    return p


def push_payload(github_side_repo, sha):
    p = adapt(load_payload("push/with-installation.payload.json"), clone_url=f"file://{github_side_repo}")
    p.update(ref="refs/heads/main", before="0" * 39 + "1", after=sha, deleted=False, created=False)
    return p


def comment_payload(github_side_repo, body, user, number=PR):
    p = adapt(
        load_payload("issue_comment/created.with-installation.payload.json"), clone_url=f"file://{github_side_repo}"
    )
    p["issue"].update(number=number, pull_request={"url": f"https://api.github.com/repos/{REPO}/pulls/{number}"})
    p["issue"]["user"]["login"] = "contributor"
    p["comment"].update(body=body, id=abs(hash((body, user))) % 10**9)
    p["comment"]["user"].update(login=user, type="User")
    p["sender"].update(login=user, type="User")
    return p


def button_payload(github_side_repo, sha, user):
    p = adapt(load_payload("check_run/requested_action.payload.json"), clone_url=f"file://{github_side_repo}")
    p["check_run"].update(name=BUILD_CHECK, head_sha=sha, external_id="build=1", pull_requests=[])
    p["requested_action"] = {"identifier": "approve-build"}
    p["sender"].update(login=user, type="User")
    return p


def workflow_run_payload(github_side_repo, request_id, sha, action, conclusion=None):
    p = adapt(load_payload("workflow_run/completed.payload.json"), clone_url=f"file://{github_side_repo}")
    p["action"] = action
    p["workflow_run"].update(
        display_title=f"lab-ci build request {request_id} ({sha})",
        status="completed" if action == "completed" else "in_progress",
        conclusion=conclusion,
        id=900000 + request_id,
        html_url=f"https://github.com/{REPO}/actions/runs/{900000 + request_id}",
        path=".github/workflows/lab-ci-build-dispatch.yml",
        event="workflow_dispatch",
    )
    return p


def main_commits(repo, n=2):
    return run_git("rev-list", f"--max-count={n}", "refs/heads/main", cwd=repo).split()


def bot_comments(ghdouble, number=PR):
    return [c["body"] for c in ghdouble.issue_comments(REPO, number) if c["user"]["type"] == "Bot"]


def test_merge_approval_and_dispatched_build(bot, ghdouble, github_side_repo):
    sha = main_commits(github_side_repo)[0]
    assert bot.deliver("pull_request", merged_payload(github_side_repo, sha)).status_code == 202
    assert bot.deliver("push", push_payload(github_side_repo, sha)).status_code == 202  # same commit
    bot.wait_idle()
    [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
    assert run["status"] == "completed" and run["conclusion"] == "action_required"
    assert run["actions"] == [
        {
            "label": "Approve build",
            "identifier": "approve-build",
            "description": "Start the release build of this commit",
        }
    ]
    assert f"/lab approve-build {sha[:12]}" in run["output"]["summary"]

    # a contributor without permission is refused politely; nothing happens
    bot.deliver("issue_comment", comment_payload(github_side_repo, f"/lab approve-build {sha}", "contributor"))
    bot.wait_idle()
    assert (
        "sorry, only maintainers" in bot_comments(ghdouble)[-1] and "Nothing was changed" in bot_comments(ghdouble)[-1]
    )
    assert ghdouble.dispatches == []

    # a maintainer naming another commit is refused too
    other = main_commits(github_side_repo)[1]
    bot.deliver("issue_comment", comment_payload(github_side_repo, f"/lab approve-build {other[:10]}", "maintainer"))
    bot.wait_idle()
    assert "no release build waiting" in bot_comments(ghdouble)[-1] and ghdouble.dispatches == []

    # the maintainer approves the exact commit
    bot.deliver("issue_comment", comment_payload(github_side_repo, f"/lab approve-build {sha[:10]}", "maintainer"))
    bot.wait_idle()
    [d] = ghdouble.dispatches
    assert d["workflow"] == "lab-ci-build-dispatch.yml" and d["ref"] == "main" and d["inputs"]["sha"] == sha
    request_id = int(d["inputs"]["request_id"])
    [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
    assert run["status"] == "in_progress" and run["output"]["title"] == "Build dispatched" and run["actions"] == []
    assert "approved the release build" in bot_comments(ghdouble)[-1]

    # approving again is refused (already approved by someone else / dispatched)
    bot.deliver("issue_comment", comment_payload(github_side_repo, f"/lab approve-build {sha}", "admin-user"))
    bot.wait_idle()
    assert "already dispatched" in bot_comments(ghdouble)[-1] and len(ghdouble.dispatches) == 1

    # the workflow reports back
    bot.deliver("workflow_run", workflow_run_payload(github_side_repo, request_id, sha, "in_progress"))
    bot.wait_idle()
    [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
    assert run["status"] == "in_progress" and run["details_url"].endswith(f"/runs/{900000 + request_id}")
    bot.deliver("workflow_run", workflow_run_payload(github_side_repo, request_id, sha, "completed", "success"))
    bot.wait_idle()
    [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
    assert run["status"] == "completed" and run["conclusion"] == "success"
    store = bot.services.approvals
    req = store.get(request_id)
    assert (req.state, req.approved_by, req.run_id) == ("succeeded", "maintainer", 900000 + request_id)
    assert all(j["state"] == "done" for j in bot.queue.jobs())


def test_newer_merge_supersedes_and_button_approval(bot, ghdouble, github_side_repo):
    old, new = main_commits(github_side_repo)[1], main_commits(github_side_repo)[0]
    bot.deliver("pull_request", merged_payload(github_side_repo, old, number=700))
    bot.wait_idle()
    bot.deliver("pull_request", merged_payload(github_side_repo, new, number=701))
    bot.wait_idle()
    [old_run] = ghdouble.runs_named(REPO, BUILD_CHECK, old)
    assert (
        old_run["conclusion"] == "skipped"
        and old_run["output"]["title"] == f"Superseded by {new[:12]}"
        and old_run["actions"] == []
    )
    # the old button no longer works: the reply lands on the old PR
    bot.deliver("check_run", button_payload(github_side_repo, old, "maintainer"))
    bot.wait_idle()
    assert "already superseded" in bot_comments(ghdouble, 700)[-1] and ghdouble.dispatches == []
    # a writer (not a maintainer) presses the button on the new one: refused on the new PR
    bot.deliver("check_run", button_payload(github_side_repo, new, "writer"))
    bot.wait_idle()
    assert "only maintainers" in bot_comments(ghdouble, 701)[-1] and ghdouble.dispatches == []
    # an admin presses it
    bot.deliver("check_run", button_payload(github_side_repo, new, "admin-user"))
    bot.wait_idle()
    assert [d["inputs"]["sha"] for d in ghdouble.dispatches] == [new]


def test_team_members_can_approve_when_configured_and_cancel(bot, ghdouble, github_side_repo):
    sha = main_commits(github_side_repo)[0]
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = (
        "build:\n  approvers:\n    permission: admin\n    teams: [release]\n"
    )
    ghdouble.teams[("octo-org", "release")] = {"writer": "active"}
    bot.deliver("pull_request", merged_payload(github_side_repo, sha))
    bot.wait_idle()
    bot.deliver(
        "issue_comment", comment_payload(github_side_repo, f"/lab approve-build {sha}", "maintainer")
    )  # maintain < admin
    bot.wait_idle()
    assert "only maintainers" in bot_comments(ghdouble)[-1] and ghdouble.dispatches == []
    bot.deliver("issue_comment", comment_payload(github_side_repo, "/lab cancel-build", "writer"))  # team member
    bot.wait_idle()
    assert "cancelled the release build" in bot_comments(ghdouble)[-1]
    [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
    assert run["conclusion"] == "cancelled" and "Cancelled by writer" == run["output"]["title"]


def test_approvals_survive_a_restart(bot_settings, ghdouble, github_side_repo):
    sha = main_commits(github_side_repo)[0]
    first = BotServer(bot_settings).start()
    try:
        first.deliver("pull_request", merged_payload(github_side_repo, sha))
        first.wait_idle()
    finally:
        first.stop()
    second = BotServer(bot_settings).start()  # same data dir and queue file
    try:
        second.deliver("issue_comment", comment_payload(github_side_repo, f"/lab approve-build {sha}", "maintainer"))
        second.wait_idle()
        assert [d["inputs"]["sha"] for d in ghdouble.dispatches] == [sha]
    finally:
        second.stop()


def test_local_executor_runs_the_build_command(bot_settings, ghdouble, github_side_repo, tmp_path):
    """executor: local -> `<build command> --taxonomy <mirror> --commit SHA --out DIR`."""
    sha = main_commits(github_side_repo)[0]
    script = tmp_path / "fake_build.py"  # stands in for `lab-ci build`: checks its inputs for real
    script.write_text(
        textwrap.dedent("""
        import argparse, pathlib, subprocess, sys
        ap = argparse.ArgumentParser(); ap.add_argument("--taxonomy"); ap.add_argument("--commit"); ap.add_argument("--out")
        a = ap.parse_args()
        subprocess.run(["git", "--git-dir", a.taxonomy, "cat-file", "-e", a.commit + "^{commit}"], check=True)
        n = subprocess.run(["git", "--git-dir", a.taxonomy, "ls-tree", "-r", "--name-only", a.commit], capture_output=True, text=True, check=True).stdout.count("qna.yaml")
        pathlib.Path(a.out, "model.txt").write_text(f"{a.commit} {n}")
        print(f"built {a.commit} from {n} leaves")
    """)
    )
    settings = replace(
        bot_settings,
        allow_local_executor=True,
        build_command=(sys.executable, str(script)),
        git_url_template=f"file://{github_side_repo.parent.parent}/{{repo}}.git",
    )
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = "build:\n  executor: local\n"
    server = BotServer(settings).start()
    try:
        server.deliver("pull_request", merged_payload(github_side_repo, sha))
        server.wait_idle()
        server.deliver("issue_comment", comment_payload(github_side_repo, f"/lab approve-build {sha}", "maintainer"))
        jobs = server.wait_idle()
        assert [j["kind"] for j in jobs if j["kind"].startswith("build")] == ["build-request", "build-local"]
        [run] = ghdouble.runs_named(REPO, BUILD_CHECK, sha)
        assert run["conclusion"] == "success", run["output"]
        assert f"built {sha} from" in run["output"]["text"]
        out = bot_settings.data_dir / "builds"
        [model] = list(out.glob("*/model.txt"))
        leaves = run_git("ls-tree", "-r", "--name-only", sha, cwd=github_side_repo).count("qna.yaml")
        assert model.read_text() == f"{sha} {leaves}" and leaves > 0
        assert ghdouble.dispatches == []
    finally:
        server.stop()
