"""One teacher shared by many jobs, served on loopback in the OpenAI wire format.

The bot loads its teacher once per ``lab-ci serve`` process and runs each preview in a
child process. The child reaches the teacher over loopback HTTP with lab-ci's ordinary
OpenAI-compatible backend: the service gives every job a URL and a bearer token of its
own (``JobTicket.env``), so the child needs nothing but ``LAB_CI_TEACHER`` and
``LAB_CI_TEACHER_API_KEY``::

    service = TeacherService(load_teacher(".cache/models/teacher.gguf")).start()
    ticket = service.open_job("preview:org/repo#12", token_budget=50_000)
    subprocess.run([...], env={**os.environ, **ticket.env})   # the child's teacher: load_teacher(url)
    service.close_job(ticket)
    service.close()

What it adds to the teacher:

* **a bounded request queue**: at most ``max_queued`` sequences waiting or running in
  all, ``max_queued_per_job`` for one job; a request over either bound is answered
  HTTP 429 with ``Retry-After`` (the OpenAI backend retries it with backoff);
* **per-job token budgets**: a request reserves ``max_tokens`` for each sequence it asks
  for; one that does not fit in what the job has left is refused (HTTP 400,
  ``budget_exceeded``); what a sequence did not generate is given back;
* **cancellation**: ``open_job`` with the key of a job still open supersedes it, and
  ``cancel(key)`` cancels it: its queued requests are dropped and its running sequences
  stop at the next decoding step; every request of it is answered HTTP 410 and its
  token no longer works. A request whose client hangs up is cancelled the same way.
* **batching across jobs** with the local engine (``LlamaCppTeacher``): the requests
  that arrive while a batch decodes (or each within ``gather_s`` of the one before, for
  at most 10 x ``gather_s``) are decoded together as one batch (prefix tree, kept prompts; see ``lab_ci.teacher.llamacpp``),
  and each request is answered as soon as its own sequences are done. With an
  OpenAI-compatible teacher (vLLM, llama-server) requests are forwarded to it as they
  come, streamed, so a cancelled one is dropped there too (the connection closes).

Endpoints: ``GET /health`` (no token), ``GET /v1/models``, ``POST /v1/completions``
(``prompt``: a string or a list of strings), ``POST /v1/chat/completions`` (rendered with
the model's chat template, as ``Teacher.chat`` does). Request fields: ``max_tokens``,
``temperature``, ``top_p``, ``top_k``, ``min_p``, ``seed``, ``stop``, ``n``; others are
ignored. The server binds to 127.0.0.1 only and reads at most ``max_body`` bytes.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .base import Completion, Message, SamplingParams, TeacherError
from .templates import format_chat, merge_stops

log = logging.getLogger(__name__)

#: bounds on one request (the child runs on untrusted input)
MAX_BODY = 4 << 20
MAX_N = 64
MAX_PROMPTS = 64
#: how often a waiting request checks its job and its client connection
POLL_S = 0.25


class ServiceError(Exception):
    """A request the service refuses: HTTP status, OpenAI error type, message."""

    def __init__(self, status: int, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.kind, self.retry_after = status, kind, retry_after


@dataclass
class JobTicket:
    """What a job's child process needs to reach the service."""

    key: str
    url: str  # the OpenAI base URL, ``http://127.0.0.1:PORT/v1``
    token: str
    model: str

    @property
    def env(self) -> dict[str, str]:
        """Environment for the child: lab-ci's teacher settings pointing at the service
        (all of a block's requests in flight at once, so they are decoded as one batch;
        no client timeout shorter than a busy queue: the job's own time limit bounds it)."""
        return {
            "LAB_CI_TEACHER": self.url,
            "LAB_CI_TEACHER_API_KEY": self.token,
            "LAB_CI_TEACHER_MODEL": self.model,
            "LAB_CI_TEACHER_CONCURRENCY": "64",
            "LAB_CI_TEACHER_TIMEOUT": "86400",
        }


@dataclass
class _Job:
    key: str
    token: str
    budget: int
    used: int = 0  # tokens generated
    reserved: int = 0  # tokens reserved by requests not finished yet
    queued: int = 0  # sequences waiting or running
    cancelled: str | None = None  # why, once cancelled
    requests: int = 0


@dataclass
class _Request:
    """One HTTP request: its sequences, and where their completions go."""

    job: _Job
    path: str  # "completions" | "chat/completions"
    params: SamplingParams
    n: int  # samples per prompt
    n_prompts: int = 1
    tokens: list[list[int]] = field(default_factory=list)  # each prompt's tokens (local engine)
    body: dict = field(default_factory=dict)  # what is forwarded (forwarding engine)
    prompt_tokens: int = 0
    results: list[Completion | None] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: ServiceError | None = None
    hung_up: bool = False
    started: bool = False  # taken by the engine
    remaining: int = 0

    @property
    def sequences(self) -> int:
        return self.n_prompts * self.n

    @property
    def kind(self) -> str:
        return "chat" if self.path == "chat/completions" else "text"

    def cancelled(self) -> bool:
        return self.hung_up or self.job.cancelled is not None


class TeacherService:
    """A teacher shared by jobs over loopback HTTP (see the module docstring)."""

    def __init__(
        self,
        teacher,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_queued: int = 256,
        max_queued_per_job: int = 64,
        gather_s: float = 0.02,
        max_body: int = MAX_BODY,
    ):
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise TeacherError(f"the teacher service listens on loopback only, not {host!r}")
        self.teacher = teacher
        self.host, self.port = host, port
        self.max_queued, self.max_queued_per_job = max_queued, max_queued_per_job
        self.gather_s, self.max_body = gather_s, max_body
        self.model = getattr(getattr(teacher, "info", None), "name", "") or "teacher"
        self._jobs: dict[str, _Job] = {}  # token -> job
        self._by_key: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._queued = 0
        self._totals = {"jobs_opened": 0, "requests": 0, "completion_tokens": 0}
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._engine = _LocalEngine(self) if hasattr(teacher, "generate") else _ForwardEngine(self)
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TeacherService:
        handler = _handler_class(self)
        self._httpd = _Server((self.host, self.port), handler)
        self._httpd.max_body = self.max_body
        self.port = self._httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}/v1"
        for name, target in (("http", self._httpd.serve_forever), ("engine", self._engine.run)):
            t = threading.Thread(target=target, name=f"lab-ci-teacher-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("teacher service for %s on %s", self.model, self.url)
        return self

    def close(self) -> None:
        """Stop serving: every open job is cancelled, the HTTP server and engine stop.
        The teacher itself is the caller's to close."""
        with self._lock:
            for job in list(self._by_key.values()):
                self._cancel_locked(job, "the teacher service is shutting down")
        self._queue.put(None)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=30)
        while True:  # requests queued behind the stop: answered, not left waiting
            try:
                req = self._queue.get_nowait()
            except queue.Empty:
                break
            if req is not None:
                self._fail(req, ServiceError(503, "shutting_down", "the teacher service is shutting down"))

    def __enter__(self) -> TeacherService:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ jobs

    def open_job(self, key: str, token_budget: int) -> JobTicket:
        """A job that may generate up to ``token_budget`` tokens. A job still open under
        the same ``key`` (an earlier push of the same pull request) is cancelled: it is
        superseded."""
        if token_budget < 1:
            raise ValueError("token_budget must be >= 1")
        token = "lab-ci-job-" + secrets.token_urlsafe(24)
        job = _Job(key, token, int(token_budget))
        with self._lock:
            old = self._by_key.get(key)
            if old is not None:
                self._cancel_locked(old, "superseded by a newer job")
            self._jobs[token] = job
            self._by_key[key] = job
            self._totals["jobs_opened"] += 1
        return JobTicket(key, self.url, token, self.model)

    def cancel(self, key: str, reason: str = "cancelled") -> bool:
        """Cancel the open job ``key``; False if there is none."""
        with self._lock:
            job = self._by_key.get(key)
            if job is None:
                return False
            self._cancel_locked(job, reason)
            return True

    def close_job(self, ticket: JobTicket) -> dict:
        """Forget a finished job (its token stops working); its usage, and why it was
        cancelled before (``cancelled``: None if it was not)."""
        with self._lock:
            job = self._jobs.pop(ticket.token, None)
            if job is None:
                return {}
            cancelled = job.cancelled
            self._cancel_locked(job, "closed")  # requests still running stop
            return {"used": job.used, "budget": job.budget, "requests": job.requests, "cancelled": cancelled}

    def stats(self) -> dict:
        """The queue now (sequences queued or running, open jobs and their usage) and
        totals since start: jobs opened, requests admitted, tokens generated."""
        with self._lock:
            return {
                **self._totals,
                "queued_sequences": self._queued,
                "jobs": {
                    j.key: {"used": j.used, "reserved": j.reserved, "budget": j.budget, "queued": j.queued}
                    for j in self._by_key.values()
                },
            }

    def _cancel_locked(self, job: _Job, reason: str) -> None:
        """Mark the job cancelled (its token is answered 410 until ``close_job``); its
        key is free for a new job."""
        job.cancelled = job.cancelled or reason
        if self._by_key.get(job.key) is job:
            del self._by_key[job.key]

    # ------------------------------------------------------------------ requests

    def _job_for(self, authorization: str | None) -> _Job:
        token = (authorization or "").removeprefix("Bearer ").strip()
        with self._lock:
            for known, job in self._jobs.items():
                if hmac.compare_digest(known.encode(), token.encode()):
                    return job
        raise ServiceError(401, "invalid_api_key", "unknown or finished job token")

    def _admit(self, req: _Request) -> None:
        """Reserve the request's tokens and queue room, or refuse it."""
        need = req.sequences * req.params.max_tokens
        with self._lock:
            job = req.job
            if job.cancelled:
                raise ServiceError(410, "job_cancelled", f"job {job.key!r} was cancelled: {job.cancelled}")
            left = job.budget - job.used - job.reserved
            if need > left:
                raise ServiceError(
                    400,
                    "budget_exceeded",
                    f"job {job.key!r} asks for {need} tokens ({req.sequences} x max_tokens={req.params.max_tokens}) "
                    f"but has {max(left, 0)} of its budget of {job.budget} left",
                )
            if job.queued + req.sequences > self.max_queued_per_job:
                raise ServiceError(
                    429, "job_queue_full", f"job {job.key!r} has {job.queued} sequences queued", retry_after=1
                )
            if self._queued + req.sequences > self.max_queued:
                raise ServiceError(429, "queue_full", f"the teacher has {self._queued} sequences queued", retry_after=1)
            job.reserved += need
            job.queued += req.sequences
            job.requests += 1
            self._queued += req.sequences
        req.remaining = req.sequences
        req.results = [None] * req.sequences

    def _release(self, req: _Request) -> None:
        """Give back what the request reserved, count what it generated."""
        used = sum(c.completion_tokens for c in req.results if c is not None)
        with self._lock:
            job = req.job
            job.reserved -= req.sequences * req.params.max_tokens
            job.used += used
            job.queued -= req.sequences
            self._queued -= req.sequences
            self._totals["requests"] += 1
            self._totals["completion_tokens"] += used

    def _finish(self, req: _Request, index: int, completion: Completion) -> None:
        """A sequence of the request is done (called by the engine)."""
        req.results[index] = completion
        req.remaining -= 1
        if req.remaining <= 0:
            req.done.set()

    def _fail(self, req: _Request, error: ServiceError) -> None:
        req.error = error
        req.done.set()

    def handle(self, path: str, body: dict, authorization: str | None, connection: socket.socket | None) -> dict:
        """Answer one API request (called on the HTTP thread); raises ServiceError."""
        job = self._job_for(authorization)
        req = self._engine.parse(path, body, job)
        self._admit(req)
        try:
            self._engine.submit(req)
            while not req.done.wait(POLL_S):
                if not req.hung_up and connection is not None and _hung_up(connection):
                    req.hung_up = True  # the engine drops it at its next step
                if req.cancelled() and not req.started:
                    break  # still queued: answered now; the engine skips it when it comes to it
            if req.job.cancelled and (
                not req.done.is_set() or any(c is None or c.finish_reason == "cancelled" for c in req.results)
            ):
                raise ServiceError(410, "job_cancelled", f"job {job.key!r} was cancelled: {req.job.cancelled}")
            if req.error is not None:
                raise req.error
            return _answer(req, self.model)
        finally:
            self._release(req)


# --------------------------------------------------------------------------- engines


def _params_from(body: dict, default_max_tokens: int = 256) -> tuple[SamplingParams, int]:
    """SamplingParams and n from an OpenAI request body; ServiceError if malformed."""

    def num(name, kind, default, lo=None, hi=None):
        v = body.get(name, default)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
            raise ServiceError(400, "invalid_request_error", f"'{name}' must be a number, got {v!r}")
        v = kind(v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ServiceError(400, "invalid_request_error", f"'{name}'={v} is out of range [{lo}, {hi}]")
        return v

    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, (list, tuple)) or len(stop) > 16 or not all(isinstance(s, str) for s in stop):
        raise ServiceError(400, "invalid_request_error", "'stop' must be a string or a list of at most 16 strings")
    params = SamplingParams(
        temperature=num("temperature", float, 0.7, 0.0, 10.0),
        top_p=num("top_p", float, 0.95, 0.0, 1.0),
        max_tokens=num("max_tokens", int, default_max_tokens, 1, 1 << 20),
        top_k=num("top_k", int, None, 0, 1 << 20),
        min_p=num("min_p", float, None, 0.0, 1.0),
        seed=num("seed", int, None, 0, (1 << 32) - 1),
        stop=tuple(stop),
    )
    return params, num("n", int, 1, 1, MAX_N)


def _messages(body: dict) -> list[Message]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ServiceError(400, "invalid_request_error", "'messages' must be a non-empty list")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or not isinstance(m.get("role"), str):
            raise ServiceError(400, "invalid_request_error", f"messages[{i}] needs a string 'role' and 'content'")
        out.append(Message(m["role"], m["content"]))
    return out


def _prompts(body: dict) -> list[str]:
    p = body.get("prompt")
    prompts = [p] if isinstance(p, str) else p
    if not isinstance(prompts, list) or not prompts or not all(isinstance(x, str) and x for x in prompts):
        raise ServiceError(400, "invalid_request_error", "'prompt' must be a non-empty string or list of strings")
    if len(prompts) > MAX_PROMPTS:
        raise ServiceError(400, "invalid_request_error", f"at most {MAX_PROMPTS} prompts per request")
    return prompts


def _answer(req: _Request, model: str) -> dict:
    choices = []
    for i, c in enumerate(req.results):
        choice: dict[str, Any] = {"index": i, "finish_reason": c.finish_reason}
        if req.kind == "chat":
            choice["message"] = {"role": "assistant", "content": c.text}
        else:
            choice["text"] = c.text
        choices.append(choice)
    completion_tokens = sum(c.completion_tokens for c in req.results)
    return {
        "object": "chat.completion" if req.kind == "chat" else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": req.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": req.prompt_tokens + completion_tokens,
        },
    }


class _LocalEngine:
    """Runs requests on a local ``LlamaCppTeacher``: one thread gathers what is queued
    and decodes it as one batch (``LlamaCppTeacher.generate``)."""

    def __init__(self, service: TeacherService):
        self.service = service
        self.teacher = service.teacher

    def parse(self, path: str, body: dict, job: _Job) -> _Request:
        params, n = _params_from(body)
        if path == "chat/completions":
            prompts = [format_chat(_messages(body), self.teacher.chat_format)]
            params = replace(params, stop=merge_stops(params.stop, self.teacher.chat_format))
        else:
            prompts = _prompts(body)
        toks = [self.teacher.tokenize(p) for p in prompts]
        n_ctx = self.teacher.n_ctx
        for i, t in enumerate(toks):
            if len(t) + params.max_tokens > n_ctx:
                raise ServiceError(
                    400,
                    "context_length_exceeded",
                    f"prompt {i} is {len(t)} tokens; with max_tokens={params.max_tokens} it needs "
                    f"{len(t) + params.max_tokens} but the teacher's context holds {n_ctx}",
                )
        return _Request(job, path, params, n, len(toks), tokens=toks, prompt_tokens=sum(map(len, toks)) * n)

    def submit(self, req: _Request) -> None:
        self.service._queue.put(req)

    def run(self) -> None:
        from .llamacpp import GenRequest, sequence_seed

        q = self.service._queue
        limit = max(1, getattr(self.teacher, "max_parallel", 8))
        while True:
            first = q.get()
            if first is None:
                return
            batch, size = [first], first.sequences
            # gather: while requests keep arriving (each within gather_s of the last, as a
            # block's requests do), up to max_parallel sequences or 10 x gather_s in all
            gather = self.service.gather_s
            cap = time.monotonic() + 10 * gather
            deadline = min(cap, time.monotonic() + gather)
            stop = False
            while size < limit:
                try:
                    nxt = q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                size += nxt.sequences
                deadline = min(cap, time.monotonic() + gather)
            try:
                gens = []
                for req in batch:
                    req.started = True
                    for i, toks in enumerate(req.tokens):
                        for j in range(req.n):
                            k = i * req.n + j
                            gens.append(
                                GenRequest(
                                    toks,
                                    req.params,
                                    sequence_seed(req.params.seed, k),
                                    cancelled=req.cancelled,
                                    on_done=lambda c, req=req, k=k: self.service._finish(req, k, c),
                                )
                            )
                self.teacher.generate(gens)
            except Exception as e:  # noqa: BLE001 - every request of the batch gets the error; the engine goes on
                log.exception("teacher service: a batch failed")
                for req in batch:
                    if not req.done.is_set():
                        self.service._fail(req, ServiceError(500, "server_error", f"the teacher failed: {e}"))
            if stop:
                return


class _ForwardEngine:
    """Forwards each request to an OpenAI-compatible teacher (``OpenAITeacher``: vLLM,
    llama-server), streamed, on the request's own thread; a cancelled request closes
    its connection, which ends it on the server. The teacher's API key stays here."""

    def __init__(self, service: TeacherService):
        import httpx

        t = service.teacher
        self.service = service
        self.base_url, self.model = t.base_url, t.model
        self.client = httpx.Client(
            base_url=self.base_url + "/",
            headers=dict(t._client.headers),
            timeout=httpx.Timeout(t.timeout, connect=min(t.timeout, 10.0)),
        )

    def parse(self, path: str, body: dict, job: _Job) -> _Request:
        params, n = _params_from(body)
        if path == "chat/completions":
            _messages(body)
            count = 1
        else:
            count = len(_prompts(body))
        fwd = {k: v for k, v in body.items() if k in _FORWARDED}
        fwd.update(model=self.model, max_tokens=params.max_tokens, stream=True)
        fwd["stream_options"] = {"include_usage": True}
        return _Request(job, path, params, n, count, body=fwd)

    def submit(self, req: _Request) -> None:
        threading.Thread(target=self._forward, args=(req,), daemon=True, name="lab-ci-teacher-forward").start()

    def run(self) -> None:
        while self.service._queue.get() is not None:  # requests run on their own threads
            pass

    def _forward(self, req: _Request) -> None:
        import httpx

        texts = [""] * req.sequences
        finish = ["length"] * req.sequences
        pieces = [0] * req.sequences
        usage: dict = {}
        try:
            with self.client.stream("POST", req.path, json=req.body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    status = resp.status_code if resp.status_code < 500 else 502
                    raise ServiceError(
                        status, "upstream_error", f"the teacher answered HTTP {resp.status_code}: {resp.text[:300]}"
                    )
                for line in resp.iter_lines():
                    if req.cancelled():
                        break  # leaving the block closes the connection: the server drops the request
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    for ch in chunk.get("choices") or []:
                        i = int(ch.get("index", 0))
                        if not 0 <= i < req.sequences:
                            continue
                        piece = (ch.get("delta") or {}).get("content") if req.kind == "chat" else ch.get("text")
                        if piece:
                            texts[i] += piece
                            pieces[i] += 1
                        if ch.get("finish_reason"):
                            finish[i] = ch["finish_reason"]
        except ServiceError as e:
            self.service._fail(req, e)
            return
        except (httpx.HTTPError, ValueError) as e:
            self.service._fail(req, ServiceError(502, "upstream_error", f"the teacher at {self.base_url} failed: {e}"))
            return
        req.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        total = int(usage.get("completion_tokens") or 0)
        for i in range(req.sequences):
            # the server's count, shared out as the pieces came; else one token a piece
            tokens = round(total * pieces[i] / max(1, sum(pieces))) if total else pieces[i]
            reason = "cancelled" if req.cancelled() else finish[i]
            self.service._finish(req, i, Completion(texts[i], reason, 0, tokens))


_FORWARDED = {"prompt", "messages", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "n"}


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` of them: a connection over
    that is closed at once (the children's clients hold a few each)."""

    daemon_threads = True
    max_body = MAX_BODY
    max_connections = 256

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            log.warning("teacher service: %d connections open; refusing one", self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _hung_up(conn: socket.socket) -> bool:
    """Whether the client closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _handler_class(service: TeacherService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # seconds to read a request

        def setup(self):
            super().setup()
            # answers are small: without this, Nagle's algorithm holds the body back until
            # the client's delayed ACK of the headers (~40 ms a request)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, fmt, *args):
            log.debug("teacher service: " + fmt, *args)

        def _send(self, status: int, data: dict, headers: Callable[[], dict] | None = None) -> None:
            raw = json.dumps(data).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for k, v in (headers() if headers else {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _error(self, e: ServiceError) -> None:
            extra = (lambda: {"retry-after": f"{e.retry_after:g}"}) if e.retry_after else None
            self._send(e.status, {"error": {"message": str(e), "type": e.kind, "code": e.status}}, extra)

        def do_GET(self):
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health":
                return self._send(200, {"status": "ok"})
            try:
                service._job_for(self.headers.get("authorization"))
            except ServiceError as e:
                return self._error(e)
            if path == "/v1/models":
                return self._send(200, {"object": "list", "data": [{"id": service.model, "object": "model"}]})
            self._error(ServiceError(404, "not_found", f"no such endpoint: GET {path}"))

        def do_POST(self):
            path = self.path.split("?", 1)[0].rstrip("/")
            try:
                length = int(self.headers.get("content-length") or -1)
            except ValueError:
                length = -1
            if length < 0 or length > self.server.max_body:
                self.close_connection = True
                return self._error(
                    ServiceError(
                        413, "invalid_request_error", f"a request body of at most {self.server.max_body} bytes"
                    )
                )
            raw = self.rfile.read(length)
            if path not in ("/v1/completions", "/v1/chat/completions"):
                return self._error(ServiceError(404, "not_found", f"no such endpoint: POST {path}"))
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError) as e:
                return self._error(ServiceError(400, "invalid_request_error", f"the body is not a JSON object: {e}"))
            try:
                answer = service.handle(
                    path.removeprefix("/v1/"), body, self.headers.get("authorization"), self.connection
                )
            except ServiceError as e:
                return self._error(e)
            except TeacherError as e:
                return self._error(ServiceError(400, "invalid_request_error", str(e)))
            self._send(200, answer)

    return Handler
