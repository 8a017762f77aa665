"""A teacher behind any OpenAI-compatible server (vLLM, llama.cpp's server, TGI, ...).

``complete()`` posts to ``<base>/completions``, ``chat()`` to ``<base>/chat/completions``.
Requests run concurrently (a thread pool of ``concurrency`` workers sharing one
httpx connection pool: many requests in flight is what a batching server like vLLM
wants). Connection errors, timeouts, 429 and 5xx answers are retried with exponential
backoff and jitter (a ``Retry-After`` header is honoured); everything else that goes
wrong ends in a ``TeacherError`` that says what the server did.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import Completion, Message, SamplingParams, TeacherError, TeacherInfo

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 60.0


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


def backoff_delay(attempt: int, base: float, cap: float = 30.0, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter between 50% and 100% of base * 2**attempt."""
    d = min(cap, base * (2**attempt))
    return d * (0.5 + 0.5 * rng())


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
            [(lambda k, p=p: completion_body(self.model, p, params, k)) for p in prompts],
            "completions",
            "text",
            params,
            n,
        )

    def chat(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams, n: int = 1
    ) -> list[list[Completion]]:
        return self._run(
            [(lambda k, c=c: chat_body(self.model, c, params, k)) for c in conversations],
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
        if n < 1:
            raise TeacherError(f"n={n} must be >= 1")

        def one(make) -> list[Completion]:
            got = parse_choices(self._request("POST", path, make(n)), kind, f"{self.base_url}/{path}")
            # A server that ignores n answers one choice: ask again for the rest.
            extra_params = params
            k = 0
            while len(got) < n:
                k += 1
                if params.seed is not None:
                    from dataclasses import replace

                    extra_params = replace(params, seed=params.seed + k)
                body = make(1)
                if "seed" in body:
                    body["seed"] = extra_params.seed
                got += parse_choices(self._request("POST", path, body), kind, f"{self.base_url}/{path}")
            return got[:n]

        futures = [self._pool.submit(one, m) for m in makers]
        return [f.result() for f in futures]

    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        """One API call with retries; the decoded JSON answer."""
        import httpx

        url = f"{self.base_url}/{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                resp = self._client.request(method, path, json=body)
            except httpx.ConnectError as e:
                last = f"cannot connect to {self.base_url}: {_reason(e)}"
            except httpx.TimeoutException:
                last = f"no answer from {url} within {self.timeout:g}s"
            except httpx.TransportError as e:
                last = f"connection to {self.base_url} failed: {_reason(e)}"
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
                        ctype = resp.headers.get("content-type", "no content-type")
                        raise TeacherError(
                            f"{url} answered with non-JSON (HTTP {resp.status_code}, {ctype}): {_snip(resp.text)!r}"
                        ) from None
                detail = _http_detail(resp)
                last = f"{url} answered HTTP {resp.status_code}: {detail}"
                if resp.status_code not in RETRY_STATUS:
                    hint = " (check LAB_CI_TEACHER_API_KEY)" if resp.status_code in (401, 403) else ""
                    raise TeacherError(last + hint)
                wait = parse_retry_after(resp.headers.get("retry-after"))
            if attempt < self.max_retries:
                time.sleep(wait if wait is not None else backoff_delay(attempt, self.backoff))
        tries = self.max_retries + 1
        raise TeacherError(f"{last} (after {tries} attempt{'s' if tries > 1 else ''})")


def _http_detail(resp) -> str:
    try:
        return _error_text(resp.json())
    except ValueError:
        return _snip(resp.text) or resp.reason_phrase
