"""Issue 10, attack 3, on a real ``lab-ci serve`` process: one user, one pull request or
one installation cannot queue unbounded work.

Before: six identical ``/lab preview`` comments from the pull request's author queued six
full generations; nothing limited a user, a pull request or the queue. Now identical
requests for the same head coalesce into one job, teacher work has per-pull-request and
per-user hourly limits, an installation has a maximum queue depth for checks and
previews, every refusal gets a polite answer, and ``/metrics`` counts refusals."""

from __future__ import annotations

import json
import re

import httpx
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

LEAF = "compositional_skills/linguistics/antonyms"
PR = 31


@pytest.fixture
def valid_pr(tmp_path, ghdouble):
    from labtest import EXAMPLE_TAXONOMY

    files = {
        f"{LEAF}/{name}": (EXAMPLE_TAXONOMY / LEAF / name).read_bytes() for name in ("qna.yaml", "attribution.txt")
    }
    bare, main, heads = github_side_with_prs(tmp_path, {PR: files})
    ghdouble.add_pull(REPO, PR, head_sha=heads[PR], base_sha=main, user="contributor")
    ghdouble.repos[REPO].collaborators["writer"] = "write"
    return f"file://{bare}", main, heads[PR]


def bot_replies(ghdouble, number: int) -> list[str]:
    return [c["body"] for c in ghdouble.issue_comments(REPO, number) if c["user"]["type"] == "Bot"]


def preview_jobs(serve) -> list[dict]:
    return [j for j in serve.jobs("preview")]


def metric(url: str, name: str, **labels) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return 0.0


def comment_all(serve, clone_url, bodies_users):
    for i, (body, user) in enumerate(bodies_users):
        r = serve.deliver("issue_comment", pr_comment(clone_url, PR, body, user, cid=9000 + i))
        assert r.status_code == 202


def test_six_identical_preview_requests_make_one_job(tmp_path, ghdouble, app_key, valid_pr):
    clone_url, main, head = valid_pr
    # the first preview is slow to start (its first check-run write takes 4 s), so the
    # other five requests arrive while it is running
    ghdouble.fail("POST", r"/check-runs$", 0, delay=4.0, times=1)
    with ServeProcess(tmp_path, ghdouble, app_key[0], env={"LAB_CI_WORKERS": "2"}) as serve:
        comment_all(serve, clone_url, [("/lab preview", "contributor")] * 6)
        assert wait_for(lambda: len(bot_replies(ghdouble, PR)) >= 5, 60), serve.log()[-3000:]
        assert wait_for(lambda: all(j["state"] not in ("queued", "running") for j in serve.jobs()), 60)
        assert len(preview_jobs(serve)) == 1, [(j["id"], j["state"]) for j in preview_jobs(serve)]
        replies = bot_replies(ghdouble, PR)
        assert sum("already" in r and head[:12] in r for r in replies) == 5, replies
        assert metric(serve.url, "labci_jobs_coalesced_total", kind="preview") == 5


QUOTAS = {
    # quota: (setting, the three requests, what the refusal says, the refusal's metric reason)
    "per-user": (
        "LAB_CI_PREVIEWS_PER_USER_HOUR",
        [(f"/lab preview samples={n}", "contributor") for n in (1, 2, 3)],
        ["2 previews per hour", "`contributor`"],
        "user_quota",
    ),
    "per-pull-request": (  # counts every user's previews of the pull request
        "LAB_CI_PREVIEWS_PER_PR_HOUR",
        [
            ("/lab preview samples=1", "contributor"),
            ("/lab preview samples=2", "writer"),
            ("/lab preview samples=3", "contributor"),
        ],
        ["2 previews per hour", "this pull request"],
        "pr_quota",
    ),
}


@pytest.mark.parametrize("quota", QUOTAS, ids=list(QUOTAS))
def test_preview_limits_refuse_politely(tmp_path, ghdouble, app_key, valid_pr, quota):
    setting, requests, says, reason = QUOTAS[quota]
    clone_url, main, head = valid_pr
    with ServeProcess(tmp_path, ghdouble, app_key[0], env={"LAB_CI_WORKERS": "1", setting: "2"}) as serve:
        comment_all(serve, clone_url, requests)
        assert wait_for(lambda: any("limit" in r for r in bot_replies(ghdouble, PR)), 60), serve.log()[-3000:]
        assert wait_for(lambda: all(j["state"] not in ("queued", "running") for j in serve.jobs()), 60)
        assert sorted(json.loads(j["payload"])["samples"] for j in preview_jobs(serve)) == [1, 2]
        [refusal] = [r for r in bot_replies(ghdouble, PR) if "limit" in r]
        assert all(s in refusal for s in says), refusal
        assert setting not in refusal  # users get the rule, operators the setting
        assert metric(serve.url, "labci_jobs_refused_total", kind="preview", reason=reason) == 1


def test_installation_queue_depth_refuses_checks_with_a_failed_check_run(tmp_path, ghdouble, app_key):
    bomb = "compositional_skills/mallory/bomb/qna.yaml"
    prs = {41: {bomb: alias_bomb(9)}}
    prs.update({n: {f"README-{n}.md": b"edit\n"} for n in (42, 43, 44, 45)})
    bare, main, heads = github_side_with_prs(tmp_path, prs)
    for n, h in heads.items():
        ghdouble.add_pull(REPO, n, head_sha=h, base_sha=main)
    clone_url = f"file://{bare}"
    env = {"LAB_CI_WORKERS": "1", "LAB_CI_MAX_QUEUED_PER_INSTALLATION": "2", "LAB_CI_CHECK_TIMEOUT": "120"}
    with ServeProcess(tmp_path, ghdouble, app_key[0], env=env) as serve:
        assert serve.deliver("pull_request", pr_opened(clone_url, 41, heads[41], main)).status_code == 202
        # the bomb occupies the only general worker
        assert wait_for(lambda: [j["state"] for j in serve.jobs("check")] == ["running"], 60), serve.log()[-3000:]
        for n in (42, 43, 44, 45):
            assert serve.deliver("pull_request", pr_opened(clone_url, n, heads[n], main)).status_code == 202

        def refused():
            runs = [r for n in (42, 43, 44, 45) for r in ghdouble.runs_named(REPO, "lab-ci/schema", heads[n])]
            return [r for r in runs if r["status"] == "completed"]

        assert wait_for(lambda: len(refused()) == 2, 60), serve.log()[-3000:]
        for run in refused():
            assert run["conclusion"] == "failure" and "busy" in run["output"]["title"]
            assert "/lab check" in run["output"]["summary"]
        assert [j["state"] for j in serve.jobs("check")] == ["running", "queued", "queued"]
        assert metric(serve.url, "labci_jobs_refused_total", kind="check", reason="queue_full") == 2
