"""Isolated job execution: work on untrusted input runs in a child process with limits.

A pull request's files are strangers' input: a few hundred bytes of YAML can make a
parser or a validator run for minutes and grow past a gigabyte, and a document URL can
point anywhere. The bot therefore never checks or previews in its own process. A worker
thread calls :func:`run_isolated`, which

1. writes the request (JSON) into a fresh working folder;
2. starts ``python -m lab_ci.bot.isolation TARGET ...`` in its own session, with an
   environment that lacks the bot's secrets (webhook secret, App key);
3. the child, before it reads the request, lowers itself: ``RLIMIT_AS`` (address space),
   ``RLIMIT_CPU`` (CPU seconds; ``SIGXCPU``, then ``SIGKILL``), no core files, a
   niceness, and ``PR_SET_PDEATHSIG`` so it dies with the bot; then it runs
   ``TARGET(request) -> dict`` and writes the result (JSON);
4. the worker waits without holding the GIL, polls cancellation, and kills the child's
   whole process group at the wall-time limit (git and other grandchildren included).

A breached limit raises :class:`LimitExceeded` (a :class:`~lab_ci.bot.jobs.PermanentError`:
never retried) naming the limit and the setting it comes from; the handler turns it into
a failed check run. ``MemoryError`` in the child is the address-space limit; a child
killed by ``SIGXCPU`` (or by ``SIGKILL`` once its CPU time reached the limit) is the CPU
limit. Results and errors cross the boundary as JSON only: the parent never unpickles
anything a child that read hostile input produced.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from lab_ci.bot.jobs import PermanentError
from lab_ci.errors import LabCIError

#: The bot's own secrets: never in a job process's environment.
#: The bot's secrets no job process gets: the webhook secret, the App's key, and the
#: upstream teacher's API key and allow-list (a preview child reaches the teacher only
#: through the bot's teacher service, with a token of its own).
SECRET_ENV = (
    "LAB_CI_WEBHOOK_SECRET",
    "LAB_CI_PRIVATE_KEY",
    "LAB_CI_PRIVATE_KEY_PATH",
    "LAB_CI_TEACHER_API_KEY",
    "LAB_CI_TEACHERS",
)
#: The largest result a child may hand back.
MAX_RESULT_BYTES = 256 * 1024 * 1024
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    """The bounds of one isolated job. ``settings`` names the environment variable of
    each limit (``wall``, ``cpu``, ``memory``) for messages."""

    wall_seconds: float
    cpu_seconds: float
    memory_mb: int
    nice: int = 10
    settings: Mapping[str, str] = field(default_factory=dict)

    def describe(self, limit: str) -> str:
        """``"20 s"``, ``"60 s"`` or ``"300 MiB"`` for ``wall``, ``cpu`` or ``memory``."""
        if limit == "memory":
            return f"{self.memory_mb} MiB"
        seconds = self.wall_seconds if limit == "wall" else self.cpu_seconds
        return f"{seconds:g} s"


LIMIT_NAMES = {"wall": "wall-time", "cpu": "CPU-time", "memory": "memory"}


class LimitExceeded(PermanentError):
    """The child breached one of its :class:`Limits` (``limit``: wall, cpu or memory)."""

    def __init__(self, limit: str, limits: Limits, log_tail: str = ""):
        self.limit = limit
        self.name = LIMIT_NAMES[limit]
        self.amount = limits.describe(limit)
        self.setting = limits.settings.get(limit)
        self.log_tail = log_tail
        where = f" ({self.setting})" if self.setting else ""
        super().__init__(f"stopped at its {self.name} limit of {self.amount}{where}")


class JobFailed(LabCIError):
    """The work itself reported a user-facing error (a ``LabCIError`` in the child, e.g.
    an unknown revision): shown to the contributor like before isolation."""

    retryable = False


class JobCrashed(PermanentError):
    """The child died without a result (a crash, a signal, a bug): not retried."""


class Cancelled(Exception):
    """The job was cancelled while its child ran; the child is gone."""


def child_environment(base: Mapping[str, str] | None = None, grant: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a job process: the bot's, minus its secrets, plus what the job
    is granted (``grant``: a preview's own token for the teacher service), with lab_ci
    importable and glibc's per-thread malloc arenas capped (they reserve address space)."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in SECRET_ENV}
    env.update(grant or {})
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - chars * 4))
            return fh.read().decode("utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def run_isolated(
    target: str,
    request: dict,
    limits: Limits,
    *,
    workdir: Path,
    cancelled: Callable[[], bool] = lambda: False,
    env: Mapping[str, str] | None = None,
    grant: Mapping[str, str] | None = None,
    poll: float = 0.1,
    keep: bool = False,
) -> dict:
    """Run ``target`` (``"module:function"``, taking and returning a JSON-able dict) on
    ``request`` in a limited child process; its result, or an exception:
    :class:`LimitExceeded`, :class:`JobFailed`, :class:`JobCrashed`, :class:`Cancelled`.
    ``workdir`` (created, then removed unless ``keep``) is the child's working folder."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    request_path, result_path, log_path = workdir / "request.json", workdir / "result.json", workdir / "job.log"
    request_path.write_text(json.dumps(request))
    argv = [
        sys.executable,
        "-m",
        "lab_ci.bot.isolation",
        target,
        str(request_path),
        str(result_path),
        repr(float(limits.cpu_seconds)),
        str(int(limits.memory_mb)),
        str(int(limits.nice)),
        str(os.getpid()),
    ]
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=child_environment(env, grant),
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + limits.wall_seconds
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if cancelled():
                _kill_group(proc.pid)
                proc.wait()
                raise Cancelled()
            if time.monotonic() >= deadline:
                _kill_group(proc.pid)
                proc.wait()
                raise LimitExceeded("wall", limits, _tail(log_path))
            time.sleep(poll)
        _kill_group(proc.pid)  # grandchildren the job left behind
        cpu = usage.ru_utime + usage.ru_stime
        return _outcome(proc.returncode, cpu, limits, result_path, log_path)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _outcome(returncode: int, cpu: float, limits: Limits, result_path: Path, log_path: Path) -> dict:
    if returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_seconds - 0.5):
            raise LimitExceeded("cpu", limits, _tail(log_path))
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        raise JobCrashed(
            f"the job process died ({name}) after {cpu:.1f} s of CPU (memory limit {limits.describe('memory')})"
        )
    try:
        size = result_path.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise JobCrashed(f"the job's result is too large ({size} bytes)")
        out = json.loads(result_path.read_text())
    except FileNotFoundError:
        tail = _tail(log_path, 600).strip().splitlines()
        raise JobCrashed(
            f"the job process exited {returncode} without a result" + (f": {tail[-1]}" if tail else "")
        ) from None
    except ValueError as e:
        raise JobCrashed(f"the job's result is not valid JSON: {e}") from None
    if out.get("ok"):
        return out["result"]
    if out.get("limit") == "memory":
        raise LimitExceeded("memory", limits, _tail(log_path))
    if out.get("error") == "user":
        raise JobFailed(str(out.get("message", "")))
    raise JobCrashed(f"internal error in the job: {out.get('message', '')}"[:1000])


# -- the child ---------------------------------------------------------------------------
def _apply_limits(cpu_seconds: float, memory_mb: int, nice: int, parent: int) -> None:
    """Lower this process before it touches the request (it cannot raise them again)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the wall-time kill still applies
        pass
    if os.getppid() != parent:  # the bot died before the line above: do not run orphaned
        os._exit(70)
    memory = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, int(cpu_seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nice:
        os.nice(nice)


def _write(path: Path, out: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, path)


def _child(argv: list[str]) -> int:
    target, request_path, result_path, cpu, memory, nice, parent = argv
    _apply_limits(float(cpu), int(memory), int(nice), int(parent))
    module, _, name = target.partition(":")
    result = Path(result_path)
    try:
        fn = getattr(import_module(module), name)
        out = {"ok": True, "result": fn(json.loads(Path(request_path).read_text()))}
    except MemoryError:
        out = {"ok": False, "limit": "memory"}
    except LabCIError as e:
        out = {"ok": False, "error": "user", "message": str(e)}
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which decides
        out = {"ok": False, "error": "internal", "message": f"{type(e).__name__}: {e}"[:2000]}
    try:
        _write(result, out)
    except MemoryError:
        _write(result, {"ok": False, "limit": "memory"})
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(_child(sys.argv[1:]))
