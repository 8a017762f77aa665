"""The teacher service: one real llama.cpp teacher shared by jobs over loopback HTTP,
reached by lab-ci's own OpenAI backend (in child processes, as the bot's previews will)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from lab_ci.teacher import load_teacher
from lab_ci.teacher.base import Message, SamplingParams, TeacherError
from lab_ci.teacher.llamacpp import LlamaCppTeacher
from lab_ci.teacher.service import TeacherService

REPO_ROOT = Path(__file__).resolve().parents[2]
GREEDY = SamplingParams(temperature=0.0, max_tokens=12)
CONVS = [
    [Message("system", "You are a careful teacher."), Message("user", "Write a question about bees.")],
    [Message("system", "You are a careful teacher."), Message("user", "Write a question about the moon.")],
    [Message("user", "Say something.")],
]


@pytest.fixture(scope="module")
def local(random_ggufs):
    t = LlamaCppTeacher(random_ggufs["f32"], n_ctx=4096, max_parallel=8)
    yield t
    t.close()


@pytest.fixture
def service(local):
    svc = TeacherService(local, max_queued=16, max_queued_per_job=8).start()
    yield svc
    svc.close()


@pytest.fixture
def slow_steps(local, monkeypatch):
    """Every decoding step of a sequence takes at least 2 ms, as on a real teacher (the
    tiny model decodes thousands of tokens a second): a 1500-token request runs ~3 s."""
    real = local._accept

    def slow(seq):
        time.sleep(0.002)
        real(seq)

    monkeypatch.setattr(local, "_accept", slow)


def wait_for(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def post(ticket, path: str, body: dict, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        f"{ticket.url}/{path}", json=body, headers={"authorization": f"Bearer {ticket.token}"}, timeout=timeout
    )


CHILD = """
import json, sys
from lab_ci.teacher import teacher_from_env
from lab_ci.teacher.base import Message, SamplingParams
convs = [[Message(**m) for m in conv] for conv in json.loads(sys.argv[1])]
t = teacher_from_env()
out = t.chat(convs, SamplingParams(temperature=0.0, max_tokens=12), n=2)
print(json.dumps([[c.text for c in comps] for comps in out]))
"""


def test_a_child_process_gets_what_the_teacher_gives_in_process(service, local):
    ticket = service.open_job("preview:org/repo#1", token_budget=10_000)
    convs = [[{"role": m.role, "content": m.content} for m in conv] for conv in CONVS]
    env = {**os.environ, **ticket.env, "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(convs)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    want = local.chat(CONVS, GREEDY, n=2)
    assert got == [[c.text for c in comps] for comps in want]  # f32 weights: batching does not change greedy text
    usage = service.close_job(ticket)
    assert usage["used"] == sum(c.completion_tokens for comps in want for c in comps)
    assert usage["requests"] == 3  # one request per conversation, n=2 each


def test_requests_of_several_jobs_are_decoded_as_one_batch(service, local, monkeypatch, slow_steps):
    calls = []
    real = local.generate

    def counting(requests):
        calls.append(len(requests))
        return real(requests)

    monkeypatch.setattr(local, "generate", counting)
    tickets = [service.open_job(f"preview:org/repo#{i}", 10_000) for i in range(3)]
    teachers = [load_teacher(t.url, api_key=t.token) for t in tickets]
    out: dict[int, list] = {}

    def one(i):
        out[i] = teachers[i].chat([CONVS[i]], GREEDY)

    # a long request keeps the engine busy while the three arrive; they queue and go together
    busy = threading.Thread(
        target=post, args=(tickets[0], "completions", {"prompt": "Once", "max_tokens": 1500, "temperature": 0})
    )
    busy.start()
    wait_for(lambda: calls)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads + [busy]:
        t.join(timeout=120)
    assert calls[0] == 1 and 3 in calls[1:], calls
    for i in range(3):
        assert out[i] == local.chat([CONVS[i]], GREEDY)
    for t in teachers:
        t.close()


def test_a_short_request_is_answered_before_the_long_one_of_its_batch_ends(service, local, monkeypatch, slow_steps):
    calls, gate = [], threading.Event()
    real = local.generate

    def gated(requests):  # the first batch waits until the long and the short one are queued
        calls.append(len(requests))
        if len(calls) == 1:
            gate.wait(120)
        return real(requests)

    monkeypatch.setattr(local, "generate", gated)
    a, b, c = (service.open_job(k, 10_000) for k in "abc")
    done = {}

    def ask(name, ticket, max_tokens):
        body = {"prompt": f"<|user|>\n{name}\n<|assistant|>\n", "max_tokens": max_tokens, "temperature": 0}
        r = post(ticket, "completions", body, timeout=300)
        done[name] = (time.monotonic(), r.json()["usage"]["completion_tokens"])

    busy = threading.Thread(target=ask, args=("busy", c, 4))
    busy.start()
    wait_for(lambda: calls)
    threads = [
        threading.Thread(target=ask, args=("long", a, 150)),
        threading.Thread(target=ask, args=("short", b, 3)),
    ]
    for t in threads:
        t.start()
    wait_for(lambda: service.stats()["queued_sequences"] == 3, timeout=60)  # busy running, two waiting
    gate.set()
    for t in [busy, *threads]:
        t.join(timeout=300)
    assert calls == [1, 2]  # long and short decoded as one batch
    assert done["short"][1] <= 3 and done["long"][1] > 100
    assert done["short"][0] < done["long"][0]


def test_token_budget_is_enforced_and_unused_tokens_come_back(service):
    ticket = service.open_job("budget", token_budget=20)
    r = post(ticket, "completions", {"prompt": "Hello", "max_tokens": 8, "n": 2, "temperature": 0})
    assert r.status_code == 200 and len(r.json()["choices"]) == 2
    used = r.json()["usage"]["completion_tokens"]
    r = post(ticket, "completions", {"prompt": "Hello", "max_tokens": 21 - used})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "budget_exceeded" and f"has {20 - used} of its budget of 20 left" in err["message"]
    # through lab-ci's client: a clear, non-retried TeacherError
    t = load_teacher(ticket.url, api_key=ticket.token)
    with pytest.raises(TeacherError, match="HTTP 400: .*budget"):
        t.complete(["Hello"], SamplingParams(max_tokens=100))
    t.close()
    assert service.stats()["jobs"]["budget"]["reserved"] == 0


def test_queue_bounds_answer_429_with_retry_after(local, slow_steps):
    svc = TeacherService(local, max_queued=4, max_queued_per_job=3).start()
    try:
        ticket = svc.open_job("q", 10_000)
        r = post(ticket, "completions", {"prompt": "Hello", "max_tokens": 2, "n": 4})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["type"] == "job_queue_full"
        other = svc.open_job("other", 10_000)
        # one job holds 3 sequences (a long request); another asks for 2: over the total of 4
        long = threading.Thread(
            target=post, args=(ticket, "completions", {"prompt": "Once", "max_tokens": 1500, "n": 3, "temperature": 0})
        )
        long.start()
        wait_for(lambda: svc.stats()["queued_sequences"] == 3)
        r = post(other, "completions", {"prompt": "Hello", "max_tokens": 2, "n": 2})
        assert r.status_code == 429 and r.json()["error"]["type"] == "queue_full"
        svc.cancel("q")
        long.join(timeout=60)
        assert post(other, "completions", {"prompt": "Hello", "max_tokens": 2, "n": 2}).status_code == 200
    finally:
        svc.close()


def test_a_superseded_job_is_cancelled_mid_generation(service, slow_steps):
    old = service.open_job("preview:org/repo#7", 100_000)
    result = {}

    def long_request():
        result["r"] = post(old, "completions", {"prompt": "Once", "max_tokens": 3500, "temperature": 0})

    th = threading.Thread(target=long_request)
    th.start()
    wait_for(lambda: service.stats()["queued_sequences"] == 1)
    time.sleep(0.3)  # decoding
    new = service.open_job("preview:org/repo#7", 100_000)  # a new push of the same pull request
    th.join(timeout=60)
    r = result["r"]
    assert r.status_code == 410 and "superseded" in r.json()["error"]["message"]
    # stopped at once, not after its 3500 tokens (which take over 7 s here)
    assert service.stats()["queued_sequences"] == 0
    assert post(old, "completions", {"prompt": "x", "max_tokens": 2}).status_code == 410
    ok = post(new, "completions", {"prompt": "x", "max_tokens": 2})
    assert ok.status_code == 200
    t = load_teacher(old.url, api_key=old.token, model="m")
    with pytest.raises(TeacherError, match="HTTP 410: .*cancelled: superseded"):
        t.complete(["x"], SamplingParams(max_tokens=2))
    t.close()
    assert 0 < service.close_job(old)["used"] < 1750
    assert post(old, "completions", {"prompt": "x", "max_tokens": 2}).status_code == 401  # closed: token gone


def test_a_client_that_hangs_up_frees_the_engine(service, slow_steps):
    ticket = service.open_job("hangup", 100_000)
    body = json.dumps({"prompt": "Once", "max_tokens": 3500, "temperature": 0}).encode()
    sock = socket.create_connection(("127.0.0.1", service.port))
    sock.sendall(
        b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {ticket.token}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    wait_for(lambda: service.stats()["queued_sequences"] == 1)
    time.sleep(0.3)  # decoding
    sock.close()
    wait_for(lambda: service.stats()["queued_sequences"] == 0)
    assert 0 < service.stats()["jobs"]["hangup"]["used"] < 1750  # stopped, not run to its 3500 tokens


def test_bad_requests_get_clear_errors(service):
    ticket = service.open_job("bad", 10_000)
    assert httpx.get(f"http://127.0.0.1:{service.port}/health").json() == {"status": "ok"}
    assert httpx.get(f"{ticket.url}/models").status_code == 401
    models = httpx.get(f"{ticket.url}/models", headers={"authorization": f"Bearer {ticket.token}"}).json()
    assert models["data"][0]["id"] == service.model
    wrong = httpx.post(f"{ticket.url}/completions", json={"prompt": "x"}, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    cases = [
        ({"prompt": ""}, 400, "'prompt' must be"),
        ({"prompt": "x", "max_tokens": "many"}, 400, "'max_tokens' must be a number"),
        ({"prompt": "x", "temperature": -1}, 400, "out of range"),
        ({"prompt": "x", "n": 1000}, 400, "'n'=1000 is out of range"),
        ({"prompt": "x " * 3000, "max_tokens": 2000}, 400, "context holds 4096"),
        ({"messages": [{"role": "user"}]}, 400, "needs a string 'role' and 'content'"),
    ]
    for body, status, text in cases:
        path = "chat/completions" if "messages" in body else "completions"
        r = post(ticket, path, body)
        assert r.status_code == status and text in r.json()["error"]["message"], (body, r.text)
    r = httpx.post(
        f"{ticket.url}/completions", content=b"{not json", headers={"authorization": f"Bearer {ticket.token}"}
    )
    assert r.status_code == 400 and "not a JSON object" in r.json()["error"]["message"]
    r = httpx.post(f"{ticket.url}/nothing", json={}, headers={"authorization": f"Bearer {ticket.token}"})
    assert r.status_code == 404
    huge = b'{"prompt": "' + b"x" * (5 << 20) + b'"}'
    r = httpx.post(f"{ticket.url}/completions", content=huge, headers={"authorization": f"Bearer {ticket.token}"})
    assert r.status_code == 413
    assert service.stats()["queued_sequences"] == 0


def test_the_service_listens_on_loopback_only(local):
    with pytest.raises(TeacherError, match="loopback only"):
        TeacherService(local, host="0.0.0.0")


# ----------------------------------------------------------------- in front of an OpenAI-compatible server


def test_forwarding_to_an_openai_compatible_teacher(llama_server, random_ggufs):
    """With an OpenAI-compatible teacher (here llama-cpp-python's server on our GGUF) the
    service forwards each request; the job never sees the server's URL or key."""
    upstream = load_teacher(llama_server + "/v1")
    with TeacherService(upstream) as svc:
        ticket = svc.open_job("fwd", token_budget=200)
        t = load_teacher(ticket.url, api_key=ticket.token)
        [[c]] = t.complete(["<|user|>\nHello\n<|assistant|>\n"], SamplingParams(temperature=0.0, max_tokens=8))
        [[direct]] = upstream.complete(
            ["<|user|>\nHello\n<|assistant|>\n"], SamplingParams(temperature=0.0, max_tokens=8)
        )
        assert c.text == direct.text and 0 < c.completion_tokens <= 8
        [[chat]] = t.chat([[Message("user", "Hi")]], SamplingParams(temperature=0.0, max_tokens=6))
        assert chat.text and chat.finish_reason in ("stop", "length")
        with pytest.raises(TeacherError, match="budget"):
            t.complete(["x"], SamplingParams(max_tokens=500))
        used = svc.close_job(ticket)["used"]
        assert 0 < used <= 14
        t.close()
    upstream.close()


class SlowStream:
    """An OpenAI-compatible server on loopback that streams one token every 20 ms and
    records whether its client went away before the end."""

    def __init__(self, chunks: int = 500):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.disconnected = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                try:
                    for _ in range(chunks):
                        piece = {"choices": [{"index": 0, "text": "a", "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(piece)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(0.02)
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    outer.disconnected.set()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_a_cancelled_job_closes_its_forwarded_request():
    upstream_server = SlowStream()
    upstream = load_teacher(upstream_server.url, model="m")
    with TeacherService(upstream) as svc:
        ticket = svc.open_job("preview:org/repo#9", token_budget=10_000)
        got = {}
        th = threading.Thread(
            target=lambda: got.setdefault("r", post(ticket, "completions", {"prompt": "x", "max_tokens": 1000}))
        )
        th.start()
        wait_for(lambda: svc.stats()["queued_sequences"] == 1)
        time.sleep(0.3)
        svc.open_job("preview:org/repo#9", token_budget=10_000)  # superseded
        th.join(timeout=30)
        assert got["r"].status_code == 410
        assert upstream_server.disconnected.wait(5), "the forwarded request was not dropped upstream"
    upstream.close()
    upstream_server.httpd.shutdown()


def test_a_cancelled_jobs_queued_request_is_answered_without_waiting_for_the_engine(service, slow_steps):
    busy = service.open_job("busy", 100_000)
    queued = service.open_job("preview:org/repo#3", 100_000)
    th = threading.Thread(
        target=post, args=(busy, "completions", {"prompt": "Once", "max_tokens": 3000, "temperature": 0})
    )
    th.start()
    wait_for(lambda: service.stats()["queued_sequences"] == 1)
    time.sleep(0.2)  # the engine is decoding the busy job's request
    got = {}
    waiter = threading.Thread(
        target=lambda: got.setdefault("r", post(queued, "completions", {"prompt": "x", "max_tokens": 5}))
    )
    waiter.start()
    wait_for(lambda: service.stats()["queued_sequences"] == 2)
    service.cancel("preview:org/repo#3", "superseded by a newer job")
    waiter.join(timeout=30)
    assert got["r"].status_code == 410
    assert th.is_alive() and service.stats()["jobs"]["busy"]["queued"] == 1  # answered before the engine got to it
    service.cancel("busy")
    th.join(timeout=30)


def test_connections_over_the_limit_are_closed(local, monkeypatch):
    from lab_ci.teacher import service as service_module

    monkeypatch.setattr(service_module._Server, "max_connections", 2)
    with TeacherService(local) as svc:
        held = [socket.create_connection(("127.0.0.1", svc.port)) for _ in range(2)]
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", svc.port))
        extra.settimeout(5)
        assert extra.recv(1) == b""  # closed by the service without an answer
        for s in held:
            s.close()
        extra.close()
        time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{svc.port}/health").status_code == 200
