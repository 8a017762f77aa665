"""A disk cache of check results, so an unchanged leaf is never checked twice.

One small JSON file per result under ``<dir>/check/<k[:2]>/<k>.json``. The key ``k``
hashes everything a result depends on: the qna.yaml blob id, the attribution.txt blob
id (or its absence), the path, the options, and a fingerprint of the checker itself
(lab-ci version, the schema files, the checker's source, the yamllint / jsonschema /
PyYAML versions). Writes go to a temporary file renamed into place, so concurrent
runs never see half a file; an unreadable or corrupt entry is a miss. A cache that
cannot be written (read-only disk) only costs speed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

from lab_ci.check.diagnostics import Diagnostic, FileResult
from lab_ci.check.options import CheckOptions
from lab_ci.taxonomy.leaf import LeafFile, git_blob_id

FORMAT = "check-v2"


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "lab-ci"


@functools.cache
def checker_fingerprint() -> str:
    """Changes whenever lab-ci's checker, its schemas or its libraries change."""
    import lab_ci
    from lab_ci.check import schema as _schema

    h = hashlib.sha256()
    h.update(f"lab-ci {lab_ci.__version__}\0{FORMAT}\0".encode())
    for dist in ("yamllint", "jsonschema", "PyYAML", "referencing"):
        try:
            h.update(f"{dist} {metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist} -\0".encode())
    root = _schema.schema_root()
    for vdir in sorted((p for p in root.iterdir() if p.name.startswith("v")), key=lambda p: p.name):
        for f in sorted(vdir.iterdir(), key=lambda p: p.name):
            if f.name.endswith(".json"):
                h.update(f"{vdir.name}/{f.name}\0".encode())
                h.update(f.read_bytes())
    here = Path(__file__).resolve().parent
    reader = here.parent / "taxonomy" / "yamlsrc.py"  # the bounded leaf reader
    for f in sorted([*here.glob("*.py"), *here.glob("rules/*.py"), reader]):
        h.update(f.name.encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=16)
def _options_key(options: CheckOptions) -> str:
    return options.cache_key()


def cache_key(leaf: LeafFile, options: CheckOptions) -> str:
    blob = leaf.blob_id or (git_blob_id(leaf.data) if leaf.data is not None else "-")
    if leaf.attribution is not None:
        attribution = git_blob_id(leaf.attribution)
    else:
        attribution = "none:" + leaf.attribution_kind
    parts = [checker_fingerprint(), _options_key(options), leaf.path, leaf.kind, blob, attribution]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


class ResultCache:
    """Results of ``check_leaf`` on disk (default ``$XDG_CACHE_HOME/lab-ci``)."""

    def __init__(self, dir: Path | None = None):  # noqa: A002 - public name
        self.dir = Path(dir) if dir is not None else default_dir()
        self.root = self.dir / "check"
        self._root = os.fspath(self.root)
        self.hits = 0
        self.misses = 0

    def _file(self, key: str) -> str:
        # a string path: this runs once per leaf
        return os.path.join(self._root, key[:2], key + ".json")

    def get(self, leaf: LeafFile, options: CheckOptions) -> FileResult | None:
        key = cache_key(leaf, options)
        try:
            with open(self._file(key), "rb") as fh:
                entry = json.loads(fh.read())
            if entry.get("key") != key:
                raise ValueError("key mismatch")
            diags = [Diagnostic.from_dict(d) for d in entry["diagnostics"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.misses += 1
            return None
        self.hits += 1
        return FileResult(
            path=leaf.path, diagnostics=diags, change=leaf.change, old_path=leaf.old_path, blob_id=leaf.blob_id
        )

    def put(self, leaf: LeafFile, options: CheckOptions, result: FileResult) -> None:
        if leaf.change == "deleted":
            return
        key = cache_key(leaf, options)
        path = Path(self._file(key))
        payload = json.dumps(
            {"key": key, "path": leaf.path, "diagnostics": [d.to_dict() for d in result.diagnostics]},
            separators=(",", ":"),
        ).encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except OSError:
            pass  # an unwritable cache only costs speed
