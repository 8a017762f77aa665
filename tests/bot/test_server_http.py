"""The webhook service over real HTTP: uvicorn on 127.0.0.1, real GitHub payloads,
signed like GitHub signs them; the durable queue is checked row by row."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from botlib import WEBHOOK_PAYLOADS, UvicornThread, wait_for

from lab_ci.bot.app import create_app
from lab_ci.bot.jobs import JobSpec
from lab_ci.bot.metrics import Metrics
from lab_ci.bot.queue import SQLiteQueue
from lab_ci.bot.services import Services
from lab_ci.bot.settings import Settings
from lab_ci.bot.webhooks import sign
from lab_ci.bot.worker import Worker

SECRET = b"It's a Secret to Everybody"
APP_ID = "4242"


def ServerThread(app) -> UvicornThread:
    """The service on loopback, as the operator's uvicorn runs it (lifespan on, our logs)."""
    return UvicornThread(app, lifespan="on", log_config=None, access_log=False)


def payload_bytes(event: str, name: str) -> bytes:
    return (WEBHOOK_PAYLOADS / event / name).read_bytes()


def github_headers(event: str, body: bytes, *, delivery: str | None = None, secret: bytes | None = SECRET) -> dict:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": APP_ID,
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return headers


def parse_prometheus(text: str) -> dict[tuple[str, tuple], float]:
    """Samples of a Prometheus text exposition: {(name, sorted label items): value}.
    Also checks every sample's family has a TYPE line."""
    samples, types = {}, {}
    line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name, labels = m.group(1), tuple(sorted(label_re.findall(m.group(3) or "")))
        family = re.sub(r"_(bucket|sum|count|total)$", "", name)
        assert name in types or family in types, f"no TYPE for {name}"
        samples[(name, labels)] = float(m.group(4).replace("+Inf", "inf"))
    return samples


@pytest.fixture
def service(tmp_path: Path):
    """Queue + app + workers whose router turns pull_request events into one small job,
    and whose runner records what it ran."""
    settings = Settings(
        webhook_secret=SECRET,
        app_id=APP_ID,
        data_dir=tmp_path,
        max_body_bytes=512 * 1024,
        backoff_base=0.05,
        lease_seconds=5,
    )
    queue = SQLiteQueue(settings.queue_path)
    metrics = Metrics()
    ran: list[tuple[str, dict]] = []

    def router(event: str, payload: dict, delivery_id: str) -> list[JobSpec]:
        if event != "pull_request":
            return []
        pr = payload["pull_request"]
        return [
            JobSpec(
                "check",
                {"number": payload["number"], "sha": pr["head"]["sha"]},
                key=f"{payload['repository']['full_name']}#{payload['number']}",
                supersede_token=pr["head"]["sha"],
                dedupe=f"{delivery_id}:check",
            )
        ]

    def runner(job, ctx):
        if job.kind == "explode":
            raise RuntimeError("explode on purpose")
        ran.append((job.kind, job.payload))

    worker = Worker(
        queue,
        Services(settings=settings, queue=queue, metrics=metrics),
        threads=2,
        router=router,
        runner=runner,
        poll_interval=0.05,
    )
    app = create_app(settings, queue, metrics=metrics, worker=worker)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=10) as client:
        yield client, queue, ran, worker
    queue.close()


def test_signed_real_delivery_is_acknowledged_then_routed_and_run(service):
    client, queue, ran, _ = service
    body = payload_bytes("pull_request", "synchronize.payload.json")
    delivery = str(uuid.uuid4())
    r = client.post("/webhook", content=body, headers=github_headers("pull_request", body, delivery=delivery))
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "accepted", "delivery": delivery}
    deliveries = queue.jobs(kind="delivery")
    assert len(deliveries) == 1
    assert deliveries[0]["payload"]["delivery_id"] == delivery
    assert deliveries[0]["payload"]["event"] == "pull_request"
    assert deliveries[0]["payload"]["action"] == "synchronize"
    assert queue.delivery_body(delivery) == body  # stored byte for byte
    # The worker routes it and runs the follow-up check job exactly once.
    assert wait_for(lambda: [s["state"] for s in queue.jobs()] == ["done", "done"])
    payload = json.loads(body)
    assert ran == [("check", {"number": payload["number"], "sha": payload["pull_request"]["head"]["sha"]})]
    check = queue.jobs(kind="check")[0]
    assert check["key"] == f"{payload['repository']['full_name']}#{payload['number']}"


@pytest.mark.parametrize(
    "event, name",
    [
        ("issue_comment", "created.payload.json"),
        ("check_suite", "requested.payload.json"),
        ("push", "payload.json"),
        ("installation", "created.payload.json"),
        ("workflow_run", "completed.payload.json"),
    ],
)
def test_every_event_is_stored_as_one_delivery_job(service, event, name):
    client, queue, ran, _ = service
    body = payload_bytes(event, name)
    r = client.post("/", content=body, headers=github_headers(event, body))
    assert r.status_code == 202, r.text
    assert [(j["kind"], j["payload"]["event"]) for j in queue.jobs()] == [("delivery", event)]
    assert wait_for(lambda: queue.jobs()[0]["state"] == "done")
    assert ran == []  # this router ignores those events: no follow-up job


def test_unsigned_and_forged_deliveries_are_refused(service):
    client, queue, _, _ = service
    body = payload_bytes("pull_request", "opened.payload.json")
    unsigned = client.post("/webhook", content=body, headers=github_headers("pull_request", body, secret=None))
    assert unsigned.status_code == 401
    assert unsigned.json()["reason"] == "missing_signature"
    forged = client.post(
        "/webhook", content=body, headers=github_headers("pull_request", body, secret=b"not the secret")
    )
    assert forged.status_code == 401
    assert forged.json()["reason"] == "bad_signature"
    # a valid signature of another body
    headers = github_headers("pull_request", body)
    tampered = client.post("/webhook", content=body.replace(b'"opened"', b'"closed"'), headers=headers)
    assert tampered.status_code == 401
    assert queue.jobs() == []
    assert queue.stats()["deliveries"] == 0


def test_redelivery_and_replayed_body_are_duplicates(service):
    client, queue, _, _ = service
    body = payload_bytes("pull_request", "labeled.payload.json")
    delivery = str(uuid.uuid4())
    first = client.post("/webhook", content=body, headers=github_headers("pull_request", body, delivery=delivery))
    again = client.post("/webhook", content=body, headers=github_headers("pull_request", body, delivery=delivery))
    # a captured body replayed under a fresh (unsigned) delivery id
    replay = client.post("/webhook", content=body, headers=github_headers("pull_request", body))
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert len(queue.jobs(kind="delivery")) == 1


def test_large_body_is_checked_off_the_event_loop(service):
    client, queue, _, _ = service
    payload = json.loads(payload_bytes("push", "with-new-branch.payload.json"))
    payload["commits"] = payload["commits"] * 600  # a big push: ~350 KB, under the 512 KiB limit
    body = json.dumps(payload).encode()
    assert 256 * 1024 < len(body) < 512 * 1024
    assert client.post("/webhook", content=body, headers=github_headers("push", body, secret=b"x")).status_code == 401
    assert client.post("/webhook", content=body, headers=github_headers("push", body)).status_code == 202
    assert queue.delivery_body(queue.jobs()[0]["payload"]["delivery_id"]) == body


def test_oversized_malformed_and_ping(service):
    client, queue, _, _ = service
    big = b'{"pad": "' + b"x" * (600 * 1024) + b'"}'
    r = client.post("/webhook", content=big, headers=github_headers("push", big))
    assert r.status_code == 413 and r.json()["reason"] == "too_large"

    # over the limit without a Content-Length (chunked upload): cut off while streaming
    def chunks():
        for _ in range(20):
            yield b"y" * (64 * 1024)

    headers = github_headers("push", b"")
    r = client.post("/webhook", content=chunks(), headers=headers)
    assert r.status_code == 413

    bad = b'{"action": "opened", '
    r = client.post("/webhook", content=bad, headers=github_headers("pull_request", bad))
    assert r.status_code == 400 and r.json()["reason"] == "malformed_json"
    not_object = b"[1, 2]"
    r = client.post("/webhook", content=not_object, headers=github_headers("pull_request", not_object))
    assert r.status_code == 400
    body = payload_bytes("pull_request", "opened.payload.json")
    headers = github_headers("pull_request", body)
    del headers["X-GitHub-Event"]
    r = client.post("/webhook", content=body, headers=headers)
    assert r.status_code == 400 and r.json()["reason"] == "missing_event"

    ping = payload_bytes("ping", "with-app_id.payload.json")
    r = client.post("/webhook", content=ping, headers=github_headers("ping", ping))
    assert r.status_code == 200 and r.json()["status"] == "pong"
    assert queue.jobs() == []


def test_delivery_for_another_app_is_forbidden(service):
    client, queue, _, _ = service
    body = payload_bytes("issue_comment", "created.payload.json")
    headers = github_headers("issue_comment", body)
    headers["X-GitHub-Hook-Installation-Target-ID"] = "999"
    r = client.post("/webhook", content=body, headers=headers)
    assert r.status_code == 403 and r.json()["reason"] == "wrong_target"
    assert queue.jobs() == []


def test_stale_delivery_rejected_when_max_age_is_set(tmp_path):
    settings = Settings(webhook_secret=SECRET, data_dir=tmp_path, max_delivery_age=4 * 86400)
    queue = SQLiteQueue(settings.queue_path)
    app = create_app(settings, queue)
    # The real payloads date from years ago: their signed updated_at is far too old.
    old = payload_bytes("pull_request", "synchronize.payload.json")
    fresh_payload = json.loads(old)
    fresh_payload["pull_request"]["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fresh = json.dumps(fresh_payload).encode()
    ping = payload_bytes("ping", "payload.json")  # no event time: never stale
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as client:
        r_old = client.post("/webhook", content=old, headers=github_headers("pull_request", old))
        r_fresh = client.post("/webhook", content=fresh, headers=github_headers("pull_request", fresh))
        r_ping = client.post("/webhook", content=ping, headers=github_headers("ping", ping))
    assert r_old.status_code == 403 and r_old.json()["reason"] == "stale"
    assert r_fresh.status_code == 202
    assert r_ping.status_code == 200
    assert len(queue.jobs()) == 1


def test_healthz_and_metrics(service):
    client, queue, ran, worker = service
    health = client.get("/healthz")
    assert health.status_code == 200
    # two general worker threads and the light lane's one (LAB_CI_LIGHT_WORKERS)
    assert health.json() == {"db": "ok", "workers": {"alive": 3, "configured": 3, "stopping": False}, "status": "ok"}

    body = payload_bytes("pull_request", "opened.payload.json")
    assert client.post("/webhook", content=body, headers=github_headers("pull_request", body)).status_code == 202
    client.post("/webhook", content=body, headers=github_headers("pull_request", body))  # duplicate
    client.post("/webhook", content=body, headers=github_headers("pull_request", body, secret=b"wrong"))
    # a job that always fails and dies after 2 attempts, visible in /metrics
    queue.enqueue(JobSpec("explode", {}, max_attempts=2))
    assert wait_for(
        lambda: queue.stats()["dead"] == 1 and queue.stats()["queued"] == 0 and queue.stats()["running"] == 0
    )

    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = parse_prometheus(r.text)
    assert m[("labci_webhook_deliveries_received_total", ())] == 3
    assert m[("labci_webhook_deliveries_accepted_total", (("event", "pull_request"),))] == 1
    assert m[("labci_webhook_deliveries_rejected_total", (("reason", "duplicate"),))] == 1
    assert m[("labci_webhook_deliveries_rejected_total", (("reason", "bad_signature"),))] == 1
    assert m[("labci_jobs", (("kind", "delivery"), ("state", "done")))] == 1
    assert m[("labci_jobs", (("kind", "check"), ("state", "done")))] == 1
    assert m[("labci_jobs", (("kind", "explode"), ("state", "dead")))] == 1
    assert m[("labci_jobs_dead", ())] == 1
    assert m[("labci_queue_depth", ())] == 0
    assert m[("labci_workers_alive", ())] == 3
    assert m[("labci_job_retries_total", (("kind", "explode"),))] == 1
    assert m[("labci_jobs_finished_total", (("kind", "explode"), ("outcome", "dead")))] == 1
    assert m[("labci_job_duration_seconds_count", (("kind", "check"),))] == 1
    assert m[("labci_job_duration_seconds_bucket", (("kind", "check"), ("le", "+Inf")))] == 1
    assert m[("labci_webhook_ack_seconds_count", ())] == 1
    dead = queue.jobs(kind="explode")[0]
    assert dead["attempts"] == 2 and "explode" in dead["last_error"]


def test_healthz_reports_a_dead_database(tmp_path):
    settings = Settings(webhook_secret=SECRET, data_dir=tmp_path)
    queue = SQLiteQueue(settings.queue_path)
    app = create_app(settings, queue)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        queue.close()
        settings.queue_path.unlink()
        (tmp_path / "queue.db-wal").unlink(missing_ok=True)
        settings.queue_path.mkdir()  # the path is now a folder: the database is gone
        r = client.get("/healthz")
        body = payload_bytes("push", "payload.json")
        posted = client.post("/webhook", content=body, headers=github_headers("push", body))
    assert r.status_code == 503
    assert r.json()["db"] == "unreachable"
    # a delivery that cannot be stored is not acknowledged: GitHub shows it failed
    assert posted.status_code == 503 and posted.json()["reason"] == "queue_unavailable"
