"""Issue 10, attack 4: what a proxy or an attacker can put on the wire.

- A 429 whose body does not say "rate limit" (a proxy's, a load balancer's) and a 403
  that carries ``Retry-After`` are transient: the job is retried, not dead-lettered on its
  first try.
- A validly signed body nested 1000+ levels deep is a 400 (it was a 500: RecursionError).
"""

from __future__ import annotations

import httpx
import pytest
from botlib import REPO, corpus_pr_payload, run_git, signed_headers

SCHEMA = "lab-ci/schema"
PR = 100  # corpus PR with an invalid leaf


def pr_payload(github_side_repo):
    head = run_git("rev-parse", f"refs/pull/{PR}/head", cwd=github_side_repo)
    base = run_git("rev-parse", "refs/heads/main", cwd=github_side_repo)
    return head, base, corpus_pr_payload(github_side_repo, PR, draft=True)


PROXY_ANSWERS = {
    "429-proxy": (429, {}, "<html><body><h1>429 Too Many Requests</h1>nginx</body></html>"),
    "429-json": (429, {}, {"message": "Too Many Requests"}),
    "403-retry-after": (403, {"retry-after": "1"}, {"message": "Request forbidden by administrative rules"}),
}


@pytest.mark.parametrize("answer", PROXY_ANSWERS, ids=list(PROXY_ANSWERS))
def test_throttled_write_is_retried_not_dead_lettered(bot, ghdouble, github_side_repo, answer):
    status, headers, body = PROXY_ANSWERS[answer]
    head, base, p = pr_payload(github_side_repo)
    ghdouble.add_pull(REPO, PR, head_sha=head, base_sha=base, draft=True)
    # writes are not retried in place (a 5xx may follow an applied write): the job is
    ghdouble.fail("POST", r"/check-runs$", status, headers=headers, body=body, times=1)
    assert bot.deliver("pull_request", p).status_code == 202
    jobs = bot.wait_idle()
    [check] = [j for j in jobs if j["kind"] == "check"]
    assert (check["state"], check["attempts"]) == ("done", 2), check["last_error"]
    [run] = ghdouble.runs_named(REPO, SCHEMA, head)
    assert run["conclusion"] == "failure" and run["output"]["annotations_count"] > 0


def test_throttled_reads_beyond_the_client_retries_are_retried_by_the_queue(bot, ghdouble, github_side_repo):
    head, base, p = pr_payload(github_side_repo)
    ghdouble.add_pull(REPO, PR, head_sha=head, base_sha=base, draft=True)
    # more 429s than the HTTP client retries in place (LAB_CI_GITHUB_RETRIES=2 here)
    ghdouble.fail("GET", r"/contents/", 429, body={"message": "Too Many Requests"}, times=3)
    assert bot.deliver("pull_request", p).status_code == 202
    jobs = bot.wait_idle()
    [check] = [j for j in jobs if j["kind"] == "check"]
    assert check["state"] == "done" and check["attempts"] == 2, check["last_error"]


def test_transient_classification_of_github_answers():
    from github import GithubException

    from lab_ci.bot.github import _describe

    def describe(status, data, headers=None):
        return _describe(GithubException(status, data, headers or {}), "POST check-runs o/r")

    assert describe(429, {"message": "Too Many Requests"}).transient
    assert describe(429, "<html>429</html>").transient
    assert describe(403, {"message": "nope"}, {"Retry-After": "30"}).transient
    assert describe(403, {"message": "You have exceeded a secondary rate limit"}).transient
    assert not describe(403, {"message": "Resource not accessible by integration"}).transient
    assert not describe(404, {"message": "Not Found"}).transient
    assert not describe(422, {"message": "Validation Failed"}).transient


def nested(depth: int) -> bytes:
    return b'{"action": "opened", "x": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize("depth", [1000, 5000, 100_000])
def test_deeply_nested_signed_body_is_a_400(bot, depth):
    body = nested(depth)
    r = httpx.post(f"{bot.url}/webhook", content=body, headers=signed_headers("pull_request", body), timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == "malformed_json" and "deep" in r.json()["error"]
    assert bot.queue.jobs() == []  # nothing stored
