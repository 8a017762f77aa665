"""GitHubClient / GitHubApp against the REST double on loopback (PyGithub parses the
double's responses; faults are scripted per route)."""

import time

import pytest
from botlib import APP_ID, INSTALLATION_ID, REPO

from lab_ci.bot.github import GitHubApp, GitHubClient, GitHubError, NotInstalledError, PermissionMissingError

SHA = "c" * 40


def _anns(n):
    return [
        {
            "path": "compositional_skills/x/qna.yaml",
            "start_line": i + 1,
            "end_line": i + 1,
            "annotation_level": "failure",
            "message": f"problem {i}",
        }
        for i in range(n)
    ]


def test_installation_token_is_minted_with_a_jwt_and_cached(ghdouble, github_app):
    t1 = github_app.token(INSTALLATION_ID)
    t2 = github_app.token(INSTALLATION_ID)
    assert t1 == t2 and t1.startswith("ghs_")
    assert len(ghdouble.calls_to("POST", r"/app/installations/77/access_tokens")) == 1


def test_token_is_refreshed_a_minute_before_expiry(ghdouble, app_key, transport):
    now = [time.time()]
    app = GitHubApp(APP_ID, app_key[0], transport=transport, clock=lambda: now[0])
    ghdouble.token_ttl = 120
    t1 = app.token(INSTALLATION_ID)
    now[0] += 30
    assert app.token(INSTALLATION_ID) == t1
    now[0] += 40  # 50 s left: inside the one-minute margin
    assert app.token(INSTALLATION_ID) != t1
    assert len(ghdouble.calls_to("POST", r"access_tokens")) == 2


def test_wrong_key_is_a_clear_401(ghdouble, transport):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        .decode()
    )
    with pytest.raises(GitHubError) as e:
        GitHubApp(APP_ID, other, transport=transport).token(INSTALLATION_ID)
    assert e.value.status == 401 and "credentials" in str(e.value) and not e.value.retryable


def test_not_installed_is_clear_and_permanent(github_app):
    with pytest.raises(NotInstalledError) as e:
        github_app.client(999).get_pull(REPO, 1)
    assert "not installed" in str(e.value) and not e.value.retryable


def test_bad_token_is_401(ghdouble, transport):
    gh = GitHubClient("ghs_not_a_real_token", transport=transport)
    with pytest.raises(GitHubError) as e:
        gh.collaborator_role(REPO, "maintainer")
    assert e.value.status == 401


def test_check_run_annotations_go_in_batches_of_50(ghdouble, gh):
    run = gh.publish_check_run(
        REPO,
        name="lab-ci/schema",
        head_sha=SHA,
        conclusion="failure",
        title="t",
        summary="s",
        annotations=_anns(120),
        external_id="pr=3",
    )
    posts = ghdouble.calls_to("POST", r"/check-runs$")
    patches = ghdouble.calls_to("PATCH", r"/check-runs/\d+$")
    assert len(posts) == 1 and len(patches) == 2
    assert [len(c.json["output"]["annotations"]) for c in posts + patches] == [50, 50, 20]
    assert all(c.json["output"]["title"] == "t" and c.json["output"]["summary"] == "s" for c in patches)
    assert run["output"]["annotations_count"] == 120
    stored = ghdouble.annotations[run["id"]]
    assert [a["start_line"] for a in stored] == list(range(1, 121))


def test_the_double_rejects_more_than_50_annotations_like_github(ghdouble, gh):
    with pytest.raises(GitHubError) as e:
        gh.create_check_run(
            REPO,
            {
                "name": "x",
                "head_sha": SHA,
                "status": "completed",
                "conclusion": "failure",
                "output": {"title": "t", "summary": "s", "annotations": _anns(51)},
            },
        )
    assert e.value.status == 422
    with pytest.raises(GitHubError) as e:
        gh.create_check_run(REPO, {"name": "x", "head_sha": SHA, "status": "completed", "conclusion": "great"})
    assert e.value.status == 422


def test_publishing_twice_is_idempotent_and_resumes_partial_annotations(ghdouble, gh):
    kw = dict(
        name="lab-ci/schema",
        head_sha=SHA,
        conclusion="failure",
        title="t",
        summary="s",
        annotations=_anns(75),
        external_id="pr=3",
    )
    ghdouble.fail("PATCH", r"/check-runs/\d+$", 500, times=10)  # the second batch fails for good
    with pytest.raises(GitHubError) as e:
        gh.publish_check_run(REPO, **kw)
    assert e.value.transient
    ghdouble.faults.clear()
    run = gh.publish_check_run(REPO, **kw)  # the job's retry
    again = gh.publish_check_run(REPO, **kw)  # and a duplicate run of the job
    assert len(ghdouble.runs_named(REPO, "lab-ci/schema", SHA)) == 1
    assert run["id"] == again["id"] and again["output"]["annotations_count"] == 75
    assert [a["start_line"] for a in ghdouble.annotations[run["id"]]] == list(range(1, 76))
    # A different result on a run with annotations gets a fresh run (they cannot be deleted)
    new = gh.publish_check_run(REPO, **{**kw, "annotations": _anns(2), "summary": "s2"})
    assert new["id"] != run["id"] and new["output"]["annotations_count"] == 2
    # but a run without annotations is edited in place
    ok = gh.publish_check_run(REPO, name="lab-ci/preview", head_sha=SHA, status="in_progress", title="t", summary="a")
    done = gh.publish_check_run(REPO, name="lab-ci/preview", head_sha=SHA, conclusion="success", title="t", summary="b")
    assert ok["id"] == done["id"] and done["status"] == "completed"


def test_sticky_comment_found_across_pages_and_edited_in_place(ghdouble, gh):
    for i in range(130):
        ghdouble.add_comment(REPO, 5, f"chatter {i}")
    ghdouble.add_comment(REPO, 5, "<!-- lab-ci:preview --> fake one by a human")  # must not be edited
    c1, how1 = gh.upsert_sticky_comment(
        REPO, 5, "<!-- lab-ci:preview -->", "<!-- lab-ci:preview -->\nv1", bot_login="lab-ci[bot]"
    )
    for i in range(5):
        ghdouble.add_comment(REPO, 5, f"more {i}")
    c2, how2 = gh.upsert_sticky_comment(
        REPO, 5, "<!-- lab-ci:preview -->", "<!-- lab-ci:preview -->\nv2", bot_login="lab-ci[bot]"
    )
    c3, how3 = gh.upsert_sticky_comment(
        REPO, 5, "<!-- lab-ci:preview -->", "<!-- lab-ci:preview -->\nv2", bot_login="lab-ci[bot]"
    )
    assert (how1, how2, how3) == ("created", "edited", "unchanged")
    assert c1["id"] == c2["id"] == c3["id"]
    bots = [c for c in ghdouble.issue_comments(REPO, 5) if c["user"]["type"] == "Bot"]
    assert len(bots) == 1 and bots[0]["body"].endswith("v2")
    lists = ghdouble.calls_to("GET", r"/issues/5/comments")
    assert any(c.query.get("page") == "2" for c in lists)  # followed the Link header


def test_permissions_teams_contents_dispatch(ghdouble, gh):
    assert gh.collaborator_role(REPO, "maintainer") == "maintain"
    assert gh.collaborator_role(REPO, "admin-user") == "admin"
    assert gh.collaborator_role(REPO, "stranger") == "read"
    ghdouble.teams[("octo-org", "release")] = {"relmgr": "active", "invited": "pending"}
    assert gh.team_member("octo-org", "release", "relmgr")
    assert not gh.team_member("octo-org", "release", "invited")
    assert not gh.team_member("octo-org", "release", "stranger")
    assert not gh.team_member("octo-org", "nope", "relmgr")
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = "preview:\n  samples: 2\n"
    ghdouble.repos[REPO].files[("feature", ".github/lab-ci.yaml")] = "evil: 1\n"
    assert gh.read_file(REPO, ".github/lab-ci.yaml", "main") == "preview:\n  samples: 2\n"
    assert gh.read_file(REPO, ".github/missing.yaml", "main") is None
    assert ghdouble.calls_to("GET", r"/contents/")[0].query == {"ref": "main"}
    gh.dispatch_workflow(REPO, "lab-ci-build-dispatch.yml", "main", {"sha": SHA, "request_id": 3})
    assert ghdouble.dispatches == [
        {
            "repo": REPO,
            "workflow": "lab-ci-build-dispatch.yml",
            "ref": "main",
            "inputs": {"sha": SHA, "request_id": "3"},
        }
    ]
    with pytest.raises(GitHubError) as e:
        gh.dispatch_workflow(REPO, "missing.yml", "main", {})
    assert e.value.status == 404 and not e.value.transient


def test_rate_limits_are_waited_out(ghdouble, gh):
    ghdouble.fail_rate_limit("GET", r"/permission$", reset_in=1)
    ghdouble.fail_secondary_rate_limit("GET", r"/permission$", retry_after=1)
    ghdouble.fail_secondary_rate_limit("GET", r"/permission$", retry_after=1, status=429)
    assert gh.collaborator_role(REPO, "maintainer") == "maintain"
    calls = ghdouble.calls_to("GET", r"/permission$")
    assert [c.status for c in calls] == [403, 403, 429, 200]
    # Retry-After: 1 honoured: the double saw the next request at least a second after
    # it answered each secondary rate limit (its own clock, not the test's)
    assert all(b.at - a.done_at >= 0.95 for a, b in zip(calls[1:], calls[2:]))
    assert calls[1].at >= calls[0].done_at  # and the primary limit's reset was awaited


def test_rate_limit_longer_than_the_cap_is_reported_transient(ghdouble, gh):
    ghdouble.fail_rate_limit("GET", r"/pulls/1$", reset_in=600)
    with pytest.raises(GitHubError) as e:
        gh.get_pull(REPO, 1)
    assert e.value.transient and "rate limit" in str(e.value)


def test_server_errors_on_reads_are_retried(ghdouble, gh):
    ghdouble.fail("GET", r"/permission$", 502)
    ghdouble.fail("GET", r"/permission$", 503)
    assert gh.collaborator_role(REPO, "writer") == "write"
    assert [c.status for c in ghdouble.calls_to("GET", r"/permission$")] == [502, 503, 200]
    ghdouble.fail("GET", r"/permission$", 500, times=20)
    with pytest.raises(GitHubError) as e:
        gh.collaborator_role(REPO, "writer")
    assert e.value.transient and e.value.status == 500 and "after retries" in str(e.value)


def test_writes_are_not_retried_when_github_may_have_applied_them(ghdouble, gh):
    marker = "<!-- lab-ci:reply command-1 -->"
    # the comment IS created, then a 502 comes back: a retried POST would post it twice
    ghdouble.fail("POST", r"/issues/9/comments$", 502, apply=True)
    with pytest.raises(GitHubError) as e:
        gh.create_comment_once(REPO, 9, marker, "hello")
    assert e.value.transient  # the job is retried instead ...
    assert len(ghdouble.calls_to("POST", r"/issues/9/comments$")) == 1
    c = gh.create_comment_once(REPO, 9, marker, "hello")  # ... and the retry looks first
    [only] = ghdouble.issue_comments(REPO, 9)
    assert only["body"] == f"{marker}\nhello" and c["id"] == only["id"]
    assert len(ghdouble.calls_to("POST", r"/issues/9/comments$")) == 1
    # the same for a PATCH that appends annotations
    run = gh.create_check_run(REPO, {"name": "x", "head_sha": SHA, "status": "in_progress"})
    ghdouble.fail("PATCH", r"/check-runs/\d+$", 500, apply=True)
    with pytest.raises(GitHubError):
        gh.update_check_run(REPO, run["id"], {"output": {"title": "t", "summary": "s", "annotations": _anns(2)}})
    assert len(ghdouble.annotations[run["id"]]) == 2 and len(ghdouble.calls_to("PATCH", r"/check-runs/\d+$")) == 1


def test_one_client_per_installation(github_app):
    assert github_app.client(INSTALLATION_ID) is github_app.client(INSTALLATION_ID)
    assert github_app.client(INSTALLATION_ID) is not github_app.client(INSTALLATION_ID + 1)


def test_timeouts_are_retried(ghdouble, gh):
    ghdouble.fail("GET", r"/permission$", 0, delay=2.5)  # slower than the 2 s client timeout
    assert gh.collaborator_role(REPO, "writer") == "write"
    assert len(ghdouble.calls_to("GET", r"/permission$")) == 2


def test_forbidden_is_a_clear_permission_error(ghdouble, gh):
    ghdouble.fail(
        "POST",
        r"/check-runs$",
        403,
        body={"message": "Resource not accessible by integration", "documentation_url": "x"},
    )
    with pytest.raises(PermissionMissingError) as e:
        gh.create_check_run(REPO, {"name": "x", "head_sha": SHA})
    assert "checks: write" in str(e.value) and not e.value.retryable


def test_a_same_named_check_run_of_another_app_is_left_alone(ghdouble, gh, transport):
    actions = GitHubClient(
        ghdouble.add_foreign_token({"id": 15368, "slug": "github-actions", "name": "GitHub Actions"}),
        transport=transport,
    )
    theirs = actions.create_check_run(
        REPO,
        {
            "name": "lab-ci/schema",
            "head_sha": SHA,
            "status": "completed",
            "conclusion": "success",
            "output": {"title": "t", "summary": "s"},
        },
    )
    assert theirs["app"]["slug"] == "github-actions"
    with pytest.raises(PermissionMissingError):  # GitHub: only the creating app may edit a run
        gh.update_check_run(REPO, theirs["id"], {"status": "in_progress"})
    ours = gh.publish_check_run(
        REPO, name="lab-ci/schema", head_sha=SHA, conclusion="failure", title="t", summary="s", annotations=_anns(1)
    )
    assert ours["id"] != theirs["id"] and ours["app"]["id"] == APP_ID
    assert ghdouble.check_runs[theirs["id"]]["conclusion"] == "success"
