"""End to end on loopback: signed deliveries -> the webhook app, queue and workers ->
our handlers -> a real bare mirror fetched over file:// -> the real checker -> the
GitHub REST double. Corpus pull requests from the real taxonomy history."""

import json

import pytest
from botlib import REPO, corpus_pr_payload, run_git

from lab_ci.bot.github import GitHubError
from lab_ci.bot.handlers import PREVIEW_CHECK, SCHEMA_CHECK, route, run_job
from lab_ci.bot.jobs import Job

INVALID_PR = 100  # corpus PR: missing version, too few seed examples, null task_description
VALID_PR = 736  # corpus PR: one valid compositional skill


def shas(repo, n):
    head = run_git("rev-parse", f"refs/pull/{n}/head", cwd=repo)
    base = run_git("rev-parse", "refs/heads/main", cwd=repo)
    return head, base


def pr_payload(github_side_repo, n, *, action="opened", draft=False):
    return corpus_pr_payload(github_side_repo, n, action=action, draft=draft)


def setup_pull(ghdouble, github_side_repo, n, **kw):
    head, base = shas(github_side_repo, n)
    ghdouble.add_pull(REPO, n, head_sha=head, base_sha=base, **kw)
    return head


def test_invalid_corpus_pr_gets_annotations_on_exact_lines(bot, ghdouble, github_side_repo):
    head = setup_pull(ghdouble, github_side_repo, INVALID_PR)
    r = bot.deliver("pull_request", pr_payload(github_side_repo, INVALID_PR))
    assert r.status_code == 202, r.text
    jobs = bot.wait_idle()
    assert [(j["kind"], j["state"]) for j in jobs] == [("delivery", "done"), ("check", "done")]

    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert "invalid" in run["output"]["title"]
    anns = ghdouble.annotations[run["id"]]
    path = "compositional_skills/writing/freeform/technical/draw_a_diagram/qna.yaml"
    by_line = {(a["start_line"], a.get("start_column")): a for a in anns}
    assert all(a["path"] == path for a in anns)
    assert by_line[(3, 1)]["annotation_level"] == "failure" and "at least 5" in by_line[(3, 1)]["message"]
    assert by_line[(41, 18)]["annotation_level"] == "failure" and "has no value" in by_line[(41, 18)]["message"]
    # the lines really are where the problems are, in the PR's blob
    lines = run_git("show", f"{head}:{path}", cwd=github_side_repo).split("\n")
    assert lines[1] == "seed_examples:" and lines[2].startswith("- ")  # line 3: the list itself
    assert lines[40] == "task_description:" and len(lines[40]) + 1 == 18  # column 18: the missing value
    # invalid: no preview
    assert not ghdouble.runs_named(REPO, PREVIEW_CHECK)
    # config was read from the default branch only
    assert [c.query.get("ref") for c in ghdouble.calls_to("GET", r"/contents/")] == ["main"]


def test_valid_corpus_pr_succeeds_then_preview_reports_missing_teacher(bot, ghdouble, github_side_repo):
    head = setup_pull(ghdouble, github_side_repo, VALID_PR)
    assert bot.deliver("pull_request", pr_payload(github_side_repo, VALID_PR)).status_code == 202
    jobs = bot.wait_idle()
    assert [(j["kind"], j["state"]) for j in jobs] == [("delivery", "done"), ("check", "done"), ("preview", "done")]
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert run["conclusion"] == "success" and ghdouble.annotations[run["id"]] == []
    [prev] = ghdouble.runs_named(REPO, PREVIEW_CHECK, head)
    assert prev["conclusion"] == "skipped" and "teacher" in prev["output"]["title"]


def test_draft_pr_is_checked_but_not_previewed(bot, ghdouble, github_side_repo):
    head = setup_pull(ghdouble, github_side_repo, VALID_PR, draft=True)
    bot.deliver("pull_request", pr_payload(github_side_repo, VALID_PR, draft=True))
    jobs = bot.wait_idle()
    assert [j["kind"] for j in jobs] == ["delivery", "check"]
    assert ghdouble.runs_named(REPO, SCHEMA_CHECK, head)[0]["conclusion"] == "success"


def test_broken_repo_config_is_reported_not_a_crash(bot, ghdouble, github_side_repo):
    head = setup_pull(ghdouble, github_side_repo, VALID_PR)
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = "preview:\n  samples: lots\n"
    bot.deliver("pull_request", pr_payload(github_side_repo, VALID_PR))
    jobs = bot.wait_idle()
    assert [(j["kind"], j["state"]) for j in jobs] == [("delivery", "done"), ("check", "done")]
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert run["conclusion"] == "failure" and "Broken .github/lab-ci.yaml" in run["output"]["title"]
    assert '.github/lab-ci.yaml:2:12: preview.samples: must be a whole number, got "lots"' in run["output"]["summary"]


def test_duplicate_and_forged_deliveries(bot, ghdouble, github_side_repo):
    setup_pull(ghdouble, github_side_repo, VALID_PR, draft=True)
    p = pr_payload(github_side_repo, VALID_PR, draft=True)
    assert bot.deliver("pull_request", p, delivery_id="dup-1").status_code == 202
    again = bot.deliver("pull_request", p, delivery_id="dup-1")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    forged = bot.deliver("pull_request", {**p, "number": 1}, secret=b"not-the-secret")
    assert forged.status_code == 401
    unsigned = bot.deliver("pull_request", {**p, "number": 2}, secret=None)
    assert unsigned.status_code == 401
    jobs = bot.wait_idle()
    assert [j["kind"] for j in jobs] == ["delivery", "check"]
    assert len(ghdouble.calls_to("POST", r"/check-runs$")) == 1


def test_github_errors_are_retried_by_the_queue_then_succeed(bot, ghdouble, github_side_repo):
    head = setup_pull(ghdouble, github_side_repo, INVALID_PR)
    # writes are not retried by the HTTP client (a 5xx may follow an applied write), so one
    # failed POST fails the job once and the queue retries it (reads are retried in place)
    ghdouble.fail("POST", r"/check-runs$", 502, times=1)
    ghdouble.fail_secondary_rate_limit("GET", r"/contents/", retry_after=1)
    bot.deliver("pull_request", pr_payload(github_side_repo, INVALID_PR))
    jobs = bot.wait_idle()
    check = [j for j in jobs if j["kind"] == "check"][0]
    assert check["state"] == "done" and check["attempts"] == 2
    assert [c.status for c in ghdouble.calls_to("POST", r"/check-runs$")][:2] == [502, 201]
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert (
        run["conclusion"] == "failure"
        and run["output"]["annotations_count"] == len(ghdouble.annotations[run["id"]]) > 0
    )


def test_github_down_for_good_is_reported_and_the_job_is_dead(bot_settings, ghdouble, github_side_repo):
    from dataclasses import replace

    from botlib import BotServer

    settings = replace(bot_settings)
    server = BotServer(settings).start()
    try:
        head = setup_pull(ghdouble, github_side_repo, INVALID_PR)
        ghdouble.fail("GET", r"/contents/", 503, times=100)
        p = pr_payload(github_side_repo, INVALID_PR)
        [spec] = route("pull_request", p, "x")
        server.queue.enqueue(
            type(spec)(spec.kind, spec.payload, spec.key, spec.supersede_token, spec.dedupe, max_attempts=2)
        )
        jobs = server.wait_idle()
        [check] = [j for j in jobs if j["kind"] == "check"]
        assert check["state"] == "dead" and "503" in check["last_error"]
        # the contributor is told on the check run (best effort, once GitHub answers writes)
        [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
        assert run["output"]["title"] == "lab-ci could not finish" and run["conclusion"] == "failure"
        assert "503" in run["output"]["summary"]
    finally:
        server.stop()


def test_rerunning_a_check_job_does_not_duplicate_side_effects(bot, ghdouble, github_side_repo):
    """A worker killed mid-job runs the job again: one check run per head and name."""
    head = setup_pull(ghdouble, github_side_repo, INVALID_PR, draft=True)
    [spec] = route("pull_request", pr_payload(github_side_repo, INVALID_PR, draft=True), "d")
    # attempt 1 dies publishing the result: POST in_progress worked, the PATCH with the
    # annotations fails (not retried by the client: it may have appended them)
    ghdouble.fail("PATCH", r"/check-runs/\d+$", 500, times=1)
    with pytest.raises(GitHubError):
        run_job(Job(1, spec.kind, spec.payload, spec.key, 1, spec.supersede_token), bot.services)
    assert [c.status for c in ghdouble.calls_to("PATCH", r"/check-runs/\d+$")] == [500]
    assert ghdouble.runs_named(REPO, SCHEMA_CHECK, head)[0]["status"] == "in_progress"
    run_job(Job(1, spec.kind, spec.payload, spec.key, 2, spec.supersede_token), bot.services)  # the retry
    run_job(Job(1, spec.kind, spec.payload, spec.key, 3, spec.supersede_token), bot.services)  # a duplicate run
    runs = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert len(runs) == 1
    anns = ghdouble.annotations[runs[0]["id"]]
    assert len(anns) == len({json.dumps(a, sort_keys=True) for a in anns}) == 4  # 3 errors + 1 warning, once each


def test_synchronize_supersedes_and_checks_the_new_head(bot, ghdouble, github_side_repo):
    old = setup_pull(ghdouble, github_side_repo, INVALID_PR)
    bot.deliver("pull_request", pr_payload(github_side_repo, INVALID_PR))
    bot.wait_idle()
    # the contributor pushes the valid leaf's commit on top (a new head in refs/pull/N/head)
    new = run_git("rev-parse", f"refs/pull/{VALID_PR}/head", cwd=github_side_repo)
    run_git("update-ref", f"refs/pull/{INVALID_PR}/head", new, cwd=github_side_repo)
    try:
        ghdouble.repos[REPO].pulls[INVALID_PR]["head"]["sha"] = new
        p = pr_payload(github_side_repo, INVALID_PR, action="synchronize", draft=True)
        bot.deliver("pull_request", p)
        bot.wait_idle()
        assert ghdouble.runs_named(REPO, SCHEMA_CHECK, old)[0]["conclusion"] == "failure"
        assert ghdouble.runs_named(REPO, SCHEMA_CHECK, new)[0]["conclusion"] == "success"
    finally:
        run_git("update-ref", f"refs/pull/{INVALID_PR}/head", old, cwd=github_side_repo)


def test_token_goes_in_a_header_never_the_url(tmp_path, github_side_repo):
    from lab_ci.bot.mirror import Mirrors, git_env

    env = git_env("ghs_secret123", allow_file=True)
    values = [env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))]
    assert any(v.startswith("Authorization: Basic ") for v in values)
    assert "ghs_secret123" not in " ".join(values)  # base64 of x-access-token:<token>
    assert env["GIT_CONFIG_KEY_0"] == "core.hooksPath" and env["GIT_TERMINAL_PROMPT"] == "0"
    head = run_git("rev-parse", f"refs/pull/{VALID_PR}/head", cwd=github_side_repo)
    got = Mirrors(tmp_path).fetch_pull(
        REPO, f"file://{github_side_repo}", number=VALID_PR, base_ref="main", head_sha=head, token="ghs_secret123"
    )
    assert got.head_sha == head
    assert run_git("rev-parse", f"refs/lab-ci/pull/{VALID_PR}/head", cwd=got.path) == head
    assert "ghs_secret123" not in (got.path / "config").read_text()
    assert not list(got.path.glob("hooks/*[!.sample]"))  # nothing from the PR can run
    with pytest.raises(Exception) as e:
        Mirrors(tmp_path).fetch_pull(
            REPO, f"file://{github_side_repo}", number=999999, base_ref="main", head_sha=head, token="ghs_secret123"
        )
    assert "ghs_secret123" not in str(e.value)


def test_a_head_the_pull_request_no_longer_has_is_skipped(bot, ghdouble, github_side_repo):
    setup_pull(ghdouble, github_side_repo, INVALID_PR)
    p = pr_payload(github_side_repo, INVALID_PR, action="synchronize")
    gone = "0123456789abcdef" * 2 + "01234567"
    p["pull_request"]["head"]["sha"] = gone  # a force-push replaced it before we fetched
    bot.deliver("pull_request", p)
    jobs = bot.wait_idle()
    assert [(j["kind"], j["state"]) for j in jobs] == [("delivery", "done"), ("check", "done")]
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, gone)
    assert run["conclusion"] == "skipped" and "newer push" in run["output"]["title"]
