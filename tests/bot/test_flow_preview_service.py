"""Previews through the bot's teacher service: `lab-ci serve` (in-process, real HTTP,
signed deliveries, the GitHub double) with the real tiny GGUF teacher loads it ONCE in
its own process; each preview's child process gets the service's URL and a token of its
own and talks to it with the OpenAI backend, so two pull requests previewed at the same
time share one teacher, and a superseded preview is cancelled at the service."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest
from botlib import REPO, BotServer, adapt, load_payload, run_git
from test_flow_preview import LEAF, pr_event, preview_repo  # noqa: F401 - preview_repo is a fixture

from lab_ci.bot.handlers import PREVIEW_CHECK, PREVIEW_MARKER

HAIKU = "compositional_skills/writing/freeform/haiku"
CONFIG = "preview:\n  samples: 1\n  max_samples: 2\n"


@pytest.fixture
def service_bot(bot_settings, tiny_models):
    spec = str(tiny_models["teacher"])
    settings = replace(bot_settings, teacher=spec, teacher_parallel=8, teacher_prompt_store_mb=64, github_timeout=15)
    server = BotServer(settings).start()
    yield server, spec
    server.stop()
    server.services.close()


def wait_for(predicate, what: str, timeout: float = 180.0, jobs=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    state = [(j["kind"], j["state"], j.get("last_error")) for j in jobs()] if jobs else ""
    raise AssertionError(f"timed out waiting for {what} {state}")


def waiting_jobs(service) -> set[str]:
    """Keys of the service's jobs that have sequences queued or running."""
    return {key for key, job in service.stats()["jobs"].items() if job["queued"] > 0}


def bot_comments(ghdouble, number: int) -> list[dict]:
    return [c for c in ghdouble.issue_comments(REPO, number) if c["user"]["type"] == "Bot"]


def test_two_pull_requests_previewed_at_once_share_one_teacher(service_bot, ghdouble, preview_repo):  # noqa: F811
    bot, spec = service_bot
    work, bare = preview_repo
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = CONFIG
    base = run_git("rev-parse", "main", cwd=work)
    heads = {1: run_git("rev-parse", "add-antonyms", cwd=work)}
    run_git("checkout", "--quiet", "-b", "edit-haiku", "main", cwd=work)  # pull request 2 edits another leaf
    haiku = work / HAIKU / "qna.yaml"
    haiku.write_text(haiku.read_text().replace("version: 3", "version: 3\n# edited", 1))
    run_git("commit", "--quiet", "-am", "edit haiku", cwd=work)
    heads[2] = run_git("rev-parse", "HEAD", cwd=work)
    run_git("push", "--quiet", str(bare), "HEAD:refs/pull/2/head", cwd=work)
    for number, head in heads.items():
        ghdouble.add_pull(REPO, number, head_sha=head, base_sha=base, user="contributor")

    service = bot.services.teachers.service(spec)  # what the first preview would start
    teacher = service.teacher
    # Hold the model's lock: the engine cannot decode, so each preview's first request
    # waits in the service's queue; both waiting at once is both children sharing it.
    with teacher._lock:
        for number, head in heads.items():
            event = pr_event(bare, head, base, "opened")
            event["number"] = event["pull_request"]["number"] = number
            bot.deliver("pull_request", event)
        keys = wait_for(lambda: len(waiting_jobs(service)) == 2 and waiting_jobs(service), "two previews queued")
    jobs = bot.wait_idle(timeout=600)

    assert sorted((j["kind"], j["state"]) for j in jobs if j["kind"] == "preview") == [("preview", "done")] * 2
    assert {k.rsplit("#", 1)[0] for k in keys} == {f"preview:{REPO}#1", f"preview:{REPO}#2"}
    assert bot.services.teachers.loads == 1  # loaded once, by the bot
    stats = service.stats()
    assert stats["jobs_opened"] == 2 and stats["jobs"] == {} and stats["queued_sequences"] == 0
    assert stats["requests"] >= 2 and stats["completion_tokens"] > 0
    for number, head in heads.items():
        [run] = ghdouble.runs_named(REPO, PREVIEW_CHECK, head)
        assert run["conclusion"] == "success", run["output"]
        [comment] = bot_comments(ghdouble, number)
        body = comment["body"]
        assert body.startswith(PREVIEW_MARKER) and ("antonyms" if number == 1 else "haiku") in body
        # the comment names the model the service serves, not the loopback URL
        [line] = [t for t in body.splitlines() if t.startswith("Teacher:")]
        assert "gguf\\:" in line and str(service.port) not in line, line


def test_a_superseded_preview_is_cancelled_at_the_service(service_bot, ghdouble, preview_repo, caplog):  # noqa: F811
    bot, spec = service_bot
    work, bare = preview_repo
    ghdouble.repos[REPO].files[("main", ".github/lab-ci.yaml")] = CONFIG
    base = run_git("rev-parse", "main", cwd=work)
    old = run_git("rev-parse", "add-antonyms", cwd=work)
    ghdouble.add_pull(REPO, 1, head_sha=old, base_sha=base, user="contributor")
    service = bot.services.teachers.service(spec)
    caplog.set_level(logging.INFO, logger="lab_ci.bot.jobs")

    with service.teacher._lock:
        bot.deliver("pull_request", pr_event(bare, old, base, "opened"))
        [old_key] = wait_for(lambda: waiting_jobs(service), "the first preview queued")
        # a new push while the first preview's request waits for the engine
        leaf = work / LEAF / "qna.yaml"
        leaf.write_text(leaf.read_text().replace("version: 3", "version: 3\n# revised", 1))
        run_git("commit", "--quiet", "-am", "revise", cwd=work)
        new = run_git("rev-parse", "HEAD", cwd=work)
        run_git("push", "--quiet", str(bare), "HEAD:refs/pull/1/head", cwd=work)
        ghdouble.repos[REPO].pulls[1]["head"]["sha"] = new
        # `/lab preview` queues a preview of the new head, which supersedes the running one
        # (a push alone does not: the new head's check waits for the pull request's running job)
        comment = adapt(
            load_payload("issue_comment/created.with-installation.payload.json"), clone_url=f"file://{bare}"
        )
        comment["issue"].update(number=1, pull_request={"url": "x"})
        comment["issue"]["user"]["login"] = "contributor"
        comment["comment"].update(body="/lab preview", id=4243)
        comment["comment"]["user"].update(login="contributor", type="User")
        bot.deliver("issue_comment", comment)
        wait_for(
            lambda: old_key not in service.stats()["jobs"],
            "the first preview's job cancelled at the service",
            jobs=bot.queue.jobs,
        )
    jobs = bot.wait_idle(timeout=600)

    usage = [r.getMessage() for r in caplog.records if old_key in r.getMessage() and "teacher usage" in r.getMessage()]
    assert usage and "'cancelled': 'superseded by a newer preview'" in usage[0], usage
    assert "'used': 0" in usage[0]  # it never generated: dropped from the queue
    previews = [j for j in jobs if j["kind"] == "preview"]
    assert sorted(j["state"] for j in previews) == ["cancelled", "done"], previews
    assert ghdouble.runs_named(REPO, PREVIEW_CHECK, new)[0]["conclusion"] == "success"
    [comment] = bot_comments(ghdouble, 1)
    assert new[:12] in comment["body"] and old[:12] not in comment["body"]
    assert bot.services.teachers.loads == 1 and service.stats()["jobs_opened"] == 2
