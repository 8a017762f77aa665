"""The evaluation cache: what was computed once is never computed again.

Layout under the cache folder (``<out>/cache`` or ``--cache-dir``)::

    mcq/<key>.json             a knowledge leaf's question set (lab_ci.eval.mcq.mcq_key)
    answers/<model>.jsonl      a model's answers to seed questions, one line per answer
    loglik/<model>.jsonl       a model's option scores, one line per option
    judge/<judge>.jsonl        the judge's ratings, one line per judged answer

Every JSONL line is ``{"k": key, "v": value}``, appended and fsynced batch by batch as
the work finishes, so a killed evaluation started again recomputes only what was not
written. A torn last line (a kill mid-write) is ignored. Keys are hashes of everything
that decides the value (the model's fingerprint, the prompt, the parameters).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def write_text(path: Path, text: str) -> None:
    """Write text whole or not at all (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


class KeyedLog:
    """A JSONL file of ``{"k": key, "v": value}`` lines read into a dict; ``put_many``
    appends and fsyncs. Later lines win."""

    def __init__(self, path: Path):
        self.path = path
        self.values: dict[str, Any] = {}
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if not line.endswith("\n"):
                        break  # torn tail: never fsynced whole
                    try:
                        rec = json.loads(line)
                        self.values[rec["k"]] = rec["v"]
                    except (ValueError, KeyError, TypeError):
                        continue

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def put_many(self, items: Iterable[tuple[str, Any]]) -> int:
        items = list(items)
        if not items:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for k, v in items:
                fh.write(json.dumps({"k": k, "v": v}, ensure_ascii=False, sort_keys=True) + "\n")
                self.values[k] = v
            fh.flush()
            os.fsync(fh.fileno())
        return len(items)


class EvalCache:
    """The cache folders; ``None`` root: nothing is kept (every value computed)."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None
        self._logs: dict[tuple[str, str], KeyedLog] = {}

    def log(self, kind: str, name: str) -> KeyedLog:
        key = (kind, name)
        if key not in self._logs:
            self._logs[key] = KeyedLog(self.root / kind / f"{name}.jsonl") if self.root else _MemoryLog()
        return self._logs[key]

    def mcq_path(self, key: str) -> Path | None:
        return self.root / "mcq" / f"{key}.json" if self.root else None


class _MemoryLog(KeyedLog):
    def __init__(self):
        self.path = Path()
        self.values = {}

    def put_many(self, items):
        items = list(items)
        self.values.update(items)
        return len(items)
