"""Files written whole or not at all, and the OS errors of writing them as user errors.

Training runs, builds and exports write to folders the user chose, on disks that fill
up. The writers here:

* write to ``NAME.tmp`` beside the target and rename it over the target only when it
  is complete (flushed and fsynced), so a reader, or a run resumed after a kill, sees
  the old file or the new one and never a part of one. The temporary name is fixed
  (one writer per path: ``lab-ci build`` holds a lock on its out folder and on each
  cache entry it generates), so a leftover of a kill is replaced by the next write;
* remove their temporary file or folder when the write fails (disk full, a quota, a
  file size limit, a signal), so a full disk is not left fuller;
* turn the failure into a :class:`~lab_ci.errors.LabCIError` that names the path and
  the cause (``out/train/phase-1/checkpoints/latest.pt: cannot write: No space left on
  device (ENOSPC)``). Some writers hide the cause (torch's zip writer reports
  "unexpected pos", safetensors wraps it in its own error, a short write has no errno):
  :func:`write_cause` finds it again.

A folder is replaced with :func:`replace_dir` (rename the old one aside, rename the new
one in, delete the old one), so a complete folder exists on disk at every instant;
:func:`recover_dir` finishes or undoes a replacement that a kill interrupted.

:func:`failpoint` is the hook the crash tests use to SIGKILL a process at an exact step
(``LAB_CI_FAILPOINTS=release.after-aside``); it does nothing otherwise.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lab_ci.errors import LabCIError

#: the environment variable that names the failpoints to trigger (comma-separated)
FAILPOINTS_ENV = "LAB_CI_FAILPOINTS"


def failpoint(name: str) -> None:
    """SIGKILL this process here if ``$LAB_CI_FAILPOINTS`` names ``name`` (crash tests)."""
    wanted = os.environ.get(FAILPOINTS_ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)


def describe(exc: OSError) -> str:
    """``No space left on device (ENOSPC)``: the system's words and the errno's name."""
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
    return f"{text} ({name})" if name else text


def os_error(exc: OSError, path: Path | str | None = None, action: str | None = None) -> LabCIError:
    """A user error for ``exc``: ``PATH: ACTION: cause`` (the path defaults to the error's own)."""
    where = path if path is not None else (exc.filename or "")
    parts = [str(where)] if where != "" else []
    if action:
        parts.append(action)
    parts.append(describe(exc))
    return LabCIError(": ".join(parts))


_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def write_cause(exc: BaseException, probe: Path) -> OSError | None:
    """The OSError behind a failed write, or None when it was no I/O failure.

    ``exc`` itself when it carries an errno; the errno quoted by a Rust library
    (safetensors: ``... (os error 28)``); else the errno of writing one more byte to
    ``probe`` (the file being written, or a new file in the folder being written): a
    write that failed for lack of space or a size limit fails again the same way.
    """
    if isinstance(exc, OSError) and exc.errno:
        return exc
    m = _RUST_OS_ERROR.search(str(exc))
    if m:
        code = int(m.group(1))
        return OSError(code, os.strerror(code))
    if not isinstance(exc, (OSError, RuntimeError)) and "safetensor" not in type(exc).__name__.lower():
        return None
    try:
        with open(probe, "ab", buffering=0) as fh:
            fh.write(b"\0")
    except OSError as e:
        return e
    return None


def remove(path: Path) -> None:
    """Delete a file or a folder tree if it is there."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass


def fsync_dir(path: Path) -> None:
    """Make the renames and creations inside ``path`` durable (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path | str) -> None:
    """Flush a written file to the disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file and folder below ``path`` (before it is renamed into place)."""
    for root, _dirs, names in os.walk(path):
        for name in names:
            fsync_file(os.path.join(root, name))
        fsync_dir(Path(root))


@contextmanager
def failing_write(target: Path, tmp: Path, action: str = "cannot write") -> Iterator[None]:
    """Run a write into ``tmp`` (a file or a folder) for ``target``: on failure, delete
    ``tmp`` and raise a user error naming ``target`` and the cause (an error with no I/O
    cause, a bug, goes on unchanged)."""
    try:
        yield
    except LabCIError:
        remove(tmp)
        raise
    except BaseException as exc:
        probe = tmp / ".lab-ci-probe" if tmp.is_dir() else tmp
        cause = write_cause(exc, probe) if isinstance(exc, Exception) else None
        remove(tmp)
        if cause is None:
            raise
        names = [Path(n) for n in (getattr(exc, "filename2", None), getattr(exc, "filename", None)) if n]
        inside = next((n for n in names if n != tmp and n.is_relative_to(tmp)), None)
        if inside is not None:  # a file inside the folder being written (a copy's target)
            raise os_error(cause, path=target / inside.relative_to(tmp), action=action) from None
        if names and names[0] != tmp:  # another file: one being read
            raise os_error(cause, path=names[0]) from None
        raise os_error(cause, target, action) from None


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise os_error(e, action="cannot create the folder") from None


@contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[BinaryIO]:
    """A file object whose content replaces ``path`` whole once the block ends."""
    path = Path(path)
    _mkdir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    with failing_write(path, tmp):
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def append_line(path: Path, line: str) -> None:
    """Append one line (a log that is read back line by line, a torn tail skipped)."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError as e:  # no probing here: this file is kept, a probe byte would stay in it
        raise os_error(e, path, "cannot write") from None


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_dir(path: Path, failpoints: str | None = None) -> Iterator[Path]:
    """A fresh folder ``PATH.tmp`` to fill; once the block ends it replaces ``path``
    (:func:`replace_dir`). On failure it is deleted and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    remove(tmp)
    _mkdir(tmp)
    with failing_write(path, tmp):
        yield tmp
        fsync_tree(tmp)
    replace_dir(tmp, path, failpoints)


def replace_dir(new: Path, path: Path, failpoints: str | None = None) -> None:
    """Put the complete folder ``new`` in the place of ``path``, keeping a complete folder
    on disk at every instant: rename ``path`` aside to ``PATH.old``, rename ``new`` in,
    delete ``PATH.old``. A kill in between leaves ``PATH.old`` for :func:`recover_dir`.
    ``failpoints``: the prefix of this replacement's failpoint names (crash tests)."""
    old = path.with_name(path.name + ".old")
    fp = (lambda step: failpoint(f"{failpoints}.{step}")) if failpoints else (lambda step: None)
    remove(old)  # a leftover of an earlier replacement whose new folder was in place
    fp("before-swap")
    try:
        if path.exists():
            os.replace(path, old)
            fsync_dir(path.parent)
            fp("after-aside")
        os.replace(new, path)
        fsync_dir(path.parent)
    except OSError as e:
        if old.exists() and not path.exists():
            os.replace(old, path)  # put the old folder back
        raise os_error(e, path, "cannot replace the folder") from None
    fp("after-in")
    remove(old)


def recover_dir(path: Path) -> str | None:
    """Finish or undo a :func:`replace_dir` that a kill interrupted; say what was done.

    ``PATH.old`` beside ``PATH``: the new folder was in place, the old one half deleted:
    delete it. ``PATH.old`` alone: the old folder was set aside and the new one never
    renamed in: put the old one back (it is complete; the new one is made again).
    ``PATH.tmp``: a folder being written when the kill came: delete it.
    """
    old = path.with_name(path.name + ".old")
    tmp = path.with_name(path.name + ".tmp")
    did = None
    if old.exists():
        if path.exists():
            remove(old)
            did = f"removed {old.name}, left by an interrupted replacement of {path.name}"
        else:
            os.replace(old, path)
            fsync_dir(path.parent)
            did = f"put back {path.name} from {old.name} (its replacement was interrupted)"
    if tmp.exists():
        remove(tmp)
        did = did or f"removed {tmp.name}, left by an interrupted write"
    return did


def writable_dir(path: Path, what: str) -> Path:
    """``path`` as a folder this process can write in (made if missing), or a user error
    that names ``what`` (the option), the path and the cause."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LabCIError(f"{what} {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LabCIError(f"{what} {path}: cannot create the folder: {describe(e)}") from None
    probe = path / f".lab-ci-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0")
    except OSError as e:
        raise LabCIError(f"{what} {path}: cannot write in the folder: {describe(e)}") from None
    finally:
        probe.unlink(missing_ok=True)
    return path
