"""Crash-safe files for builds: atomic JSON, append-only JSONL, stage manifests.

A build can be killed at any instant. Every file it depends on to resume is either
written whole (temp file + fsync + rename, :mod:`lab_ci.train.files`) or appended line
by line with fsync, and every line carries enough metadata to drop a half-finished
unit on resume. A write that fails (a full disk) is a user error naming the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..train.files import atomic_file, os_error


@contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """An exclusive advisory lock on ``path`` (made if missing) while the block runs.
    Yields False instead of waiting when ``blocking`` is off and another holds it. The
    kernel drops it when the holder dies, even by SIGKILL: no stale lock to clean."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_json_atomic(path: Path, obj: Any) -> None:
    with atomic_file(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def append_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Append records, one JSON per line, and fsync before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with open(path, "a", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as e:  # a torn last line is skipped by read_jsonl
        raise os_error(e, path, "cannot write") from None
    return n


def read_jsonl(path: Path) -> Iterator[dict]:
    """Records of a JSONL file; a torn last line (a kill mid-write) is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn tail: never fsynced as a whole line
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue


def write_jsonl_atomic(path: Path, records: Iterable[dict]) -> str:
    """Write a whole JSONL file atomically; return its sha256."""
    h = hashlib.sha256()
    with atomic_file(path, "w") as fh:
        for r in records:
            line = json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
            h.update(line.encode("utf-8"))
            fh.write(line)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class StageManifest:
    """``<out>/<stage>/manifest.json``: a stage is done when its manifest says so for
    the same inputs hash. A rerun with other inputs redoes the stage."""

    def __init__(self, out: Path, stage: str):
        self.dir = out / stage
        self.path = self.dir / "manifest.json"

    def done(self, inputs: str) -> dict | None:
        m = read_json(self.path)
        if isinstance(m, dict) and m.get("complete") and m.get("inputs") == inputs:
            return m
        return None

    def finish(self, inputs: str, **fields: Any) -> dict:
        m = {"complete": True, "inputs": inputs, **fields}
        write_json_atomic(self.path, m)
        return m
