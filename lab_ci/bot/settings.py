"""Every setting of ``lab-ci serve``, in one immutable object.

Each field of :class:`Settings` carries its environment variable, its default and a
one-line description (``field(metadata=...)``): :meth:`Settings.from_env` reads them,
``lab-ci serve`` options override them, and :func:`settings_fields` lists them for the
generated settings reference. Secrets (the webhook secret, the App's private key) are
excluded from ``repr`` and never logged: :meth:`Settings.describe` gives a loggable
summary that only says whether each secret is set.

``LAB_CI_TEACHER`` is read by :func:`lab_ci.teacher.spec_from_env`, the one reader of it
in lab-ci (``lab-ci preview`` and ``lab-ci build`` use it too).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lab_ci import teacher as teacher_env
from lab_ci.bot.config import TEACHER_KEY
from lab_ci.errors import LabCIError

DEFAULT_API_URL = "https://api.github.com"
GITHUB_MAX_PAYLOAD = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
SYNCHRONOUS_LEVELS = ("FULL", "NORMAL", "EXTRA")


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("is not a valid boolean (1/0, true/false, yes/no, on/off)")


def _teachers(raw: str) -> tuple[tuple[str, str], ...]:
    """``LAB_CI_TEACHERS``: a JSON object of teacher name -> spec (path or URL)."""
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and TEACHER_KEY.match(k) and isinstance(v, str) and v for k, v in data.items()
    ):
        raise ValueError(
            'must be a JSON object of name -> model spec, e.g. {"tiny": "/models/teacher.gguf"} (names: letters, digits, ._-)'
        )
    return tuple(sorted(data.items()))


def _command(raw: str) -> tuple[str, ...]:
    words = tuple(shlex.split(raw))
    if not words:
        raise ValueError("is an empty command")
    return words


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("is not a valid int") from None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("is not a valid float") from None


_PARSERS: dict[type, Callable[[str], Any]] = {bool: _bool, int: _int, float: _float, Path: Path}


def setting(
    default: Any = MISSING,
    *,
    env: str,
    help: str,
    parse: Callable[[str], Any] | None = None,
    read: Callable[[Mapping[str, str]], str | None] | None = None,
    secret: bool = False,
    doc_default: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A settings field: its environment variable ``env``, a one-line ``help``, how to
    ``parse`` the variable's text (default: by the default's type: bool, int, float,
    Path or str), and (rarely) a ``read`` function that fetches the raw value itself (for
    a variable another module owns)."""
    if parse is None:
        parse = _PARSERS.get(type(default), str)
    meta = {"env": env, "help": help, "parse": parse, "read": read, "secret": secret, "doc_default": doc_default}
    if default_factory is not None:
        return field(default_factory=default_factory, repr=not secret, metadata=meta)
    return field(default=default, repr=not secret, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Configuration of the bot: webhook service, queue, workers, GitHub side, job limits."""

    # -- the GitHub App --------------------------------------------------------------
    webhook_secret: bytes | None = setting(
        None,
        env="LAB_CI_WEBHOOK_SECRET",
        help="HMAC-SHA256 key of X-Hub-Signature-256; unset = signatures not checked (loopback only)",
        parse=str.encode,
        secret=True,
    )
    app_id: str | None = setting(
        None, env="LAB_CI_APP_ID", help="the App's id, also checked against X-GitHub-Hook-Installation-Target-ID"
    )
    private_key: str | None = setting(None, env="LAB_CI_PRIVATE_KEY", help="the App's PEM private key", secret=True)
    private_key_path: Path | None = setting(
        None, env="LAB_CI_PRIVATE_KEY_PATH", help="file holding the App's PEM private key", parse=Path
    )
    app_slug: str = setting("lab-ci", env="LAB_CI_APP_SLUG", help="the App's slug: the bot's comments are by SLUG[bot]")
    github_api_url: str = setting(
        DEFAULT_API_URL, env="LAB_CI_GITHUB_API_URL", help="REST API root (GitHub Enterprise: https://HOST/api/v3)"
    )
    github_timeout: int = setting(15, env="LAB_CI_GITHUB_TIMEOUT", help="seconds per GitHub API request")
    github_retries: int = setting(
        4, env="LAB_CI_GITHUB_RETRIES", help="retries of a GitHub API read (writes are retried by the job)"
    )
    git_url_template: str | None = setting(
        None,
        env="LAB_CI_GIT_URL",
        help="clone URL template, {repo} = owner/name, e.g. an internal mirror",
        doc_default="the event's clone_url",
    )

    # -- the service: queue, workers --------------------------------------------------
    data_dir: Path = setting(
        Path("lab-ci-data"), env="LAB_CI_DATA_DIR", help="queue, git mirrors, caches (a local disk)", parse=Path
    )
    db_path: Path | None = setting(
        None, env="LAB_CI_DB", help="SQLite queue file", parse=Path, doc_default="$LAB_CI_DATA_DIR/queue.db"
    )
    db_synchronous: str = setting(
        "FULL",
        env="LAB_CI_DB_SYNCHRONOUS",
        help="SQLite synchronous level for stored deliveries (FULL: fsync before answering 202)",
        parse=str.upper,
    )
    retention_days: float = setting(
        7.0, env="LAB_CI_RETENTION_DAYS", help="days finished jobs and delivery ids are kept"
    )
    max_delivery_age: float = setting(
        0.0,
        env="LAB_CI_MAX_DELIVERY_AGE",
        help="reject deliveries whose signed event time is older, in seconds (0 = off)",
    )
    max_body_bytes: int = setting(
        GITHUB_MAX_PAYLOAD, env="LAB_CI_MAX_BODY_BYTES", help="largest webhook body accepted (413 above)"
    )
    workers: int = setting(
        2, env="LAB_CI_WORKERS", help="worker threads that run any job, checks and previews included"
    )
    light_workers: int = setting(
        1,
        env="LAB_CI_LIGHT_WORKERS",
        help="extra worker threads that run only light jobs (deliveries, commands, builds)",
    )
    lease_seconds: float = setting(
        60.0, env="LAB_CI_LEASE_SECONDS", help="job lease, renewed every lease/3 while the job runs"
    )
    backoff_base: float = setting(
        10.0, env="LAB_CI_RETRY_BACKOFF", help="first retry delay of a failed job, doubled each attempt"
    )
    backoff_max: float = setting(900.0, env="LAB_CI_RETRY_BACKOFF_MAX", help="longest retry delay")

    # -- isolated job execution (work on untrusted input runs in a child process) ---------
    check_timeout: float = setting(120.0, env="LAB_CI_CHECK_TIMEOUT", help="wall-time limit of a check, in seconds")
    check_cpu_seconds: float = setting(
        60.0, env="LAB_CI_CHECK_CPU_SECONDS", help="CPU-time limit of a check, in seconds"
    )
    check_memory_mb: int = setting(2048, env="LAB_CI_CHECK_MEMORY_MB", help="address-space limit of a check, in MiB")
    preview_timeout: float = setting(
        1800.0, env="LAB_CI_PREVIEW_TIMEOUT", help="wall-time limit of a preview, in seconds"
    )
    preview_cpu_seconds: float = setting(
        7200.0,
        env="LAB_CI_PREVIEW_CPU_SECONDS",
        help="CPU-time limit of a preview, in seconds (all its threads)",
    )
    preview_memory_mb: int = setting(
        16384,
        env="LAB_CI_PREVIEW_MEMORY_MB",
        help="address-space limit of a preview, in MiB (the teacher is not in it: the bot serves it)",
    )
    job_nice: int = setting(
        10, env="LAB_CI_JOB_NICE", help="niceness of job processes (the webhook keeps the CPU first)"
    )

    check_documents: bool = setting(
        True,
        env="LAB_CI_CHECK_DOCUMENTS",
        help="fetch knowledge leaves' documents in the check (commit, readable files); 0 = offline rules only",
    )
    max_suggestions: int = setting(
        50,
        env="LAB_CI_MAX_SUGGESTIONS",
        help="most one-click fixes in the check's pull request review (0 = no review)",
    )

    # -- quotas -----------------------------------------------------------------------
    previews_per_pr_hour: int = setting(
        6,
        env="LAB_CI_PREVIEWS_PER_PR_HOUR",
        help="previews one pull request may get per hour (0 = no limit)",
    )
    previews_per_user_hour: int = setting(
        10,
        env="LAB_CI_PREVIEWS_PER_USER_HOUR",
        help="previews one user may cause per hour, over all pull requests (0 = no limit)",
    )
    max_queued_per_installation: int = setting(
        50,
        env="LAB_CI_MAX_QUEUED_PER_INSTALLATION",
        help="checks and previews one installation may have waiting (0 = no limit)",
    )

    # -- previews ---------------------------------------------------------------------
    teacher: str | None = setting(
        None,
        env="LAB_CI_TEACHER",
        help="default teacher: a name from LAB_CI_TEACHERS, or a spec (GGUF path, OpenAI-compatible URL)",
        read=teacher_env.spec_from_env,
    )
    teachers: tuple[tuple[str, str], ...] = setting(
        (),
        env="LAB_CI_TEACHERS",
        help='JSON allow-list {"name": "spec"}: the only teachers a repository may pick by name',
        parse=_teachers,
        doc_default="none",
    )
    preview_seed: int = setting(0, env="LAB_CI_PREVIEW_SEED", help="random seed of previews")
    preview_token_budget: int = setting(
        200_000,
        env="LAB_CI_PREVIEW_TOKEN_BUDGET",
        help="tokens one preview may have the teacher generate (its requests' max_tokens are reserved from it)",
    )
    teacher_parallel: int = setting(
        16,
        env="LAB_CI_TEACHER_PARALLEL",
        help="sequences the bot's GGUF teacher decodes in one batch, all previews' requests together",
    )
    teacher_prompt_store_mb: int = setting(
        1024,
        env="LAB_CI_TEACHER_PROMPT_STORE_MB",
        help="host memory, in MiB, that keeps the GGUF teacher's evaluated prompts for later previews (0 = off)",
    )

    # -- builds -------------------------------------------------------------------------
    allow_local_executor: bool = setting(
        False, env="LAB_CI_LOCAL_EXECUTOR", help="1 lets repositories choose executor: local"
    )
    build_command: tuple[str, ...] = setting(
        env="LAB_CI_BUILD_COMMAND",
        help="the local executor's build command",
        parse=_command,
        default_factory=lambda: (sys.executable, "-m", "lab_ci", "build"),
        doc_default="python -m lab_ci build",
    )

    def __post_init__(self) -> None:
        for name, low in (
            ("workers", 0),
            ("light_workers", 0),
            ("previews_per_pr_hour", 0),
            ("previews_per_user_hour", 0),
            ("max_queued_per_installation", 0),
            ("github_retries", 0),
            ("max_suggestions", 0),
            ("teacher_prompt_store_mb", 0),
        ):
            if getattr(self, name) < low:
                raise LabCIError(f"{_env(name)} must be >= {low}, got {getattr(self, name)}")
        for name in (
            "lease_seconds",
            "max_body_bytes",
            "github_timeout",
            "check_timeout",
            "check_cpu_seconds",
            "check_memory_mb",
            "preview_timeout",
            "preview_cpu_seconds",
            "preview_memory_mb",
            "preview_token_budget",
            "teacher_parallel",
        ):
            if getattr(self, name) <= 0:
                raise LabCIError(f"{_env(name)} must be > 0, got {getattr(self, name)}")
        if not -20 <= self.job_nice <= 19:
            raise LabCIError(f"{_env('job_nice')} must be from -20 to 19, got {self.job_nice}")
        if self.db_synchronous.upper() not in SYNCHRONOUS_LEVELS:
            raise LabCIError(f"{_env('db_synchronous')} must be FULL, NORMAL or EXTRA, got {self.db_synchronous!r}")

    @property
    def queue_path(self) -> Path:
        """The SQLite file of the durable queue."""
        return Path(self.db_path) if self.db_path else Path(self.data_dir) / "queue.db"

    @property
    def bot_login(self) -> str:
        """The App's user on GitHub, ``<slug>[bot]``."""
        return f"{self.app_slug}[bot]"

    def private_key_pem(self) -> str | None:
        """The App's private key: the inline value, else the file's content."""
        if self.private_key:
            return self.private_key
        if self.private_key_path:
            try:
                return Path(self.private_key_path).read_text()
            except OSError as e:
                raise LabCIError(f"cannot read private key {self.private_key_path}: {e.strerror}") from None
        return None

    def with_overrides(self, **changes) -> Settings:
        """A copy with the non-None ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def describe(self) -> dict:
        """A loggable summary: secrets reduced to ``"set"``/``"unset"``."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                out[f.name] = "set" if value else "unset"
            elif isinstance(value, Path):
                out[f.name] = str(value)
            elif isinstance(value, tuple):
                out[f.name] = [list(v) if isinstance(v, tuple) else v for v in value]
            else:
                out[f.name] = value
        out["queue_path"] = str(self.queue_path)
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from ``env`` (default ``os.environ``); ``overrides`` win when not None."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            meta = f.metadata
            raw = meta["read"](env) if meta.get("read") else env.get(meta["env"])
            if raw is None or not raw.strip():  # blank: unset
                continue
            try:
                values[f.name] = meta["parse"](raw)
            except ValueError as e:
                shown = "(secret)" if meta.get("secret") else repr(raw)
                raise LabCIError(f"{meta['env']}={shown} {e}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("webhook_secret"), str):
            values["webhook_secret"] = values["webhook_secret"].encode()
        return cls(**values)


def _env(name: str) -> str:
    return Settings.__dataclass_fields__[name].metadata["env"]


@dataclass(frozen=True)
class SettingField:
    """One row of the settings reference."""

    name: str
    env: str
    type: str
    default: str
    help: str
    secret: bool
    literal: bool = True  # ``default`` is the value itself (not a description of it)


def settings_fields() -> list[SettingField]:
    """Every setting with its environment variable, default and description, in the
    order of :class:`Settings` (the docs generate the settings reference from this)."""
    out = []
    for f in fields(Settings):
        meta = f.metadata
        value = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        literal = meta.get("doc_default") is None and value is not None
        if meta.get("doc_default") is not None:
            default = meta["doc_default"]
        else:
            default = "unset" if value is None else str(value)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out.append(SettingField(f.name, meta["env"], kind, default, meta["help"], bool(meta.get("secret")), literal))
    return out


def settings_markdown() -> str:
    """The settings as a Markdown table (variable, default, meaning), for the docs."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for f in settings_fields():
        default = "unset (secret)" if f.secret else (f"`{f.default}`" if f.literal else f.default)
        rows.append(f"| `{f.env}` | {default} | {f.help} |")
    return "\n".join(rows) + "\n"
