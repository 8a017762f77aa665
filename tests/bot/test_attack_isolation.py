"""Issue 10, attack 1, on a real ``lab-ci serve`` process with the GitHub double: two
alias-bomb pull requests (a few hundred bytes of YAML whose anchors nest aliases nine
levels deep) must not stall the bot. Before isolated job execution, both workers were
busy for minutes, ``/lab help`` on another pull request was not answered, and nothing
bounded the jobs.

The limits are set the way an operator sets them (environment variables); the checker
is the current one (no parse budget assumed: the isolation must hold without it)."""

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


def test_alias_bomb_prs_neither_stall_the_bot_nor_run_unbounded(tmp_path, ghdouble, app_key, hostile):
    clone_url, main, heads = hostile
    env = {"LAB_CI_WORKERS": "2", "LAB_CI_CHECK_TIMEOUT": "20", "LAB_CI_CHECK_CPU_SECONDS": "60"}
    with ServeProcess(tmp_path, ghdouble, app_key[0], env=env) as serve:
        for n in BOMBS:
            assert (
                serve.deliver("pull_request", pr_opened(clone_url, n, heads[n], main, user="mallory")).status_code
                == 202
            )
        # both check jobs are running: every general worker is busy with a hostile job
        assert wait_for(lambda: all(run_state(ghdouble, heads[n]) == "in_progress" for n in BOMBS), 60), serve.log()[
            -3000:
        ]
        t0 = time.monotonic()
        r = serve.deliver("issue_comment", pr_comment(clone_url, OTHER, "/lab help", "someone", cid=5001))
        assert r.status_code == 202  # answered within GitHub's 10 s
        help_reply = wait_for(
            lambda: any("here is what I can do" in c["body"] for c in ghdouble.issue_comments(REPO, OTHER)), 60
        )
        assert help_reply, f"/lab help was not answered while the bombs ran:\n{serve.log()[-3000:]}"
        help_s = time.monotonic() - t0
        # ... and it was answered while the hostile jobs were still running
        assert all(run_state(ghdouble, heads[n]) == "in_progress" for n in BOMBS), help_s
        # other deliveries keep being acknowledged while the bombs run
        for i in range(5):
            body = f"thanks ({i})"
            assert (
                serve.deliver("issue_comment", pr_comment(clone_url, OTHER, body, "someone", cid=6000 + i)).status_code
                == 202
            )

        # each bomb ends at its wall-time limit with a failed check run naming the limit
        def finished():
            return all(run_state(ghdouble, heads[n]) == "completed" for n in BOMBS)

        assert wait_for(finished, 120), serve.log()[-3000:]
        for n in BOMBS:
            [run] = ghdouble.runs_named(REPO, SCHEMA, heads[n])
            assert run["conclusion"] == "failure"
            text = run["output"]["title"] + " " + run["output"]["summary"]
            assert "wall-time limit" in text and "20 s" in text and "LAB_CI_CHECK_TIMEOUT" in text, text
        # not retried: one attempt each, and their workers are free again
        checks = [j for j in serve.jobs("check") if json.loads(j["payload"])["number"] in BOMBS]
        assert [(j["state"], j["attempts"]) for j in checks] == [("done", 1), ("done", 1)]
        r = serve.deliver("issue_comment", pr_comment(clone_url, OTHER, "/lab check", "contributor", cid=7001))
        assert r.status_code == 202
        assert wait_for(lambda: run_state(ghdouble, heads[OTHER]) == "completed", 60), serve.log()[-3000:]


def test_a_bomb_that_reaches_the_memory_limit_says_so(tmp_path, ghdouble, app_key, hostile):
    """The same bomb under a small address-space limit: the check stops at the memory
    limit (not a wall-time one), says so, and is not retried."""
    clone_url, main, heads = hostile
    n = BOMBS[0]
    env = {"LAB_CI_WORKERS": "1", "LAB_CI_CHECK_TIMEOUT": "120", "LAB_CI_CHECK_MEMORY_MB": "300"}
    with ServeProcess(tmp_path, ghdouble, app_key[0], env=env) as serve:
        assert serve.deliver("pull_request", pr_opened(clone_url, n, heads[n], main, user="mallory")).status_code == 202
        assert wait_for(lambda: run_state(ghdouble, heads[n]) == "completed", 90), serve.log()[-3000:]
        [run] = ghdouble.runs_named(REPO, SCHEMA, heads[n])
        text = run["output"]["title"] + " " + run["output"]["summary"]
        assert run["conclusion"] == "failure" and "memory limit" in text and "300 MiB" in text, text
        assert "LAB_CI_CHECK_MEMORY_MB" in text
        [job] = serve.jobs("check")
        assert (job["state"], job["attempts"]) == ("done", 1)
