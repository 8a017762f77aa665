"""The OpenAI-compatible teacher against real servers on loopback: llama.cpp's own
OpenAI server running our tiny GGUF, and a scripted http.server for misbehaviour."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab_ci.teacher import load_teacher
from lab_ci.teacher.base import Message, SamplingParams, Teacher, TeacherError
from lab_ci.teacher.openai import (
    OpenAITeacher,
    _Retryable,
    normalize_base_url,
    parse_choices,
    parse_retry_after,
    retrying,
)

PARAMS = SamplingParams(temperature=0.0, max_tokens=8)


def test_complete_and_chat_against_llama_cpp_server(llama_server, random_ggufs):
    t = load_teacher(llama_server, concurrency=4)  # no /v1: added
    assert isinstance(t, Teacher)
    assert t.model == "tiny-random"
    assert t.info.id == f"openai:{llama_server}/v1#tiny-random"
    out = t.complete(["<|user|>\nHello\n<|assistant|>\n", "Once upon a time"], PARAMS)
    assert [len(x) for x in out] == [1, 1]
    for [c] in out:
        assert isinstance(c.text, str) and c.text
        assert c.prompt_tokens > 0 and 0 < c.completion_tokens <= 8
        assert c.finish_reason in ("stop", "length")
    # the same text the local backend decodes from the same file, greedily
    from lab_ci.teacher.llamacpp import LlamaCppTeacher

    local = LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=512)
    assert [c.text for [c] in out] == [
        c.text for [c] in local.complete(["<|user|>\nHello\n<|assistant|>\n", "Once upon a time"], PARAMS)
    ]
    local.close()
    [[chat]] = t.chat([[Message("system", "Be brief."), Message("user", "Hi")]], PARAMS)
    assert chat.text and chat.completion_tokens <= 8
    t.close()


def test_n_samples_fall_back_to_repeated_requests(llama_server):
    # llama.cpp's server ignores "n" and answers one choice: the teacher asks again.
    t = load_teacher(llama_server + "/v1")
    [samples] = t.complete(["Once upon a time"], SamplingParams(temperature=1.0, max_tokens=6, seed=3), n=3)
    assert len(samples) == 3 and all(c.completion_tokens > 0 for c in samples)
    t.close()


def test_identical_prompts_of_one_call_get_their_own_samples(llama_server):
    # Sets of samples: a block's prompts are often identical (one draw of seed examples
    # for 4 samples). One seed for the whole call made them identical completions.
    t = load_teacher(llama_server + "/v1")
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=7)
    out = t.complete(["Once upon a time"] * 3, params)
    texts = [c.text for [c] in out]
    assert len(set(texts)) == 3, texts
    assert t.complete(["Once upon a time"] * 3, params) == out  # and a fixed seed still repeats
    t.close()


def test_server_down_fails_fast_and_clearly(unused_port):
    port = unused_port  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(
        TeacherError, match=rf"cannot connect to http://127.0.0.1:{port}/v1: connection refused \(after 3 attempts\)"
    ):
        load_teacher(f"http://127.0.0.1:{port}/v1", max_retries=2, backoff=0.05)
    assert time.monotonic() - t0 < 5


# ----------------------------------------------------------------- a scripted server


class Scripted:
    """An HTTP server on loopback answering from a script of (status, headers, body, delay)."""

    def __init__(self):
        self.script: list[tuple[int, dict, bytes, float]] = []
        self.requests: list[tuple[str, str, dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                status, headers, payload, delay = outer.script.pop(0) if outer.script else (500, {}, b"script empty", 0)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _answer

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, status=200, body=None, headers=None, delay=0.0, raw=None):
        payload = raw if raw is not None else json.dumps(body).encode()
        h = {"content-type": "application/json" if raw is None else "text/html", **(headers or {})}
        self.script.append((status, h, payload, delay))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text="hi", n=1):
    return {
        "choices": [{"index": i, "text": f"{text}{i}", "finish_reason": "length"} for i in range(n)],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3 * n},
    }


@pytest.fixture
def scripted():
    s = Scripted()
    yield s
    s.close()


def teacher_for(s: Scripted, **kw) -> OpenAITeacher:
    kw.setdefault("max_retries", 3)
    kw.setdefault("backoff", 0.01)
    return OpenAITeacher(s.url, model="m", **kw)


def test_500_then_200_is_retried(scripted):
    scripted.add(500, {"error": {"message": "overloaded"}})
    scripted.add(502, raw=b"<html>bad gateway</html>")
    scripted.add(200, completion())
    [[c]] = teacher_for(scripted).complete(["p"], PARAMS)
    assert c.text == "hi0" and c.prompt_tokens == 5 and c.completion_tokens == 3 and c.finish_reason == "length"
    assert len(scripted.requests) == 3
    body = json.loads(scripted.requests[-1][3])
    assert body == {"model": "m", "prompt": "p", "max_tokens": 8, "temperature": 0.0, "top_p": 0.95}


def test_429_honours_retry_after(scripted):
    scripted.add(429, {"error": "slow down"}, headers={"retry-after": "0.4"})
    scripted.add(200, completion())
    t0 = time.monotonic()
    [[c]] = teacher_for(scripted).complete(["p"], PARAMS)
    assert c.text == "hi0" and time.monotonic() - t0 >= 0.35


def test_retries_exhausted_names_the_last_answer(scripted):
    for _ in range(3):
        scripted.add(503, {"error": {"message": "model loading"}})
    with pytest.raises(TeacherError, match=r"HTTP 503: model loading \(after 3 attempts\)"):
        teacher_for(scripted, max_retries=2).complete(["p"], PARAMS)


def test_non_json_answer(scripted):
    scripted.add(200, raw=b"<html>proxy login</html>")
    with pytest.raises(
        TeacherError, match=r"answered with non-JSON \(HTTP 200, text/html\): '<html>proxy login</html>'"
    ):
        teacher_for(scripted).complete(["p"], PARAMS)


def test_missing_choices(scripted):
    scripted.add(200, {"id": "x", "object": "text_completion"})
    with pytest.raises(TeacherError, match="answered without 'choices'"):
        teacher_for(scripted).complete(["p"], PARAMS)


def test_4xx_is_not_retried_and_mentions_the_key(scripted, monkeypatch):
    monkeypatch.setenv("LAB_CI_TEACHER_API_KEY", "sekret")
    scripted.add(401, {"error": {"message": "invalid api key"}})
    with pytest.raises(TeacherError, match=r"HTTP 401: invalid api key \(check LAB_CI_TEACHER_API_KEY\)"):
        load_teacher(scripted.url, model="m", max_retries=3).complete(["p"], PARAMS)
    assert len(scripted.requests) == 1
    assert scripted.requests[0][2]["Authorization"] == "Bearer sekret"


def test_timeout(scripted):
    scripted.add(200, completion(), delay=1.5)
    scripted.add(200, completion(), delay=1.5)
    t0 = time.monotonic()
    with pytest.raises(TeacherError, match=r"no answer from .*/completions within 0.3s \(after 2 attempts\)"):
        teacher_for(scripted, timeout=0.3, max_retries=1).complete(["p"], PARAMS)
    assert time.monotonic() - t0 < 3


def test_model_discovery_and_n(scripted):
    scripted.add(200, {"object": "list", "data": [{"id": "granite-7b-lab"}, {"id": "other"}]})
    scripted.add(200, completion("a", n=3))
    t = load_teacher(scripted.url)
    assert t.info.id == f"openai:{scripted.url}#granite-7b-lab"
    [[a, b, c]] = t.complete(["p"], PARAMS, n=3)
    assert [a.text, b.text, c.text] == ["a0", "a1", "a2"] and a.completion_tokens == 3
    assert json.loads(scripted.requests[-1][3])["n"] == 3


def test_each_prompt_gets_the_seed_of_its_sequences(scripted):
    # prompt i's samples are sequences i*n .. i*n+n-1, seeded seed + sequence index, as
    # the local backend seeds them; a server that answers fewer than n is asked again
    scripted.add(200, completion("a", n=2))
    scripted.add(200, completion("b", n=1))
    scripted.add(200, completion("c", n=1))
    t = teacher_for(scripted, concurrency=1)
    out = t.complete(["p0", "p1"], SamplingParams(temperature=1.0, max_tokens=4, seed=10), n=2)
    assert [len(x) for x in out] == [2, 2]
    seeds = [
        (json.loads(r[3])["prompt"], json.loads(r[3])["seed"], json.loads(r[3]).get("n")) for r in scripted.requests
    ]
    assert seeds == [("p0", 10, 2), ("p1", 12, 2), ("p1", 13, None)]


def test_no_models_listed(scripted):
    scripted.add(200, {"object": "list", "data": []})
    with pytest.raises(TeacherError, match="lists no models"):
        load_teacher(scripted.url)


def test_chat_request_shape(scripted):
    scripted.add(
        200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}]}
    )
    [[c]] = teacher_for(scripted).chat(
        [[Message("user", "2+2?")]], SamplingParams(temperature=0.5, max_tokens=4, seed=9, stop=("\n",))
    )
    assert c.text == "4" and c.finish_reason == "stop"
    method, path, _, body = scripted.requests[-1]
    assert (method, path) == ("POST", "/v1/chat/completions")
    assert json.loads(body) == {
        "model": "m",
        "messages": [{"role": "user", "content": "2+2?"}],
        "max_tokens": 4,
        "temperature": 0.5,
        "top_p": 0.95,
        "seed": 9,
        "stop": ["\n"],
    }


def test_concurrent_requests_keep_prompt_order(scripted):
    for i in range(6):
        scripted.add(200, completion(f"r{i}-"), delay=0.5)
    t = teacher_for(scripted, concurrency=6)
    t0 = time.monotonic()
    out = t.complete([f"p{i}" for i in range(6)], PARAMS)
    assert time.monotonic() - t0 < 2.0  # in parallel: one after another would take 3 s
    # each answer belongs to the request that got it
    sent = [json.loads(r[3])["prompt"] for r in scripted.requests]
    assert len(out) == 6 and sorted(sent) == [f"p{i}" for i in range(6)]


# ----------------------------------------------------------------- pure helpers


def test_helpers():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("https://h/openai/v1/") == "https://h/openai/v1"
    with pytest.raises(TeacherError):
        normalize_base_url("http://")
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("9999") == 60.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 25 Nov 2026 12:00:10 GMT", now=1795608000.0) == pytest.approx(10.0)
    with pytest.raises(TeacherError, match="choice without 'message.content'"):
        parse_choices({"choices": [{"index": 0, "text": "x"}]}, "chat", "srv")
    with pytest.raises(TeacherError, match="answered with an error: boom"):
        parse_choices({"error": {"message": "boom"}}, "text", "srv")


def test_retry_policy_backs_off_exponentially_and_honours_retry_after():
    slept: list[float] = []
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 3:
            raise _Retryable("busy", wait=7.0)  # the server's Retry-After wins
        raise _Retryable(f"down {len(calls)}")

    policy = retrying(4, 1.0, sleep=slept.append)
    with pytest.raises(_Retryable, match="down 5"):
        policy(flaky)
    assert len(calls) == 5 and policy.statistics["attempt_number"] == 5
    assert len(slept) == 4 and slept[2] == 7.0
    # full jitter: retry k+1 waits at most backoff x 2^k
    assert 0 <= slept[0] <= 1.0 and 0 <= slept[1] <= 2.0 and 0 <= slept[3] <= 8.0
    # anything else is not retried
    calls.clear()

    def broken():
        calls.append(1)
        raise TeacherError("HTTP 400")

    with pytest.raises(TeacherError):
        retrying(4, 1.0, sleep=slept.append)(broken)
    assert len(calls) == 1
