"""A teacher behind any OpenAI-compatible server (vLLM, llama.cpp's server, TGI, ...).

``complete()`` posts to ``<base>/completions``, ``chat()`` to ``<base>/chat/completions``.
Requests run concurrently (a thread pool of ``concurrency`` workers sharing one
httpx connection pool: many requests in flight is what a batching server like vLLM
wants). Connection errors, timeouts, 429 and 5xx answers are retried by ``tenacity``
with exponential backoff and full jitter (a ``Retry-After`` header is honoured);
everything else that goes wrong ends in a ``TeacherError`` that says what the server did.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import tenacity

from .base import Completion, Message, SamplingParams, TeacherError, TeacherInfo

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 60.0
#: the longest backoff between two attempts (without a Retry-After header)
MAX_BACKOFF = 30.0


# --------------------------------------------------------------------------- pure helpers


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as is."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TeacherError(f"teacher URL {url!r}: expected http://host[:port][/v1]")
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError):
            return None
        secs = when - (time.time() if now is None else now)
    return max(0.0, min(MAX_RETRY_AFTER, secs))


def completion_body(model: str, prompt: str, params: SamplingParams, n: int) -> dict:
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    return _common(body, params, n)


def chat_body(model: str, messages: Sequence[Message], params: SamplingParams, n: int) -> dict:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    return _common(body, params, n)


def _common(body: dict, params: SamplingParams, n: int) -> dict:
    if n > 1:
        body["n"] = n
    if params.seed is not None:
        body["seed"] = params.seed
    if params.top_k is not None:
        body["top_k"] = params.top_k  # vLLM, llama.cpp server and TGI extensions
    if params.min_p is not None:
        body["min_p"] = params.min_p
    if params.stop:
        body["stop"] = list(params.stop)
    return body


def parse_choices(data: Any, kind: str, where: str) -> list[Completion]:
    """Completions from a /completions (kind "text") or /chat/completions (kind "chat") answer."""
    if not isinstance(data, dict):
        raise TeacherError(f"{where} answered with JSON that is not an object: {_snip(json.dumps(data))}")
    if "error" in data and "choices" not in data:
        raise TeacherError(f"{where} answered with an error: {_error_text(data)}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise TeacherError(f"{where} answered without 'choices': {_snip(json.dumps(data))}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    total_completion = int(usage.get("completion_tokens") or 0)
    ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    out = []
    for i, c in enumerate(ordered):
        if not isinstance(c, dict):
            raise TeacherError(f"{where} answered with a choice that is not an object: {_snip(json.dumps(c))}")
        if kind == "chat":
            msg = c.get("message")
            text = msg.get("content") if isinstance(msg, dict) else None
        else:
            text = c.get("text")
        if not isinstance(text, str):
            field = "message.content" if kind == "chat" else "text"
            raise TeacherError(f"{where} answered with a choice without '{field}': {_snip(json.dumps(c))}")
        # usage counts all choices together: share it out evenly
        share = total_completion // len(ordered) + (1 if i < total_completion % len(ordered) else 0)
        out.append(Completion(text, c.get("finish_reason") or "stop", prompt_tokens, share))
    return out


def _error_text(data: Any) -> str:
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)
    if err is not None:
        return str(err)
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return _snip(json.dumps(data))


def _snip(s: str, n: int = 200) -> str:
    s = s.replace("\n", " ")
    return s if len(s) <= n else s[:n] + "..."


def _reason(exc: BaseException) -> str:
    """'connection refused' from httpx's '[Errno 111] Connection refused'."""
    text = str(exc) or type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = text.split(":")[-1].strip() if "Errno" in text else text
    return text[:1].lower() + text[1:]


# --------------------------------------------------------------------------- the backend


class OpenAITeacher:
    """A teacher that is an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        transport: Any = None,
    ):
        import httpx

        self.base_url = normalize_base_url(base_url)
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.timeout = timeout
        self.concurrency = max(1, int(concurrency))
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            transport=transport,
        )
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="lab-ci-teacher")
        try:
            self.model = model or self._first_model()
        except BaseException:
            self.close()
            raise
        self.info = TeacherInfo(
            id=f"openai:{self.base_url}#{self.model}",
            name=self.model,
            details={"backend": "openai", "base_url": self.base_url, "concurrency": self.concurrency},
        )

    # ------------------------------------------------------------------ public API

    def complete(self, prompts: Sequence[str], params: SamplingParams, n: int = 1) -> list[list[Completion]]:
        return self._run(
            [(lambda p_, k, p=p: completion_body(self.model, p, p_, k)) for p in prompts],
            "completions",
            "text",
            params,
            n,
        )

    def chat(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams, n: int = 1
    ) -> list[list[Completion]]:
        return self._run(
            [(lambda p_, k, c=c: chat_body(self.model, c, p_, k)) for c in conversations],
            "chat/completions",
            "chat",
            params,
            n,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ internals

    def _first_model(self) -> str:
        data = self._request("GET", "models")
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list) or not models or not isinstance(models[0], dict) or not models[0].get("id"):
            raise TeacherError(
                f"{self.base_url}/models lists no models ({_snip(json.dumps(data))}); name one with model="
            )
        return str(models[0]["id"])

    def _run(self, makers: list, path: str, kind: str, params: SamplingParams, n: int) -> list[list[Completion]]:
        """One request per prompt (``makers[i](params, n)`` builds its body), all in flight
        together. With a seed, prompt i's samples are the sequences i*n .. i*n+n-1 of the
        call, seeded ``seed + sequence index`` as the local backend seeds them: identical
        prompts in one call (a set of samples) still get samples of their own."""
        if n < 1:
            raise TeacherError(f"n={n} must be >= 1")

        def seeded(first: int) -> SamplingParams:
            return params if params.seed is None else replace(params, seed=params.seed + first)

        def one(i: int, make) -> list[Completion]:
            got = parse_choices(self._request("POST", path, make(seeded(i * n), n)), kind, f"{self.base_url}/{path}")
            # A server that ignores n answers one choice: ask again for the rest.
            while len(got) < n:
                body = make(seeded(i * n + len(got)), 1)
                got += parse_choices(self._request("POST", path, body), kind, f"{self.base_url}/{path}")
            return got[:n]

        futures = [self._pool.submit(one, i, m) for i, m in enumerate(makers)]
        return [f.result() for f in futures]

    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        """One API call, retried by tenacity (see :func:`retrying`); the decoded JSON answer."""
        attempts = retrying(self.max_retries, self.backoff)
        try:
            return attempts(self._attempt, method, path, body)
        except _Retryable as e:
            tries = attempts.statistics.get("attempt_number", self.max_retries + 1)
            raise TeacherError(f"{e} (after {tries} attempt{'s' if tries > 1 else ''})") from None

    def _attempt(self, method: str, path: str, body: dict | None) -> Any:
        """One HTTP exchange: the decoded JSON answer, ``_Retryable`` for what a retry may
        cure, ``TeacherError`` for what it cannot."""
        import httpx

        url = f"{self.base_url}/{path}"
        try:
            resp = self._client.request(method, path, json=body)
        except httpx.ConnectError as e:
            raise _Retryable(f"cannot connect to {self.base_url}: {_reason(e)}") from None
        except httpx.TimeoutException:
            raise _Retryable(f"no answer from {url} within {self.timeout:g}s") from None
        except httpx.TransportError as e:
            raise _Retryable(f"connection to {self.base_url} failed: {_reason(e)}") from None
        if resp.status_code < 400:
            try:
                return resp.json()
            except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
                ctype = resp.headers.get("content-type", "no content-type")
                raise TeacherError(
                    f"{url} answered with non-JSON (HTTP {resp.status_code}, {ctype}): {_snip(resp.text)!r}"
                ) from None
        last = f"{url} answered HTTP {resp.status_code}: {_http_detail(resp)}"
        if resp.status_code not in RETRY_STATUS:
            hint = " (check LAB_CI_TEACHER_API_KEY)" if resp.status_code in (401, 403) else ""
            raise TeacherError(last + hint)
        raise _Retryable(last, parse_retry_after(resp.headers.get("retry-after")))


class _Retryable(Exception):
    """A failed attempt that another may cure; ``wait``: the server's Retry-After, if any."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


def retrying(max_retries: int, backoff: float, sleep=time.sleep) -> tenacity.Retrying:
    """The retry policy: up to ``max_retries`` more attempts after one that raised
    ``_Retryable``, each after the server's ``Retry-After`` when it sent one, else after
    exponential backoff with full jitter (uniform in 0..min(MAX_BACKOFF, backoff x 2^k)
    before retry k+1). The last failure is re-raised as it was."""
    exponential = tenacity.wait_random_exponential(multiplier=backoff, max=MAX_BACKOFF)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "wait", None)
        return after if after is not None else exponential(state)

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(0, int(max_retries)) + 1),
        wait=wait,
        retry=tenacity.retry_if_exception_type(_Retryable),
        sleep=sleep,
        reraise=True,
    )


def _http_detail(resp) -> str:
    try:
        return _error_text(resp.json())
    except ValueError:
        return _snip(resp.text) or resp.reason_phrase
