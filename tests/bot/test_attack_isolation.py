"""Issue 10, attack 1, on a real ``lab-ci serve`` process with the GitHub double: hostile
pull requests must not stall the bot. Before isolated job execution, two alias-bomb pull
requests (a few hundred bytes of YAML whose anchors nest aliases nine levels deep) kept
both workers busy for minutes, ``/lab help`` on another pull request was not answered,
and nothing bounded the jobs.

The limits are set the way an operator sets them (environment variables). The isolation
must hold whatever the checker does with hostile files, so besides the real bomb with
the current checker, every check's job process is made to simply burn CPU or memory
(``serve_with_target.py``: the job-process target is a module attribute)."""

from __future__ import annotations

import json
import time

import pytest
from botlib import (
    REPO,
    ServeProcess,
    alias_bomb,
    github_side_with_prs,
    pr_comment,
    pr_opened,
    wait_for,
)

SCHEMA = "lab-ci/schema"
BOMBS = (11, 12)
OTHER = 13
LEAF = "compositional_skills/mallory/bomb/qna.yaml"


@pytest.fixture
def hostile(tmp_path, ghdouble):
    files = {n: {LEAF: alias_bomb(9), LEAF.replace("qna.yaml", "attribution.txt"): b"x\n"} for n in BOMBS}
    files[OTHER] = {"README.md": b"taxonomy, edited\n"}
    bare, main, heads = github_side_with_prs(tmp_path, files)
    for n, head in heads.items():
        ghdouble.add_pull(REPO, n, head_sha=head, base_sha=main, user="mallory" if n in BOMBS else "contributor")
    return f"file://{bare}", main, heads


def run_state(ghdouble, sha: str) -> str | None:
    runs = ghdouble.runs_named(REPO, SCHEMA, sha)
    return runs[-1]["status"] if runs else None


def run_text(ghdouble, sha: str) -> str:
    [run] = ghdouble.runs_named(REPO, SCHEMA, sha)
    assert run["conclusion"] == "failure", run["output"]
    return run["output"]["title"] + " " + run["output"]["summary"]


def open_bombs_then_ask_for_help(serve, ghdouble, clone_url, main, heads) -> bool:
    """Open both hostile pull requests, wait until both checks run (every general worker
    busy), then comment ``/lab help`` elsewhere; True when the help came while both
    checks were still running."""
    for n in BOMBS:
        assert serve.deliver("pull_request", pr_opened(clone_url, n, heads[n], main, user="mallory")).status_code == 202
    assert wait_for(lambda: all(run_state(ghdouble, heads[n]) == "in_progress" for n in BOMBS), 60), serve.log()[-3000:]
    r = serve.deliver("issue_comment", pr_comment(clone_url, OTHER, "/lab help", "someone", cid=5001))
    assert r.status_code == 202  # answered within GitHub's 10 s
    answered = wait_for(
        lambda: any("here is what I can do" in c["body"] for c in ghdouble.issue_comments(REPO, OTHER)), 60
    )
    assert answered, f"/lab help was not answered while the hostile checks ran:\n{serve.log()[-3000:]}"
    return all(run_state(ghdouble, heads[n]) == "in_progress" for n in BOMBS)


def finish_and_check_the_worker_is_free(serve, ghdouble, clone_url, heads, timeout: float = 120) -> None:
    assert wait_for(lambda: all(run_state(ghdouble, heads[n]) == "completed" for n in BOMBS), timeout), serve.log()[
        -3000:
    ]

    # not retried: one attempt each (the job is recorded done just after its last write)
    def outcomes():
        return [(j["state"], j["attempts"]) for j in serve.jobs("check") if json.loads(j["payload"])["number"] in BOMBS]

    assert wait_for(lambda: outcomes() == [("done", 1), ("done", 1)], 30), outcomes()
    # and the general workers take other work again
    r = serve.deliver("issue_comment", pr_comment(clone_url, OTHER, "/lab check", "contributor", cid=7001))
    assert r.status_code == 202
    assert wait_for(lambda: run_state(ghdouble, heads[OTHER]) == "completed", 60), serve.log()[-3000:]


def test_alias_bomb_prs_neither_stall_the_bot_nor_run_unbounded(tmp_path, ghdouble, app_key, hostile):
    """The real bomb, the real checker. Without a parse budget the checks end at their
    wall-time limit; with one (the YAML reader's alias budget) they fail at once with its
    located error. Either way the bot answers, and nothing runs unbounded."""
    clone_url, main, heads = hostile
    env = {"LAB_CI_WORKERS": "2", "LAB_CI_CHECK_TIMEOUT": "20", "LAB_CI_CHECK_CPU_SECONDS": "60"}
    with ServeProcess(tmp_path, ghdouble, app_key[0], env=env) as serve:
        t0 = time.monotonic()
        open_bombs_then_ask_for_help(serve, ghdouble, clone_url, main, heads)
        finish_and_check_the_worker_is_free(serve, ghdouble, clone_url, heads)
        assert time.monotonic() - t0 < 150
        for n in BOMBS:
            text = run_text(ghdouble, heads[n])
            if text.startswith("Stopped:"):  # the isolation, not the parser, ended it
                assert "wall-time limit" in text and "20 s" in text and "LAB_CI_CHECK_TIMEOUT" in text, text


def test_checks_that_burn_cpu_end_at_their_cpu_limit_and_free_their_workers(tmp_path, ghdouble, app_key, hostile):
    clone_url, main, heads = hostile
    env = {"LAB_CI_WORKERS": "2", "LAB_CI_CHECK_TIMEOUT": "120", "LAB_CI_CHECK_CPU_SECONDS": "12"}
    with ServeProcess(tmp_path, ghdouble, app_key[0], env=env, check_target="isolation_targets:burn_cpu") as serve:
        # while both workers' jobs burn CPU, the bot answers, and they are still running
        assert open_bombs_then_ask_for_help(serve, ghdouble, clone_url, main, heads)
        for i in range(5):  # other deliveries keep being acknowledged
            body = f"thanks ({i})"
            assert (
                serve.deliver("issue_comment", pr_comment(clone_url, OTHER, body, "x", cid=6000 + i)).status_code == 202
            )
        finish_and_check_the_worker_is_free(serve, ghdouble, clone_url, heads)
        for n in BOMBS:
            text = run_text(ghdouble, heads[n])
            assert text.startswith("Stopped: the check exceeded its CPU-time limit (12 s)"), text
            assert "LAB_CI_CHECK_CPU_SECONDS" in text


def test_a_check_that_reaches_the_memory_limit_says_so(tmp_path, ghdouble, app_key, hostile):
    """A job that simply allocates: it stops at the address-space limit (not a wall-time
    one), says so, and is not retried."""
    clone_url, main, heads = hostile
    n = BOMBS[0]
    env = {"LAB_CI_WORKERS": "1", "LAB_CI_CHECK_TIMEOUT": "120", "LAB_CI_CHECK_MEMORY_MB": "300"}
    with ServeProcess(tmp_path, ghdouble, app_key[0], env=env, check_target="isolation_targets:burn_memory") as serve:
        assert serve.deliver("pull_request", pr_opened(clone_url, n, heads[n], main, user="mallory")).status_code == 202
        assert wait_for(lambda: run_state(ghdouble, heads[n]) == "completed", 90), serve.log()[-3000:]
        text = run_text(ghdouble, heads[n])
        assert text.startswith("Stopped: the check exceeded its memory limit (300 MiB)"), text
        assert "LAB_CI_CHECK_MEMORY_MB" in text
        assert wait_for(lambda: [(j["state"], j["attempts"]) for j in serve.jobs("check")] == [("done", 1)], 30)


def test_a_memory_error_the_checker_reports_as_a_file_problem_is_the_memory_limit():
    """The checker turns any exception of its own into a diagnostic of the file; in a job
    process a MemoryError there is the address-space limit, and is reported as such."""
    from lab_ci.bot.work import raise_if_out_of_memory
    from lab_ci.check.diagnostics import Diagnostic, FileResult, Report

    fine = Report([FileResult("a/qna.yaml", [Diagnostic("error", "schema", "required", "'x' is required")])])
    raise_if_out_of_memory(fine)
    for rule, message in (
        ("internal", "lab-ci could not check this file (MemoryError: )"),
        ("construct", "cannot build a value: MemoryError: "),
    ):
        report = Report([FileResult("b/qna.yaml", [Diagnostic("error", "yaml", rule, message)])])
        with pytest.raises(MemoryError):
            raise_if_out_of_memory(report)
