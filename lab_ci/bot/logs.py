"""Structured logs of the bot: one JSON object per line.

:class:`JsonFormatter` writes time, level, logger, the event name and safe fields;
:func:`log_event` adds fields, dropping any whose name looks secret (secret, token,
password, private key, authorization, signature, body, payload).
"""

from __future__ import annotations

import json
import logging

_SECRET_WORDS = ("secret", "token", "password", "private_key", "authorization", "signature", "body", "payload")


def _safe(name: str) -> bool:
    lowered = name.lower()
    return not any(w in lowered for w in _SECRET_WORDS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event/message and safe extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if _safe(k)})
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(out, default=str, separators=(",", ":"))


def log_event(logger: logging.Logger, message: str, level: int = logging.INFO, /, **fields) -> None:
    """Log ``message`` (an event name) with ``fields`` (secret-looking names dropped)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": {k: v for k, v in fields.items() if _safe(k)}})


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send the ``lab_ci`` and ``uvicorn`` loggers to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("lab_ci", "uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level)
        lg.propagate = False
