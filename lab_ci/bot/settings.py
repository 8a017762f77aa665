"""Settings of ``lab-ci serve``, read from the environment (and overridden by CLI options).

Every setting has an environment variable (see :data:`ENV`); ``Settings.from_env()`` reads
them, and ``lab-ci serve`` options override them. Secrets (the webhook secret, the App's
private key) are excluded from ``repr`` and never logged: ``Settings.describe()`` gives a
loggable summary that only says whether each secret is set.

=================================  ===================================================
``LAB_CI_WEBHOOK_SECRET``          webhook secret (HMAC-SHA256 key); unset = signature
                                   checks disabled (only for local experiments)
``LAB_CI_APP_ID``                  the GitHub App's id (also checked against
                                   ``X-GitHub-Hook-Installation-Target-ID``)
``LAB_CI_PRIVATE_KEY``             the App's PEM private key (or ``_PATH`` to a file)
``LAB_CI_PRIVATE_KEY_PATH``        file holding the PEM private key
``LAB_CI_GITHUB_API_URL``          REST API root (default https://api.github.com)
``LAB_CI_DB``                      SQLite queue file (default ``$LAB_CI_DATA_DIR/queue.db``)
``LAB_CI_DATA_DIR``                mirrors, caches, queue (default ``./lab-ci-data``)
``LAB_CI_MAX_DELIVERY_AGE``        seconds; reject deliveries whose signed event time is
                                   older (0 = off, the default)
``LAB_CI_MAX_BODY_BYTES``          largest accepted body (default 25 MiB, GitHub's cap)
``LAB_CI_WORKERS``                 job worker threads (default 2)
``LAB_CI_LEASE_SECONDS``           job lease, extended by a heartbeat (default 60)
``LAB_CI_DB_SYNCHRONOUS``          SQLite ``synchronous`` pragma: FULL (default) or NORMAL
``LAB_CI_RETENTION_DAYS``          days finished jobs and delivery ids are kept (default 7)
=================================  ===================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..errors import LabCIError

DEFAULT_API_URL = "https://api.github.com"
GITHUB_MAX_PAYLOAD = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB

ENV = {
    "webhook_secret": "LAB_CI_WEBHOOK_SECRET",
    "app_id": "LAB_CI_APP_ID",
    "private_key": "LAB_CI_PRIVATE_KEY",
    "private_key_path": "LAB_CI_PRIVATE_KEY_PATH",
    "github_api_url": "LAB_CI_GITHUB_API_URL",
    "db_path": "LAB_CI_DB",
    "data_dir": "LAB_CI_DATA_DIR",
    "max_delivery_age": "LAB_CI_MAX_DELIVERY_AGE",
    "max_body_bytes": "LAB_CI_MAX_BODY_BYTES",
    "workers": "LAB_CI_WORKERS",
    "lease_seconds": "LAB_CI_LEASE_SECONDS",
    "db_synchronous": "LAB_CI_DB_SYNCHRONOUS",
    "retention_days": "LAB_CI_RETENTION_DAYS",
}

_SECRETS = frozenset({"webhook_secret", "private_key"})


@dataclass(frozen=True)
class Settings:
    """Configuration of the webhook service and its workers (immutable)."""

    webhook_secret: bytes | None = field(default=None, repr=False)
    app_id: str | None = None
    private_key: str | None = field(default=None, repr=False)
    private_key_path: Path | None = None
    github_api_url: str = DEFAULT_API_URL
    data_dir: Path = Path("lab-ci-data")
    db_path: Path | None = None  # None: data_dir / "queue.db"
    max_delivery_age: float = 0.0  # seconds; 0 = no staleness check
    max_body_bytes: int = GITHUB_MAX_PAYLOAD
    workers: int = 2
    lease_seconds: float = 60.0
    db_synchronous: str = "FULL"
    retention_days: float = 7.0
    # Backoff of failed jobs: base * 2**(attempt-1), capped (seconds).
    backoff_base: float = 10.0
    backoff_max: float = 900.0

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise LabCIError(f"workers must be >= 0, got {self.workers}")
        if self.lease_seconds <= 0:
            raise LabCIError(f"lease seconds must be > 0, got {self.lease_seconds}")
        if self.max_body_bytes <= 0:
            raise LabCIError(f"max body bytes must be > 0, got {self.max_body_bytes}")
        if self.db_synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise LabCIError(f"{ENV['db_synchronous']} must be FULL, NORMAL or EXTRA, got {self.db_synchronous!r}")

    @property
    def queue_path(self) -> Path:
        """The SQLite file of the durable queue."""
        return Path(self.db_path) if self.db_path else Path(self.data_dir) / "queue.db"

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
            if f.name in _SECRETS:
                out[f.name] = "set" if value else "unset"
            else:
                out[f.name] = str(value) if isinstance(value, Path) else value
        out["queue_path"] = str(self.queue_path)
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from ``env`` (default ``os.environ``); ``overrides`` win when not None."""
        env = os.environ if env is None else env
        values: dict = {}

        def get(name: str) -> str | None:
            raw = env.get(ENV[name])
            return raw if raw not in (None, "") else None

        def number(name: str, kind):
            raw = get(name)
            if raw is None:
                return None
            try:
                return kind(raw)
            except ValueError:
                raise LabCIError(f"{ENV[name]}={raw!r} is not a valid {kind.__name__}") from None

        if (secret := get("webhook_secret")) is not None:
            values["webhook_secret"] = secret.encode()
        for name in ("app_id", "private_key", "github_api_url", "db_synchronous"):
            if (raw := get(name)) is not None:
                values[name] = raw
        for name in ("private_key_path", "db_path", "data_dir"):
            if (raw := get(name)) is not None:
                values[name] = Path(raw)
        for name, kind in (
            ("max_delivery_age", float),
            ("max_body_bytes", int),
            ("workers", int),
            ("lease_seconds", float),
            ("retention_days", float),
        ):
            if (v := number(name, kind)) is not None:
                values[name] = v
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("webhook_secret"), str):
            values["webhook_secret"] = values["webhook_secret"].encode()
        return cls(**values)
