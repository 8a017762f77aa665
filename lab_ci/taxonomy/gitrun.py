"""Run git for all of lab_ci: one environment policy, one time bound, one output bound,
one set of typed errors.

Every git process lab_ci starts goes through :class:`GitRunner` (the taxonomy reader,
the bot's mirrors, knowledge-document fetches). A runner has a *profile*:

``local``
    A repository on the user's own disk, read by the CLI (the taxonomy being checked,
    a trusted document mirror). The user's system and global git configuration still
    apply (a working-tree snapshot must hash files exactly as their ``git add`` would:
    ``core.autocrlf``, clean filters; ``safe.directory`` decides ownership as it does
    for git itself), but every ``GIT_*`` variable that would redirect git to another
    repository, index or object store, or inject configuration, is dropped.
``isolated``
    Anything that may touch the network or a stranger's data (the bot's mirrors,
    document fetches). The environment is built from nothing: ``PATH``, ``LC_ALL=C``,
    ``HOME=/nonexistent`` (no ``~/.gitconfig``, no ``~/.netrc`` that curl would read),
    no system or global configuration, no proxy variables (a proxy is used only when
    the caller passes one in ``config``), no ``GIT_SSL_NO_VERIFY`` and friends.

Both profiles run git with: no terminal prompt, no askpass, no credential helper, no
hooks (``core.hooksPath=/dev/null``), no fsmonitor, and only the transport protocols
the caller names (``protocol.allow=never`` otherwise). Configuration travels through
``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``, never the command
line, so a secret in it (an ``http.extraHeader``) is not visible in ``ps``.

Each process runs in its own session and is killed with its children (``git fetch``
starts ``git-remote-https`` and ``git index-pack``) when it outlives its time limit,
prints more than its output limit, or a ``watch`` callback says stop (the document
fetcher uses it to bound what a fetch writes to disk). Failures raise
:class:`GitError`: ``category`` is a short text safe to show anyone (``timed out``,
``not found``, ...), ``detail`` is git's own words for the logs, with secrets
redacted.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..errors import LabCIError

LOCAL = "local"
ISOLATED = "isolated"
PROFILES = (LOCAL, ISOLATED)

#: Default per-process limits (a caller may pass tighter ones per call).
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024
STDERR_KEEP = 64 * 1024  # the tail of stderr kept for errors and logs

# -- error categories: short, stable, safe to show to whoever caused the call ----------
TIMED_OUT = "timed out"
OUTPUT_TOO_LARGE = "output too large"
TOO_LARGE = "too large"  # a watch callback's verdict: too much written to disk
GIT_MISSING = "git is not installed"
NOT_A_REPOSITORY = "not a git repository"
UNSAFE_OWNER = "repository owned by another user"
NOT_FOUND = "not found"
COMMIT_NOT_FOUND = "commit not found"
HOST_NOT_FOUND = "host not found"
CONNECTION_FAILED = "connection failed"
TLS_FAILED = "TLS verification failed"
REDIRECTED = "redirected"
PROTOCOL_NOT_ALLOWED = "protocol not allowed"
FAILED = "git failed"

#: git's (LC_ALL=C) messages and the category each means, first match wins. The text
#: comes from git and libcurl (OpenSSL or GnuTLS builds).
_STDERR_CATEGORIES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), c)
    for p, c in (
        (r"dubious ownership|unsafe repository", UNSAFE_OWNER),
        (r"not a git repository", NOT_A_REPOSITORY),
        (r"transport '[^']*' not allowed|unsupported protocol", PROTOCOL_NOT_ALLOWED),
        (
            r"could not resolve (host|proxy)|name or service not known|temporary failure in name resolution",
            HOST_NOT_FOUND,
        ),
        (r"timed out|operation too slow|timeout was reached", TIMED_OUT),
        (r"returned error: 30[12378]|redirect", REDIRECTED),
        (r"certificate|\bssl\b|ssl_|\btls\b|gnutls|handshake", TLS_FAILED),
        (
            r"failed to connect|couldn't connect|connection refused|connection reset|empty reply|recv failure"
            r"|send failure|network is unreachable|no route to host|connection was reset|early eof",
            CONNECTION_FAILED,
        ),
        (
            r"not our ref|couldn't find remote ref|no such remote ref|unadvertised object|bad object"
            r"|invalid (object|revision)|unknown revision|needed a single revision|not a valid object",
            COMMIT_NOT_FOUND,
        ),
        (
            r"repository '[^']*' not found|returned error: (401|403|404|410)|could not read (username|password)"
            r"|authentication failed|does not appear to be a git repository|could not read from remote",
            NOT_FOUND,
        ),
    )
)


def classify_stderr(stderr: str) -> str:
    """The category of a failed git process from its standard error (``FAILED`` when
    nothing known matches)."""
    for pattern, category in _STDERR_CATEGORIES:
        if pattern.search(stderr):
            return category
    return FAILED


class GitError(LabCIError):
    """A git process failed. ``category`` is safe to show to anyone; ``detail`` (git's
    last lines, secrets redacted) belongs in logs and in messages to the user who owns
    the repository. ``str()`` is ``git <subcommand> failed: <detail or category>``."""

    def __init__(self, category: str, detail: str = "", *, command: str = "git", returncode: int | None = None):
        self.category = category
        self.detail = detail
        self.command = command
        self.returncode = returncode
        super().__init__(f"{command} failed: {detail or category}")


class GitTimeout(GitError):
    """The process ran past its time limit and was killed (with its children)."""


@dataclass(frozen=True, slots=True)
class GitResult:
    stdout: bytes
    stderr: str
    returncode: int
    truncated: bool = False  # stdout was cut at ``max_output`` (``truncate=True``)

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")


# -- the environment -------------------------------------------------------------------
#: In the local profile, ``GIT_*`` variables are dropped except these (the user's own
#: choices about discovery and tracing, which change no result).
_LOCAL_KEEP = re.compile(r"^GIT_(CEILING_DIRECTORIES|DISCOVERY_ACROSS_FILESYSTEM|TRACE\w*)$")
#: In the isolated profile, only these variables come from the caller's environment.
_ISOLATED_KEEP = ("PATH", "TMPDIR", "SYSTEMROOT")


def _base_config(protocols: Iterable[str]) -> list[tuple[str, str]]:
    cfg = [
        ("core.hooksPath", "/dev/null"),
        ("core.fsmonitor", "false"),
        ("credential.helper", ""),
        ("core.askPass", ""),
        ("protocol.allow", "never"),
    ]
    cfg += [(f"protocol.{p}.allow", "always") for p in protocols]
    return cfg


def _redact(text: str, secrets: Iterable[str]) -> str:
    text = re.sub(r"(Authorization:\s*\w+\s+)\S+", r"\1***", text, flags=re.I)
    text = re.sub(r"(https?://)[^/@\s]+@", r"\1***@", text)
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


@dataclass(frozen=True)
class GitRunner:
    """How lab_ci runs git (see the module docstring). Immutable: derive variants with
    :meth:`with_config` or :func:`dataclasses.replace`."""

    profile: str = LOCAL
    timeout: float = DEFAULT_TIMEOUT
    max_output: int = DEFAULT_MAX_OUTPUT
    protocols: tuple[str, ...] = ()
    config: tuple[tuple[str, str], ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)
    git: str = "git"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown git runner profile {self.profile!r}")

    def with_config(self, *pairs: tuple[str, str], secrets: Iterable[str] = ()) -> GitRunner:
        return replace(self, config=(*self.config, *pairs), secrets=(*self.secrets, *secrets))

    # -- what a process gets ------------------------------------------------------------
    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of every git process of this runner (plus ``extra``, which
        wins: a caller's deliberate ``GIT_INDEX_FILE`` for a snapshot, say)."""
        if self.profile == ISOLATED:
            env = {k: os.environ[k] for k in _ISOLATED_KEEP if k in os.environ}
            env.setdefault("PATH", "/usr/bin:/bin")
            env.update(
                {
                    "HOME": "/nonexistent",
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_CONFIG_GLOBAL": "/dev/null",
                    "GIT_NO_REPLACE_OBJECTS": "1",
                }
            )
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or _LOCAL_KEEP.match(k)}
        env.update(
            {
                "LC_ALL": "C",
                "LANGUAGE": "C",
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_ASKPASS": "",
                "SSH_ASKPASS": "",
                "GIT_OPTIONAL_LOCKS": "0",
                "GIT_PROTOCOL_FROM_USER": "0",
            }
        )
        cfg = [*_base_config(self.protocols), *self.config]
        env["GIT_CONFIG_COUNT"] = str(len(cfg))
        for i, (k, v) in enumerate(cfg):
            env[f"GIT_CONFIG_KEY_{i}"] = k
            env[f"GIT_CONFIG_VALUE_{i}"] = v
        env.update(extra or {})
        return env

    def redact(self, text: str) -> str:
        return _redact(text, self.secrets)

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        args: list[str],
        *,
        cwd: str | os.PathLike | None = None,
        git_dir: str | os.PathLike | None = None,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_output: int | None = None,
        truncate: bool = False,
        watch: Callable[[], str | None] | None = None,
        check: bool = True,
    ) -> GitResult:
        """Run ``git [--git-dir D] args...``; return its output.

        ``timeout`` (default: the runner's) bounds the wall-clock time, ``max_output``
        the bytes read from standard output: past it the process is killed and
        :class:`GitError` (``output too large``) raised, or, with ``truncate``, the
        first ``max_output`` bytes are returned (``truncated=True``). ``watch`` is
        called about ten times a second while git runs, and once more when it ends; a
        non-empty string it returns stops git (or fails the finished run) and becomes the
        error's category. With ``check`` (the default) a
        non-zero exit raises :class:`GitError` with the category read from stderr."""
        command = f"git {_subcommand(args)}".strip()
        argv = [self.git, *(["--git-dir", os.fspath(git_dir)] if git_dir is not None else []), *args]
        limit = self.timeout if timeout is None else timeout
        cap = self.max_output if max_output is None else max_output
        deadline = time.monotonic() + max(0.0, limit)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=self.env(env),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            if cwd is not None and not os.path.isdir(cwd):
                raise GitError(NOT_A_REPOSITORY, f"no such folder: {os.fspath(cwd)}", command=command) from None
            raise GitError(GIT_MISSING, f"{GIT_MISSING} ({e.filename or self.git})", command=command) from None
        try:
            out, err, stopped = _communicate(proc, input, deadline, cap, watch)
        except BaseException:
            _kill_group(proc)
            raise
        stderr = self.redact(err.decode("utf-8", "replace")).strip()
        if stopped == TIMED_OUT:
            raise GitTimeout(TIMED_OUT, f"{command} timed out after {limit:g} s", command=command)
        if stopped == OUTPUT_TOO_LARGE:
            if truncate:
                return GitResult(bytes(out), stderr, proc.returncode, truncated=True)
            raise GitError(OUTPUT_TOO_LARGE, f"{command} printed more than {cap} bytes", command=command)
        if stopped:
            raise GitError(stopped, f"{command} stopped: {stopped}", command=command)
        if check and proc.returncode != 0:
            lines = [ln for ln in stderr.splitlines() if ln.strip()]
            tail = " ".join(lines[-3:]) if lines else f"exit status {proc.returncode}"
            raise GitError(classify_stderr(stderr), tail, command=command, returncode=proc.returncode)
        return GitResult(bytes(out), stderr, proc.returncode)

    def text(self, args: list[str], **kw) -> str:
        """:meth:`run`, standard output decoded and stripped."""
        return self.run(args, **kw).text.strip()

    def ok(self, args: list[str], **kw) -> bool:
        """True when git exits 0 (a timeout still raises)."""
        return self.run(args, check=False, **kw).returncode == 0


def _subcommand(args: list[str]) -> str:
    """The git subcommand in ``args`` (skipping ``-c key=value`` and other options)."""
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in ("-c", "-C", "--git-dir", "--work-tree", "--namespace"):
            skip = True
        elif not a.startswith("-"):
            return a
    return ""


def _communicate(
    proc: subprocess.Popen, input: bytes | None, deadline: float, cap: int, watch
) -> tuple[bytearray, bytearray, str | None]:
    """Feed stdin, drain stdout (at most ``cap`` bytes) and stderr (its tail) without
    threads, and notice the exit through a pidfd; return ``(stdout, stderr,
    why_stopped)``, the process reaped. When git exits, what is left of its session
    (a child still holding a pipe) is killed before the leader is reaped, while its id
    cannot be reused."""
    out, err = bytearray(), bytearray()
    stopped: str | None = None
    sel = selectors.DefaultSelector()
    pending = memoryview(input or b"")
    if proc.stdin is not None:
        if pending:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    pidfd = _pidfd_open(proc.pid)
    if pidfd is not None:
        sel.register(pidfd, selectors.EVENT_READ, "exit")
    exited = False
    next_watch = time.monotonic() + 0.1
    try:
        while stopped is None:
            pipes = [k for k in sel.get_map().values() if k.data != "exit"]
            if not pipes and (exited or pidfd is None):
                break
            now = time.monotonic()
            if now >= deadline:
                stopped = TIMED_OUT
                break
            for key, _ in sel.select(min(deadline - now, 0.1)):
                if key.data == "exit":
                    exited = True
                    sel.unregister(pidfd)
                    _signal_group(proc)
                elif key.fileobj is proc.stdin:
                    try:
                        n = os.write(key.fd, pending[:65536])
                    except BrokenPipeError:
                        n, pending = 0, memoryview(b"")
                    pending = pending[n:]
                    if not pending:
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                elif not (chunk := os.read(key.fd, 65536)):
                    sel.unregister(key.fileobj)
                elif key.fileobj is proc.stdout:
                    room = cap - len(out)
                    out += chunk[: max(room, 0)]
                    if len(chunk) > room:
                        stopped = OUTPUT_TOO_LARGE
                        break
                else:
                    err += chunk
                    if len(err) > STDERR_KEEP:
                        del err[: len(err) - STDERR_KEEP]
            if stopped is None and watch is not None and time.monotonic() >= next_watch:
                stopped = watch() or None
                next_watch = time.monotonic() + 0.1
        if stopped is None and not exited:
            stopped = _wait_exit(proc, deadline)
        if stopped is None and watch is not None:
            # a last look once git is done: what it wrote between two polls counts too
            # (a fast fetch could finish over its disk budget before the next poll)
            stopped = watch() or None
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None and not f.closed:
                f.close()
    if stopped is not None:
        _kill_group(proc)
    else:
        proc.wait()
    return out, err, stopped


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: _wait_exit polls instead
        return None


def _signal_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_exit(proc: subprocess.Popen, deadline: float) -> str | None:
    """Without a pidfd: poll (not reaping) for the exit by ``deadline``, then kill
    leftovers of the session as above."""
    pause = 0.0001
    while True:
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped elsewhere
            return None
        if info is not None:
            _signal_group(proc)
            return None
        if time.monotonic() >= deadline:
            return TIMED_OUT
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def _kill_group(proc: subprocess.Popen) -> None:
    _signal_group(proc)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process in D state
        pass


#: The runners most of lab_ci uses; callers derive variants with ``with_config``.
LOCAL_RUNNER = GitRunner(LOCAL)
ISOLATED_RUNNER = GitRunner(ISOLATED)
