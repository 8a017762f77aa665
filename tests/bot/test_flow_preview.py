"""Preview end to end: a valid skill leaf of the example taxonomy pushed as a pull request
in a test repository; the real tiny teacher (llama.cpp) generates samples; ONE sticky
comment, edited in place on synchronize and on `/lab preview`."""

import shutil
import subprocess

import pytest
from botlib import OWNER, REPO, adapt, load_payload, run_git

from lab_ci.bot.handlers import PREVIEW_CHECK, PREVIEW_MARKER, SCHEMA_CHECK

LEAF = "compositional_skills/linguistics/antonyms"


@pytest.fixture
def preview_repo(tmp_path, example_taxonomy_repo):
    """GitHub side: main without the antonyms leaf; refs/pull/1/head adds it."""
    work = tmp_path / "work"
    shutil.copytree(example_taxonomy_repo, work)
    run_git("rm", "-r", "--quiet", LEAF, cwd=work)
    run_git("commit", "--quiet", "-m", "main without the leaf", cwd=work)
    run_git("checkout", "--quiet", "-b", "add-antonyms", cwd=work)
    subprocess.run(["git", "checkout", "--quiet", "HEAD~1", "--", LEAF], cwd=work, check=True)
    run_git("commit", "--quiet", "-m", "add antonyms", cwd=work)
    bare = tmp_path / "github" / OWNER / "taxonomy.git"
    bare.parent.mkdir(parents=True)
    run_git("clone", "--quiet", "--bare", str(work), str(bare))
    head = run_git("rev-parse", "add-antonyms", cwd=work)
    run_git("update-ref", "refs/pull/1/head", head, cwd=bare)
    return work, bare


def pr_event(bare, head, base, action):
    name = "opened.with-organization.payload.json" if action == "opened" else f"{action}.payload.json"
    p = adapt(
        load_payload(f"pull_request/{name}"),
        clone_url=f"file://{bare}",
        number=1,
        head_sha=head,
        base_sha=base,
        draft=False,
    )
    p["action"] = action
    p["pull_request"]["state"] = "open"
    p["pull_request"]["user"]["login"] = "contributor"
    return p


@pytest.fixture
def preview_bot(bot_settings, tiny_models):
    from dataclasses import replace

    from botlib import BotServer

    server = BotServer(replace(bot_settings, teacher=str(tiny_models["teacher"]))).start()
    yield server
    server.stop()


def test_preview_sticky_comment_edited_in_place(preview_bot, ghdouble, preview_repo):
    bot = preview_bot
    work, bare = preview_repo
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = "preview:\n  samples: 1\n  max_samples: 2\n"
    base = run_git("rev-parse", "main", cwd=work)
    head = run_git("rev-parse", "add-antonyms", cwd=work)
    ghdouble.add_pull(REPO, 1, head_sha=head, base_sha=base, user="contributor")

    bot.deliver("pull_request", pr_event(bare, head, base, "opened"))
    jobs = bot.wait_idle(timeout=300)
    assert [(j["kind"], j["state"]) for j in jobs] == [("delivery", "done"), ("check", "done"), ("preview", "done")], (
        jobs
    )
    assert ghdouble.runs_named(REPO, SCHEMA_CHECK, head)[0]["conclusion"] == "success"
    [prev] = ghdouble.runs_named(REPO, PREVIEW_CHECK, head)
    assert prev["conclusion"] == "success", prev["output"]
    statuses = [
        c.json.get("status")
        for c in ghdouble.calls
        if c.method in ("POST", "PATCH")
        and "/check-runs" in c.path
        and c.json.get("name", PREVIEW_CHECK) == PREVIEW_CHECK
        and c.json.get("head_sha", head) == head
    ]
    assert "in_progress" in statuses and statuses[-1] == "completed"
    [comment] = [c for c in ghdouble.issue_comments(REPO, 1) if c["user"]["type"] == "Bot"]
    assert comment["body"].startswith(PREVIEW_MARKER) and "antonyms" in comment["body"]
    assert head[:12] in comment["body"]
    first_id = comment["id"]

    # synchronize: the contributor changes the leaf; the same comment is edited
    leaf = work / LEAF / "qna.yaml"
    hostile = 'What is the antonym of "hot"? @octo-org/admins </details><script>alert(1)</script> ```'
    leaf.write_text(
        leaf.read_text().replace('- question: What is the antonym of "hot"?', f"- question: '{hostile}'", 1)
    )
    run_git("commit", "--quiet", "-am", "revise", cwd=work)
    new = run_git("rev-parse", "HEAD", cwd=work)
    run_git("push", "--quiet", str(bare), "HEAD:refs/pull/1/head", cwd=work)
    ghdouble.repos[REPO].pulls[1]["head"]["sha"] = new
    bot.deliver("pull_request", pr_event(bare, new, base, "synchronize"))
    bot.wait_idle(timeout=300)
    mine = [c for c in ghdouble.issue_comments(REPO, 1) if c["user"]["type"] == "Bot"]
    assert len(mine) == 1 and mine[0]["id"] == first_id and new[:12] in mine[0]["body"]
    body = mine[0]["body"]
    assert "@octo-org" not in body and "<script" not in body  # leaf text is echoed escaped
    assert body.count("<details") == body.count("</details>")
    assert ghdouble.runs_named(REPO, PREVIEW_CHECK, new)[0]["conclusion"] == "success"

    # `/lab preview samples=2` by the author: regenerated, still one comment
    p = adapt(load_payload("issue_comment/created.with-installation.payload.json"), clone_url=f"file://{bare}")
    p["issue"].update(number=1, pull_request={"url": "x"})
    p["issue"]["user"]["login"] = "contributor"
    p["comment"].update(body="/lab preview samples=2", id=4242)
    p["comment"]["user"].update(login="contributor", type="User")
    bot.deliver("issue_comment", p)
    jobs = bot.wait_idle(timeout=300)
    assert [j["payload"].get("samples") for j in jobs if j["kind"] == "preview"][-1] == 2
    mine = [c for c in ghdouble.issue_comments(REPO, 1) if c["user"]["type"] == "Bot"]
    assert len(mine) == 1 and mine[0]["id"] == first_id
    assert ghdouble.calls_to("PATCH", rf"/issues/comments/{first_id}$")


def test_a_preview_stopped_at_its_wall_time_limit_says_so(bot_settings, tiny_models, ghdouble, preview_repo):
    """The preview's job process (teacher loading and generation) is bounded like the
    check's: at LAB_CI_PREVIEW_TIMEOUT it is killed, the run says which limit, no comment
    is posted and the job is not retried."""
    from dataclasses import replace

    from botlib import BotServer

    work, bare = preview_repo
    base = run_git("rev-parse", "main", cwd=work)
    head = run_git("rev-parse", "add-antonyms", cwd=work)
    ghdouble.add_pull(REPO, 1, head_sha=head, base_sha=base, user="contributor")
    settings = replace(bot_settings, teacher=str(tiny_models["teacher"]), preview_timeout=1.0)
    server = BotServer(settings).start()
    # the bot serves the teacher; holding the model's lock keeps this preview generating
    # past its limit (the tiny teacher would otherwise finish within the second)
    service = server.services.teachers.service(settings.teacher)
    try:
        with service.teacher._lock:
            server.deliver("pull_request", pr_event(bare, head, base, "opened"))
            jobs = server.wait_idle(timeout=120)
    finally:
        server.stop()
        server.services.close()
    [preview] = [j for j in jobs if j["kind"] == "preview"]
    assert (preview["state"], preview["attempts"]) == ("done", 1)
    [run] = ghdouble.runs_named(REPO, PREVIEW_CHECK, head)
    assert run["conclusion"] == "failure"
    assert run["output"]["title"] == "Stopped: the preview exceeded its wall-time limit (1 s)"
    assert "LAB_CI_PREVIEW_TIMEOUT" in run["output"]["summary"]
    assert not [c for c in ghdouble.issue_comments(REPO, 1) if c["user"]["type"] == "Bot"]
