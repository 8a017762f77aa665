"""Crash-safe files for builds: atomic JSON, append-only JSONL, stage manifests.

A build can be killed at any instant. Every file it depends on to resume is either
written whole (temp file + fsync + rename) or appended line by line with fsync, and
every line carries enough metadata to drop a half-finished unit on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mode of the files written here: what ``open()`` would give (mkstemp's is 0600)
_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def _atomic_text(path: Path) -> Iterator[TextIO]:
    """A text file that replaces ``path`` whole on success (temp file, fsync, rename)
    and leaves nothing behind on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    with _atomic_text(path) as fh:
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
    with open(path, "a", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
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
    with _atomic_text(path) as fh:
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
