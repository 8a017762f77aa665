"""Pure webhook functions: signature verification, delivery parsing, staleness.

No I/O here; ``lab_ci.bot.app`` calls these on the raw request and maps each
:class:`WebhookError` to its HTTP status.

What "stale" can honestly mean for a GitHub webhook
---------------------------------------------------
GitHub signs only the body (``X-Hub-Signature-256`` = HMAC-SHA256 of the raw body with
the webhook secret); no header is signed and there is no signed request timestamp. So:

* ``X-GitHub-Delivery`` is not authenticated. Deduplicating on it stops GitHub's own
  redeliveries (which reuse the id), not an attacker replaying a captured body under a
  new id. The queue therefore also deduplicates on the SHA-256 of the signed body: a body
  already seen is a duplicate whatever delivery id it comes with (two genuine GitHub
  deliveries never have byte-identical bodies in practice: they carry distinct objects
  and ``updated_at`` times).
* Replays after the retention window (delivery ids and digests are kept
  ``LAB_CI_RETENTION_DAYS``) are stopped by an optional age check on the *signed* event
  time, :func:`event_time`: the newest timestamp of the event's own object
  (``pull_request.updated_at``, ``comment.updated_at``, ``review.submitted_at``,
  ``check_run``/``check_suite``/``workflow_run`` ``updated_at``/``completed_at``,
  ``repository.pushed_at`` for pushes...). ``LAB_CI_MAX_DELIVERY_AGE`` (seconds, off by
  default) rejects deliveries whose event time is older. Set it above 3 days (GitHub lets
  an operator redeliver for 3 days) when you enable it, e.g. 345600 (4 days). Events
  without such a timestamp (ping, installation...) are never called stale.
* ``X-GitHub-Hook-Installation-Target-ID`` is checked against the configured App id when
  both are present: a delivery signed with a shared secret but meant for another App is
  rejected (403).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SIGNATURE_HEADER = "x-hub-signature-256"
EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
HOOK_ID_HEADER = "x-github-hook-id"
TARGET_TYPE_HEADER = "x-github-hook-installation-target-type"
TARGET_ID_HEADER = "x-github-hook-installation-target-id"

_MAX_ID_LEN = 100


class WebhookError(Exception):
    """A rejected delivery; ``status`` is the HTTP answer, ``reason`` a metric label."""

    status = 400
    reason = "bad_request"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason:
            self.reason = reason


class BadDelivery(WebhookError):
    """Malformed headers or body (400)."""

    status = 400
    reason = "malformed"


class BadSignature(WebhookError):
    """Missing or wrong ``X-Hub-Signature-256`` (401)."""

    status = 401
    reason = "bad_signature"


class Forbidden(WebhookError):
    """Authentic but not for us or too old (403)."""

    status = 403
    reason = "forbidden"


class TooLarge(WebhookError):
    """Body over the configured limit (413)."""

    status = 413
    reason = "too_large"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One parsed webhook delivery. ``body`` is the raw (signed) bytes."""

    id: str
    event: str
    body: bytes
    payload: dict[str, Any]
    hook_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def installation_id(self) -> int | None:
        inst = self.payload.get("installation")
        if isinstance(inst, dict) and isinstance(inst.get("id"), int):
            return inst["id"]
        return None

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when ``header`` is ``sha256=<hex HMAC-SHA256(secret, body)>`` (constant time).

    A missing header, another algorithm or a malformed value is False.
    """
    if not header or not secret:
        return False
    algo, sep, digest = header.strip().partition("=")
    if not sep or algo.lower() != "sha256":
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), digest.strip().lower().encode("ascii", "replace"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts in tests may use GitHub's capitalisation
        for k, v in headers.items():
            if k.lower() == name:
                value = v
                break
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """Parse an (already authenticated) delivery; raises :class:`BadDelivery` (400)."""
    event = _header(headers, EVENT_HEADER)
    if not event:
        raise BadDelivery("missing X-GitHub-Event header", "missing_event")
    if len(event) > _MAX_ID_LEN or not event.replace("_", "").isalnum():
        raise BadDelivery(f"invalid X-GitHub-Event header {event[:40]!r}", "malformed")
    delivery_id = _header(headers, DELIVERY_HEADER)
    if not delivery_id:
        raise BadDelivery("missing X-GitHub-Delivery header", "missing_delivery")
    if len(delivery_id) > _MAX_ID_LEN or not all(c.isalnum() or c in "-_." for c in delivery_id):
        raise BadDelivery("invalid X-GitHub-Delivery header", "malformed")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadDelivery(f"body is not valid JSON: {e}", "malformed_json") from None
    except RecursionError:  # a signed body can still be hostile: [[[[...]]]] 1000+ deep
        raise BadDelivery("body is not valid JSON: nested too deep", "malformed_json") from None
    if not isinstance(payload, dict):
        raise BadDelivery("body is not a JSON object", "malformed_json")
    return Delivery(
        id=delivery_id,
        event=event,
        body=body,
        payload=payload,
        hook_id=_header(headers, HOOK_ID_HEADER),
        target_type=_header(headers, TARGET_TYPE_HEADER),
        target_id=_header(headers, TARGET_ID_HEADER),
    )


def check_target(delivery: Delivery, app_id: str | None) -> None:
    """Reject (403) an App delivery addressed to another App id."""
    if app_id and delivery.target_type == "integration" and delivery.target_id and delivery.target_id != str(app_id):
        raise Forbidden(
            f"delivery is for GitHub App {delivery.target_id}, this service is App {app_id}", "wrong_target"
        )


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):  # push events: repository.pushed_at is epoch seconds
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str) and value:
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    return None


# The signed timestamps that say when the event itself happened, per payload object.
_EVENT_TIME_FIELDS = (
    ("pull_request", ("updated_at", "closed_at")),
    ("comment", ("updated_at", "created_at")),
    ("review", ("submitted_at",)),
    ("issue", ("updated_at",)),
    ("check_run", ("completed_at", "started_at")),
    ("check_suite", ("updated_at",)),
    ("workflow_run", ("updated_at",)),
)


def event_time(event: str, payload: Mapping[str, Any]) -> datetime | None:
    """The newest signed timestamp of the event's own object, or None when it has none."""
    times: list[datetime] = []
    for obj_name, names in _EVENT_TIME_FIELDS:
        obj = payload.get(obj_name)
        if isinstance(obj, dict):
            times += [t for n in names if (t := _parse_time(obj.get(n)))]
    if event == "push":
        repo = payload.get("repository")
        if isinstance(repo, dict) and (t := _parse_time(repo.get("pushed_at"))):
            times.append(t)
    return max(times) if times else None


def check_age(delivery: Delivery, max_age: float, now: datetime | None = None) -> None:
    """Reject (403, reason ``stale``) a delivery whose event time is older than ``max_age`` s."""
    if not max_age or max_age <= 0:
        return
    when = event_time(delivery.event, delivery.payload)
    if when is None:
        return
    now = now or datetime.now(UTC)
    age = (now - when).total_seconds()
    if age > max_age:
        raise Forbidden(
            f"stale delivery: event time {when.isoformat()} is {age:.0f}s old (max {max_age:.0f}s)", "stale"
        )


def authenticate(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: bytes | None,
    app_id: str | None = None,
    max_age: float = 0.0,
    now: datetime | None = None,
) -> Delivery:
    """Every check of one delivery, in order: signature (401) when ``secret`` is set,
    headers and JSON (400), App target (403), age (403). Returns the parsed delivery."""
    if secret is not None:
        header = _header(headers, SIGNATURE_HEADER)
        if header is None:
            raise BadSignature("missing X-Hub-Signature-256 header", "missing_signature")
        if not verify_signature(secret, body, header):
            raise BadSignature("X-Hub-Signature-256 does not match the body", "bad_signature")
    delivery = parse_delivery(headers, body)
    check_target(delivery, app_id)
    check_age(delivery, max_age, now)
    return delivery
