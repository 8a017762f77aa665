"""Leaves as files on disk: walking a taxonomy folder and reading one leaf.

Used when no revision is named (``lab-ci check`` in a working copy, pre-commit), and for
the head side of ``--base`` without ``--head`` (uncommitted and untracked changes).
Blob ids are computed as git would (:func:`~lab_ci.taxonomy.leaf.git_blob_id`), so results
cache the same way as leaves read from git objects.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import LabCIError
from .gitrepo import disk_kind
from .leaf import ATTRIBUTION, QNA, TAXONOMY_FOLDERS, LeafFile, git_blob_id, misnamed_leaf


def walk_leaves(root: Path, sub: str = "", folders: tuple[str, ...] = TAXONOMY_FOLDERS) -> list[str]:
    """Every ``qna.yaml`` (file, link, folder or nested repository) under ``root/sub``,
    and every misnamed leaf file in a taxonomy folder (``qna.yml``, ``movie_qna.yaml``),
    as taxonomy-relative posix paths, sorted. Hidden folders (``.git``, ``.venv``...)
    and nested repositories (submodules) are not entered."""
    # Plain strings, not Path objects: this runs once per folder of the taxonomy.
    top = os.fspath(root)
    start = os.path.join(top, sub) if sub else top
    cut = len(top.rstrip(os.sep)) + 1
    found: list[str] = []

    def onerror(e: OSError) -> None:
        raise LabCIError(f"cannot read folder {e.filename!r}: {e.strerror}")

    for dirpath, dirnames, filenames in os.walk(start, onerror=onerror):
        if dirpath != start and (".git" in dirnames or ".git" in filenames):
            dirnames[:] = []  # a nested repository (submodule): not part of this taxonomy's tree
            continue
        rel = dirpath[cut:].replace(os.sep, "/") if len(dirpath) >= cut else ""
        rel = rel + "/" if rel else ""
        if QNA in filenames or QNA in dirnames:
            found.append(rel + QNA)
        if rel:  # misnamed leaves live in a taxonomy folder, never at the top
            found.extend(rel + f for f in filenames if f != QNA and misnamed_leaf(rel + f, folders))
        # .git, .venv, .github...: hidden folders are not entered; a qna.yaml folder is a leaf
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != QNA)
    return sorted(found)


def _read(path: str | Path, max_bytes: int | None = None) -> tuple[bytes | None, bool]:
    """``(data, whole)``: the file's bytes, or only its first ``max_bytes + 1`` bytes
    (``whole`` False) when it is larger, so memory stays bounded and the checker can
    say "too large". ``data`` is None when the path is no longer a regular file (it
    changed under us): it is opened without following links and without blocking on
    a fifo, and checked again once open."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):  # turned into a link / a fifo with no writer
            return None, True
        raise LabCIError(f"cannot read {str(path)!r}: {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, True
        with os.fdopen(fd, "rb", closefd=False) as f:
            if max_bytes is None:
                return f.read(), True
            data = f.read(max_bytes + 1)
            return data, len(data) <= max_bytes
    except OSError as e:
        raise LabCIError(f"cannot read {str(path)!r}: {e.strerror}") from None
    finally:
        os.close(fd)


def _kind(path: str) -> str:
    """:func:`disk_kind` with the common case (a regular file) answered from one
    ``lstat`` on a string path."""
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            return "file"
    except OSError:
        pass
    return disk_kind(Path(path))


def read_leaf(
    root: Path,
    path: str,
    *,
    change: str = "checked",
    old_path: str | None = None,
    max_bytes: int | None = None,
) -> LeafFile:
    """The leaf at taxonomy-relative ``path`` as it is on disk, with its attribution.

    With ``max_bytes``, a larger ``qna.yaml`` or ``attribution.txt`` is read only up to
    ``max_bytes + 1`` bytes (a qna.yaml then has no blob id: it was not read whole).
    A fifo, socket or device is never opened: its ``kind`` says what it is."""
    if change == "deleted":
        return LeafFile(path=path, data=None, kind="missing", change="deleted", old_path=old_path)
    full = os.path.join(os.fspath(root), path)
    kind = _kind(full)
    data, whole = _read(full, max_bytes) if kind == "file" else (None, True)
    folder = os.path.dirname(full)
    attr_path = os.path.join(folder, ATTRIBUTION)
    attr_kind = _kind(attr_path) if kind != "missing" or os.path.isdir(folder) else "missing"
    attribution = _read(attr_path, max_bytes)[0] if attr_kind == "file" else None
    return LeafFile(
        path=path,
        data=data,
        kind=kind,
        blob_id=git_blob_id(data) if data is not None and whole else None,
        change=change,  # type: ignore[arg-type]
        old_path=old_path,
        attribution=attribution,
        attribution_kind=attr_kind,
    )


def to_taxonomy_path(root: Path, arg: str, cwd: Path | None = None) -> str:
    """A command-line PATH (relative to the current folder or to the taxonomy, or
    absolute) as a taxonomy-relative posix path; ``""`` is the taxonomy itself.
    Raises :class:`LabCIError` for a path outside the taxonomy."""
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        raise LabCIError(f"path {arg!r} is not valid UTF-8") from None
    cwd = cwd or Path.cwd()
    root_abs = root.resolve()
    p = Path(arg)
    candidates = [p] if p.is_absolute() else [cwd / p, root / p]
    chosen = None
    for c in candidates:
        if os.path.lexists(c):
            chosen = c
            break
    if chosen is None:
        # Not on disk (e.g. only in a revision): read it relative to the cwd when the
        # cwd is inside the taxonomy, else relative to the taxonomy.
        c = cwd / p
        chosen = c if _inside(_absnorm(c), root_abs) else root / p
    # Resolve the parent folders, never the last component (it may be a symlink leaf).
    full = _absnorm(chosen)
    full = full.parent.resolve() / full.name if full.name not in ("", ".", "..") else full.resolve()
    if not _inside(full, root_abs):
        raise LabCIError(f"path {arg!r} is outside the taxonomy {str(root_abs)!r}")
    rel = full.relative_to(root_abs).as_posix() if full != root_abs else ""
    if rel == ".git" or rel.startswith(".git/"):
        raise LabCIError(f"path {arg!r} is inside .git")
    return "" if rel == "." else rel


def _absnorm(p: Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(p)))


def _inside(p: Path, root: Path) -> bool:
    return p == root or root in p.parents
