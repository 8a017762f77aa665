"""Kill `lab-ci serve` (SIGKILL) in the middle of a check job and start it again: the job
is run again after its lease expires and completes once: one check run, each
annotation once."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from botlib import (
    APP_ID,
    REPO,
    REPO_ROOT,
    WEBHOOK_SECRET,
    corpus_pr_payload,
    free_port,
    run_git,
    signed_headers,
    wait_for,
)

from lab_ci.bot.handlers import SCHEMA_CHECK

PR = 100


def serve(tmp_path, ghdouble, app_key):
    port = free_port()
    env = {
        **os.environ,
        "LAB_CI_WEBHOOK_SECRET": WEBHOOK_SECRET.decode(),
        "LAB_CI_APP_ID": str(APP_ID),
        "LAB_CI_PRIVATE_KEY": app_key[0],
        "LAB_CI_GITHUB_API_URL": ghdouble.base_url,
        "LAB_CI_DATA_DIR": str(tmp_path / "data"),
        "LAB_CI_WORKERS": "1",
        "LAB_CI_LEASE_SECONDS": "2",
        "LAB_CI_GITHUB_TIMEOUT": "10",
        "LAB_CI_GITHUB_RETRIES": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab_ci", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"lab-ci serve did not start: {proc.stderr.read()[-2000:]}")


@pytest.mark.parametrize("patch_lands", [True, False], ids=["write-landed", "write-lost"])
def test_killed_mid_job_completes_once_after_restart(tmp_path, ghdouble, app_key, github_side_repo, patch_lands):
    head = run_git("rev-parse", f"refs/pull/{PR}/head", cwd=github_side_repo)
    ghdouble.add_pull(REPO, PR, head_sha=head, base_sha=run_git("rev-parse", "main", cwd=github_side_repo))
    # the PATCH that completes the check run hangs for 1 s; when it is "lost" GitHub never applies it
    ghdouble.fail("PATCH", r"/check-runs/\d+$", 0 if patch_lands else 502, delay=1.0)

    proc, url = serve(tmp_path, ghdouble, app_key)
    try:
        body = json.dumps(corpus_pr_payload(github_side_repo, PR, draft=True)).encode()
        r = httpx.post(f"{url}/webhook", content=body, headers=signed_headers("pull_request", body), timeout=10)
        assert r.status_code == 202
        assert wait_for(lambda: ghdouble.calls_to("PATCH", r"/check-runs/\d+$")), (
            "the check job never reached its last write"
        )
        proc.send_signal(signal.SIGKILL)  # mid-job, mid-request
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # wait until the double has answered the hanging write (applied it, or not)
    assert ghdouble.wait_answered("PATCH", r"/check-runs/\d+$", timeout=30), (
        "the double never answered the hanging write"
    )
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert run["status"] == ("completed" if patch_lands else "in_progress")

    proc2, _ = serve(tmp_path, ghdouble, app_key)  # same data dir: same queue file
    try:
        from lab_ci.bot.queue import SQLiteQueue

        q = SQLiteQueue(tmp_path / "data" / "queue.db")
        assert wait_for(lambda: [j["state"] for j in q.jobs(kind="check")] == ["done"], timeout=60), q.jobs(
            kind="check"
        )
        [job] = q.jobs(kind="check")
        assert job["attempts"] == 2  # the killed attempt, then the one that finished
        q.close()
    finally:
        proc2.send_signal(signal.SIGTERM)
        proc2.wait(30)
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    anns = ghdouble.annotations[run["id"]]
    assert len(anns) == 4 and len({json.dumps(a, sort_keys=True) for a in anns}) == 4
