"""Slash commands and the Re-run button end to end (real server, queue, double)."""

from botlib import REPO, adapt, load_payload, run_git

from lab_ci.bot.handlers import SCHEMA_CHECK

PR = 100


def comment(github_side_repo, body, user, *, author="contributor", user_type="User"):
    p = adapt(
        load_payload("issue_comment/created.with-installation.payload.json"), clone_url=f"file://{github_side_repo}"
    )
    p["issue"].update(number=PR, pull_request={"url": f"https://api.github.com/repos/{REPO}/pulls/{PR}"})
    p["issue"]["user"]["login"] = author
    p["comment"].update(body=body, id=abs(hash((body, user))) % 10**9)
    p["comment"]["user"].update(login=user, type=user_type)
    p["sender"].update(login=user, type=user_type)
    return p


def replies(ghdouble):
    return [c["body"] for c in ghdouble.issue_comments(REPO, PR) if c["user"]["type"] == "Bot"]


def setup(ghdouble, repo):
    head = run_git("rev-parse", f"refs/pull/{PR}/head", cwd=repo)
    ghdouble.add_pull(REPO, PR, head_sha=head, base_sha=run_git("rev-parse", "main", cwd=repo), user="contributor")
    return head


def test_help_unknown_and_hostile_commands(bot, ghdouble, github_side_repo):
    setup(ghdouble, github_side_repo)
    bot.deliver("issue_comment", comment(github_side_repo, "/lab help", "someone"))
    bot.deliver("issue_comment", comment(github_side_repo, "/lab @admin-team <img src=x>", "someone"))
    bot.deliver("issue_comment", comment(github_side_repo, "/lab preview samples=99", "contributor"))
    bot.wait_idle()
    out = replies(ghdouble)
    assert len(out) == 3
    help_reply = next(r for r in out if "here is what I can do" in r)
    assert "/lab approve-build" in help_reply and "1-10" in help_reply  # repo default max_samples
    unknown = next(r for r in out if "did not understand" in r)
    assert "@admin" not in unknown and "<img" not in unknown  # echoed safely
    assert any("samples must be a whole number from 1 to 20" in r for r in out)
    assert not ghdouble.runs_named(REPO, SCHEMA_CHECK)


def test_check_command_permission_and_rerun(bot, ghdouble, github_side_repo):
    head = setup(ghdouble, github_side_repo)
    bot.deliver("issue_comment", comment(github_side_repo, "/lab check", "drive-by"))
    bot.wait_idle()
    assert "only the pull request's author or people with write access" in replies(ghdouble)[-1]
    assert not ghdouble.runs_named(REPO, SCHEMA_CHECK)

    bot.deliver("issue_comment", comment(github_side_repo, "please\n/lab check", "contributor"))
    bot.wait_idle()
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert run["conclusion"] == "failure" and run["external_id"].startswith(f"pr={PR};")

    # the Re-run button on that check run: same run edited, no duplicate annotations
    p = adapt(load_payload("check_run/rerequested.payload.json"), clone_url=f"file://{github_side_repo}")
    p["check_run"].update(name=SCHEMA_CHECK, head_sha=head, external_id=run["external_id"], pull_requests=[])
    bot.deliver("check_run", p)
    jobs = bot.wait_idle()
    assert [j["kind"] for j in jobs if j["kind"] == "check"] == ["check", "check"]
    [again] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert again["id"] == run["id"] and again["output"]["annotations_count"] == run["output"]["annotations_count"]


def test_bot_comments_are_never_answered(bot, ghdouble, github_side_repo):
    setup(ghdouble, github_side_repo)
    r = bot.deliver("issue_comment", comment(github_side_repo, "/lab help", "lab-ci[bot]", user_type="Bot"))
    assert r.status_code == 202
    jobs = bot.wait_idle()
    assert [j["kind"] for j in jobs] == ["delivery"] and replies(ghdouble) == []
