"""``lab-ci serve`` as an operator runs it: a real process, real HTTP, SIGTERM to stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from botlib import REPO_ROOT, WEBHOOK_PAYLOADS, free_port, new_rsa_key

from lab_ci.bot.queue import SQLiteQueue
from lab_ci.bot.webhooks import sign

SECRET = "s3cr3t-for-the-cli-test"


def app_key(tmp_path: Path) -> Path:
    """A fresh RSA key as the GitHub App's private key (the handlers need one to start)."""
    path = tmp_path / "app.pem"
    path.write_text(new_rsa_key()[0])
    return path


def serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "LAB_CI_WEBHOOK_SECRET": SECRET,
        "LAB_CI_APP_ID": "4242",
        "LAB_CI_PRIVATE_KEY_PATH": str(app_key(tmp_path)),
        "LAB_CI_GITHUB_API_URL": "http://127.0.0.1:9",  # never reached by these events
        "LAB_CI_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab_ci", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"lab-ci serve exited {proc.returncode}: {proc.stderr.read()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code in (200, 503):
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("lab-ci serve did not answer /healthz")


def post(url: str, event: str, body: bytes, secret: str = SECRET) -> httpx.Response:
    return httpx.post(
        url + "/webhook",
        content=body,
        timeout=10,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(secret.encode(), body),
            "Content-Type": "application/json",
        },
    )


def terminate(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def test_serve_http_only_accepts_and_stops_cleanly(tmp_path):
    proc, url = serve(tmp_path, "--no-workers", "--db", str(tmp_path / "q.db"))
    try:
        assert httpx.get(url + "/healthz").json() == {"db": "ok", "status": "ok"}
        body = (WEBHOOK_PAYLOADS / "issue_comment" / "created.payload.json").read_bytes()
        assert post(url, "issue_comment", body).status_code == 202
        assert post(url, "issue_comment", body, secret="wrong").status_code == 401
        assert "labci_webhook_deliveries_accepted_total" in httpx.get(url + "/metrics").text
    finally:
        code, err = terminate(proc)
    assert code == 0
    queue = SQLiteQueue(tmp_path / "q.db")
    jobs = queue.jobs()
    assert [(j["kind"], j["state"], j["payload"]["event"]) for j in jobs] == [("delivery", "queued", "issue_comment")]
    queue.close()
    # structured logs: every line is one JSON object; no secret, no body
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    events = [r["msg"] for r in records]
    assert "service_started" in events and "delivery_accepted" in events and "delivery_rejected" in events
    assert SECRET not in err and "PRIVATE KEY" not in err
    assert "Hello" not in err and json.loads(body)["comment"]["body"] not in err
    started = next(r for r in records if r["msg"] == "service_started")
    assert "webhook_secret" not in started and started["workers"] == 0


def test_serve_with_workers_routes_with_the_real_handlers(tmp_path):
    pytest.importorskip("lab_ci.bot.handlers")
    proc, url = serve(tmp_path, "--workers", "1")
    try:
        health = httpx.get(url + "/healthz").json()
        # one general worker thread and the light lane's one
        assert health["workers"] == {"alive": 2, "configured": 2, "stopping": False}
        body = (WEBHOOK_PAYLOADS / "installation" / "created.payload.json").read_bytes()
        assert post(url, "installation", body).status_code == 202
        queue = SQLiteQueue(tmp_path / "data" / "queue.db")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and queue.jobs(kind="delivery")[0]["state"] != "done":
            time.sleep(0.1)
        assert queue.jobs(kind="delivery")[0]["state"] == "done"
        queue.close()
    finally:
        code, _ = terminate(proc)
    assert code == 0


def test_serve_rejects_bad_configuration_with_a_clear_error(tmp_path):
    env = {**os.environ, "LAB_CI_WORKERS": "lots", "PYTHONPATH": str(REPO_ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "lab_ci", "serve", "--db", str(tmp_path / "q.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == "lab-ci: error: LAB_CI_WORKERS='lots' is not a valid int"
    r = subprocess.run(
        [sys.executable, "-m", "lab_ci", "serve", "--no-workers", "--worker-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_worker_only_process_drains_the_queue_and_stops_on_sigterm(tmp_path):
    pytest.importorskip("lab_ci.bot.handlers")
    db = tmp_path / "data" / "queue.db"
    queue = SQLiteQueue(db)
    body = (WEBHOOK_PAYLOADS / "installation" / "deleted.payload.json").read_bytes()
    assert queue.record_delivery(str(uuid.uuid4()), "installation", body)
    env = {
        **os.environ,
        "LAB_CI_APP_ID": "4242",
        "LAB_CI_PRIVATE_KEY_PATH": str(app_key(tmp_path)),
        "LAB_CI_GITHUB_API_URL": "http://127.0.0.1:9",
        "LAB_CI_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab_ci", "serve", "--worker-only", "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and queue.jobs()[0]["state"] != "done" and proc.poll() is None:
            time.sleep(0.1)
        assert queue.jobs()[0]["state"] == "done"
    finally:
        code, err = terminate(proc)
    assert code == 0, err
    events = [json.loads(line)["msg"] for line in err.splitlines() if line.startswith("{")]
    assert "workers_started" in events and "workers_stopped" in events
    queue.close()


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "LAB_CI_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
        env.pop("LAB_CI_WEBHOOK_SECRET", None)
        r = subprocess.run(
            [sys.executable, "-m", "lab_ci", "serve", "--no-workers", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2
    assert (
        r.stderr.splitlines()[-1]
        == f"lab-ci: error: cannot serve on 127.0.0.1:{port} (address in use or not allowed; see the log above)"
    )
    assert "Traceback" not in r.stderr
