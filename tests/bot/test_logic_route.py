"""route(): real webhook payloads (adapted in repository/PR fields) -> jobs. Pure."""

import pytest
from botlib import INSTALLATION_ID, REPO, adapt, load_payload

from lab_ci.bot.handlers import route

CLONE = "file:///srv/git/octo-org/taxonomy.git"
HEAD = "1" * 40
BASE = "2" * 40


def pr_event(action, **kw):
    name = {"opened": "opened.with-organization.payload.json"}.get(action, f"{action}.payload.json")
    return adapt(load_payload(f"pull_request/{name}"), clone_url=CLONE, number=12, head_sha=HEAD, base_sha=BASE, **kw)


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "ready_for_review"])
def test_pull_request_events_make_one_check_job(action):
    p = pr_event(action)
    p["pull_request"]["state"] = "open"
    [spec] = route("pull_request", p, "d-1")
    assert spec.kind == "check"
    assert spec.key == f"{REPO}#12" and spec.supersede_token == HEAD and spec.dedupe == "d-1:check"
    assert spec.payload == {
        "repo": REPO,
        "installation_id": INSTALLATION_ID,
        "clone_url": CLONE,
        "default_branch": "main",
        "number": 12,
        "head_sha": HEAD,
        "base_ref": "main",
        "draft": bool(p["pull_request"]["draft"]),
        "trigger": action,
        "author": p["pull_request"]["user"]["login"],  # whose pushes the automatic preview is charged to
    }


def test_draft_flag_travels():
    p = pr_event("opened", draft=True)
    assert route("pull_request", p, "d")[0].payload["draft"] is True


@pytest.mark.parametrize("action", ["labeled", "assigned", "locked", "converted_to_draft", "review_requested"])
def test_irrelevant_pull_request_actions(action):
    assert route("pull_request", pr_event(action), "d") == []


def test_merged_pull_request_into_default_branch_requests_a_build():
    p = adapt(load_payload("pull_request/closed.payload.json"), clone_url=CLONE, number=12)
    p["pull_request"].update(merged=True, merge_commit_sha="3" * 40)
    [spec] = route("pull_request", p, "d")
    assert spec.kind == "build-request" and spec.payload["sha"] == "3" * 40 and spec.payload["number"] == 12
    assert spec.dedupe == f"build-request:{REPO}@{'3' * 40}"
    p["pull_request"]["merged"] = False
    assert route("pull_request", p, "d") == []
    p["pull_request"]["merged"] = True
    p["pull_request"]["base"]["ref"] = "release-1"
    assert route("pull_request", p, "d") == []


def test_push_to_default_branch_requests_a_build_with_the_same_dedupe():
    p = adapt(load_payload("push/with-installation.payload.json"), clone_url=CLONE)
    p.update(ref="refs/heads/main", after="3" * 40, deleted=False)
    [spec] = route("push", p, "d")
    assert spec.kind == "build-request" and spec.payload["number"] is None
    assert spec.dedupe == f"build-request:{REPO}@{'3' * 40}"  # same as the merged PR's
    p["ref"] = "refs/heads/feature"
    assert route("push", p, "d") == []
    p.update(ref="refs/heads/main", deleted=True, after="0" * 40)
    assert route("push", p, "d") == []
    p.update(ref="refs/tags/v1", deleted=False, after="3" * 40)
    assert route("push", p, "d") == []


def comment_event(body, *, user_type="User", on_pr=True, action="created"):
    p = adapt(load_payload("issue_comment/created.with-installation.payload.json"), clone_url=CLONE)
    p["action"] = action
    p["issue"]["number"] = 12
    if on_pr:
        p["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/12"}
    else:
        p["issue"].pop("pull_request", None)
    p["comment"]["body"] = body
    p["comment"]["user"]["type"] = user_type
    p["sender"]["type"] = user_type
    return p


def test_slash_command_becomes_a_command_job():
    [spec] = route("issue_comment", comment_event("/lab preview samples=4"), "d-9")
    # commands never wait behind the pull request's check or preview (key REPO#12)
    assert spec.kind == "command" and spec.key == f"{REPO}#12/commands" and spec.dedupe == "d-9:command"
    assert spec.payload["command"]["name"] == "preview" and spec.payload["command"]["args"] == {"samples": "4"}
    assert spec.payload["user"] == "Codertocat" and spec.payload["number"] == 12


def test_unknown_commands_still_get_a_reply_job():
    [spec] = route("issue_comment", comment_event("/lab frobnicate"), "d")
    assert spec.payload["command"]["name"] == "unknown"


@pytest.mark.parametrize(
    "kw",
    [
        {"body": "nice work"},
        {"body": "/lab check", "user_type": "Bot"},  # never answer bots (no loops)
        {"body": "/lab check", "on_pr": False},  # plain issues are not ours
        {"body": "/lab check", "action": "edited"},
        {"body": "/lab check", "action": "deleted"},
    ],
)
def test_comments_that_are_ignored(kw):
    body = kw.pop("body")
    assert route("issue_comment", comment_event(body, **kw), "d") == []


def test_own_comment_via_app_is_ignored():
    p = comment_event("/lab check")
    p["comment"]["performed_via_github_app"] = {"id": 1, "slug": "lab-ci"}
    assert route("issue_comment", p, "d") == []


def check_run_event(action, name, *, external_id="pr=12", identifier=None):
    p = adapt(load_payload(f"check_run/{action}.payload.json"), clone_url=CLONE)
    p["check_run"].update(name=name, head_sha=HEAD, external_id=external_id, pull_requests=[])
    if identifier:
        p["requested_action"] = {"identifier": identifier}
    return p


def test_rerun_button_rechecks_the_pull_request_from_external_id():
    [spec] = route("check_run", check_run_event("rerequested", "lab-ci/schema"), "d")
    assert spec.kind == "check" and spec.payload["number"] == 12 and spec.payload["head_sha"] == HEAD
    assert spec.payload["trigger"] == "rerequested"
    assert route("check_run", check_run_event("rerequested", "someone-else"), "d") == []
    assert route("check_run", check_run_event("rerequested", "lab-ci/schema", external_id=""), "d") == []


def test_approve_button():
    [spec] = route("check_run", check_run_event("requested_action", "lab-ci/build", identifier="approve-build"), "d")
    assert spec.kind == "approve" and spec.payload["sha"] == HEAD and spec.payload["via"] == "button"
    assert route("check_run", check_run_event("requested_action", "lab-ci/build", identifier="other"), "d") == []
    assert (
        route("check_run", check_run_event("requested_action", "lab-ci/schema", identifier="approve-build"), "d") == []
    )


def test_workflow_run_of_the_build_workflow():
    p = adapt(load_payload("workflow_run/completed.payload.json"), clone_url=CLONE)
    p["workflow_run"]["display_title"] = f"lab-ci build request 7 ({'3' * 40})"
    assert p["workflow_run"]["event"] == "repository_dispatch"  # as in the real payload
    assert route("workflow_run", p, "d") == []  # only the bot's workflow_dispatch runs count
    for event in ("pull_request", "pull_request_target", "push"):  # e.g. a fork PR titled like it
        p["workflow_run"]["event"] = event
        assert route("workflow_run", p, "d") == []
    p["workflow_run"]["event"] = "workflow_dispatch"
    [spec] = route("workflow_run", p, "d")
    assert spec.kind == "build-status" and spec.payload["request_id"] == 7 and spec.payload["sha"] == "3" * 40
    assert spec.payload["conclusion"] == p["workflow_run"]["conclusion"]
    p["workflow_run"]["display_title"] = "Some other workflow"
    assert route("workflow_run", p, "d") == []


@pytest.mark.parametrize(
    "event,name",
    [
        ("ping", "payload.json"),
        ("installation", "created.payload.json"),
        ("check_suite", "requested.payload.json"),
        ("pull_request_review", "submitted.payload.json"),
    ],
)
def test_other_events_are_ignored(event, name):
    assert route(event, load_payload(f"{event}/{name}"), "d") == []


def test_payload_without_installation_is_ignored():
    p = pr_event("opened")
    del p["installation"]
    assert route("pull_request", p, "d") == []


def test_rerequested_check_has_no_supersede_token():
    """Finding 5: a re-run of an older commit must not cancel the head's running check."""
    [spec] = route("check_run", check_run_event("rerequested", "lab-ci/schema"), "d")
    assert spec.kind == "check" and spec.payload["trigger"] == "rerequested" and spec.supersede_token is None
    [pr_spec] = route("pull_request", pr_event("synchronize"), "d2")
    assert pr_spec.supersede_token == pr_spec.payload["head_sha"]  # pushes still supersede


def test_superscript_digits_are_not_a_sample_count():
    """Finding 2: "²".isdigit() is True but int("²") raises."""
    from lab_ci.bot import commands

    for v in ("\u00b2", "\u0663", "\u2460"):
        cmd = commands.parse(f"/lab preview samples={v}", max_samples=20)
        assert cmd.name == "invalid" and "whole number" in cmd.error
    [spec] = route("issue_comment", comment_event("/lab preview samples=\u00b2"), "d")
    assert spec.payload["command"]["name"] == "invalid"
