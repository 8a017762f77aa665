"""lab-ci teacher stage: one ``Teacher`` interface, two backends chosen by a spec.

    from lab_ci.teacher import load_teacher, SamplingParams, Message
    teacher = load_teacher("models/teacher.gguf")            # local GGUF (llama.cpp)
    teacher = load_teacher("http://127.0.0.1:8000/v1")       # OpenAI-compatible server
    [[c]] = teacher.chat([[Message("user", "Hi")]], SamplingParams(max_tokens=64))

Environment variables: ``LAB_CI_TEACHER`` (the spec; read only by :func:`spec_from_env`,
which ``lab-ci preview``, ``lab-ci build`` and ``lab-ci serve`` all use),
``LAB_CI_TEACHER_API_KEY``, ``LAB_CI_TEACHER_MODEL``, ``LAB_CI_TEACHER_CONCURRENCY`` and
``LAB_CI_TEACHER_TIMEOUT`` (an OpenAI-compatible teacher's requests in flight and seconds
per request, when the caller sets none; the teacher service sets them for its jobs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import LabCIError
from .base import (
    LAB_ASSISTANT,
    LAB_EOS,
    LAB_SYSTEM,
    LAB_USER,
    Completion,
    Message,
    SamplingParams,
    Teacher,
    TeacherError,
    TeacherInfo,
)

ENV_SPEC = "LAB_CI_TEACHER"
ENV_API_KEY = "LAB_CI_TEACHER_API_KEY"
ENV_MODEL = "LAB_CI_TEACHER_MODEL"
ENV_CONCURRENCY = "LAB_CI_TEACHER_CONCURRENCY"
ENV_TIMEOUT = "LAB_CI_TEACHER_TIMEOUT"

__all__ = [
    "ENV_API_KEY",
    "ENV_CONCURRENCY",
    "ENV_MODEL",
    "ENV_SPEC",
    "ENV_TIMEOUT",
    "LAB_ASSISTANT",
    "LAB_EOS",
    "LAB_SYSTEM",
    "LAB_USER",
    "Completion",
    "Message",
    "SamplingParams",
    "Teacher",
    "TeacherError",
    "TeacherInfo",
    "load_teacher",
    "open_teacher",
    "default_teacher_spec",
    "spec_from_env",
    "teacher_from_env",
]


def spec_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The teacher spec in ``$LAB_CI_TEACHER`` (``env`` defaults to ``os.environ``), or
    None when it is unset or blank: the one place lab-ci reads that variable."""
    env = os.environ if env is None else env
    return (env.get(ENV_SPEC) or "").strip() or None


def load_teacher(
    spec: str,
    *,
    api_key: str | None = None,
    model: str | None = None,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    max_retries: int = 3,
    **kw,
) -> Teacher:
    """The teacher a spec names.

    ``spec`` is a path to a ``.gguf`` file (local llama.cpp backend; extra keywords:
    ``max_parallel``, ``n_gpu_layers``, ``n_ubatch``, ``flash_attn``, ``prefix_cache``,
    ``prompt_store_mb``: see ``LlamaCppTeacher``) or an
    ``http(s)://`` base URL of an OpenAI-compatible server (uses ``api_key``
    (default: ``$LAB_CI_TEACHER_API_KEY``), ``model`` (default: the first one
    ``/v1/models`` lists), ``concurrency`` (default: ``$LAB_CI_TEACHER_CONCURRENCY``,
    else 8), ``timeout`` (default: ``$LAB_CI_TEACHER_TIMEOUT``, else 120 seconds),
    ``max_retries``; extra keyword ``backoff``). Anything else raises ``TeacherError``
    saying why.
    """
    spec = (spec or "").strip()
    if not spec:
        raise TeacherError("no teacher given: pass a .gguf file or an http(s):// URL of an OpenAI-compatible server")
    if spec.startswith(("http://", "https://")):
        from .openai import OpenAITeacher

        allowed = {"backoff", "transport"}
        _reject_unknown(kw, allowed, "an OpenAI-compatible teacher")
        return OpenAITeacher(
            spec,
            api_key=api_key if api_key is not None else os.environ.get(ENV_API_KEY) or None,
            model=model or os.environ.get(ENV_MODEL) or None,
            concurrency=concurrency if concurrency is not None else _env_number(ENV_CONCURRENCY, int, 8, 1, 1024),
            timeout=timeout if timeout is not None else _env_number(ENV_TIMEOUT, float, 120.0, 1, 86400),
            max_retries=max_retries,
            **kw,
        )
    if "://" in spec:
        raise TeacherError(f"teacher {spec!r}: only http:// and https:// URLs are supported")
    path = Path(spec).expanduser()
    from .llamacpp import LlamaCppTeacher, check_gguf_file

    check_gguf_file(path)  # missing, a folder, or not GGUF: a clear message
    allowed = {
        "max_parallel",
        "n_gpu_layers",
        "n_ubatch",
        "flash_attn",
        "chat_format",
        "prefix_cache",
        "prompt_store_mb",
    }
    _reject_unknown(kw, allowed, "a GGUF teacher")
    return LlamaCppTeacher(path, n_ctx=n_ctx, n_threads=n_threads, **kw)


def teacher_from_env(spec: str | None = None, **kw) -> Teacher:
    """``load_teacher`` with the spec from the argument or ``$LAB_CI_TEACHER``."""
    spec = spec or spec_from_env()
    if not spec:
        raise TeacherError(f"no teacher given: pass --teacher or set {ENV_SPEC} (a .gguf file or an http(s):// URL)")
    return load_teacher(spec, **kw)


def _reject_unknown(kw: dict, allowed: set[str], what: str) -> None:
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise TeacherError(
            f"option(s) {', '.join(unknown)} do not apply to {what} (allowed: {', '.join(sorted(allowed))})"
        )


def open_teacher(spec: Teacher | str | Path) -> tuple[Teacher, bool]:
    """A teacher for ``spec`` and whether the caller owns it (and must close it): a
    teacher object is used as it is; a GGUF path or a server URL is loaded, and a spec
    that cannot be loaded is a :class:`lab_ci.errors.LabCIError` naming it."""
    if not isinstance(spec, (str, Path)):
        return spec, False
    try:
        return load_teacher(str(spec)), True
    except TeacherError as e:
        raise LabCIError(f"cannot load model {str(spec)!r}: {e}") from None


def _env_number(name: str, kind: type, default, lo, hi):
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise TeacherError(f"${name}={raw!r}: expected a number between {lo} and {hi}") from None
    if not lo <= value <= hi:
        raise TeacherError(f"${name}={raw!r}: expected a number between {lo} and {hi}")
    return value


#: The tiny teacher ``scripts/build_tiny_models.py`` builds, relative to the working folder.
DEFAULT_TEACHER = Path(".cache/models/teacher.gguf")


def default_teacher_spec(env: Mapping[str, str] | None = None) -> str:
    """The teacher a command uses when none is given: ``LAB_CI_TEACHER``, else the tiny
    teacher in ``.cache/models`` when it exists; else a :class:`LabCIError` saying how
    to give one."""
    if spec := spec_from_env(env):
        return spec
    if DEFAULT_TEACHER.is_file():
        return str(DEFAULT_TEACHER)
    raise LabCIError(
        "no teacher model: pass --teacher PATH.gguf or an http(s):// OpenAI-compatible URL, set "
        "LAB_CI_TEACHER, or build the tiny teacher with "
        "`python scripts/build_tiny_models.py --out .cache/models`"
    )
