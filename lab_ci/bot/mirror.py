"""Local bare mirrors of taxonomy repositories, fetched with an installation token.

The bot reads pull request contents as git objects only: it fetches
``refs/pull/N/head`` (which lives in the BASE repository, so fork pull requests work)
and the base branch into a bare repository, then the checker reads blobs from it.
Nothing from the pull request is ever executed: no checkout, no hooks
(``core.hooksPath=/dev/null``), no config from the fetched refs, no submodules.

The token travels as an ``http.extraHeader`` set through git's environment
(``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``): never in the URL,
the command line or the logs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab_ci.errors import LabCIError

log = logging.getLogger("lab_ci.bot.mirror")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_SHA = re.compile(r"^[0-9a-f]{40}$")


class MirrorError(LabCIError):
    """A git fetch failed (network, auth, missing ref). Usually transient."""

    retryable = True


class StaleHeadError(MirrorError):
    """The pull request no longer points at the commit asked for (a newer push won)."""

    retryable = False


@dataclass(frozen=True, slots=True)
class FetchResult:
    path: Path
    head_sha: str
    base_sha: str


def git_env(token: str | None, *, allow_file: bool = False) -> dict[str, str]:
    """Environment for git: no prompts, no system/global config, token as a header."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/nonexistent"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ASKPASS": "/bin/false",
        "LC_ALL": "C",
    }
    cfg = [
        ("core.hooksPath", "/dev/null"),
        ("fetch.recurseSubmodules", "false"),
        ("protocol.file.allow", "always" if allow_file else "never"),
        ("protocol.ext.allow", "never"),
        ("transfer.fsckObjects", "false"),
    ]
    if token:
        from lab_ci.bot.github import basic_auth_header

        cfg.append(("http.extraHeader", basic_auth_header(token)))
    env["GIT_CONFIG_COUNT"] = str(len(cfg))
    for i, (k, v) in enumerate(cfg):
        env[f"GIT_CONFIG_KEY_{i}"] = k
        env[f"GIT_CONFIG_VALUE_{i}"] = v
    return env


def redact(text: str, token: str | None) -> str:
    text = re.sub(r"(Authorization: Basic )\S+", r"\1***", text)
    return text.replace(token, "***") if token else text


class Mirrors:
    """One bare mirror per repository under ``root`` (``root/owner/name.git``)."""

    def __init__(self, root: str | Path, *, timeout: float = 600.0):
        self.root = Path(root)
        self.timeout = timeout

    def path_for(self, repo: str) -> Path:
        owner, _, name = repo.partition("/")
        return self.root / _SAFE.sub("_", owner) / (_SAFE.sub("_", name) + ".git")

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(path) + ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _git(self, path: Path, *args: str, env: dict, token: str | None = None) -> str:
        try:
            out = subprocess.run(
                ["git", "--git-dir", str(path), *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise MirrorError(f"git {args[0]} timed out after {self.timeout:.0f}s") from None
        if out.returncode != 0:
            lines = (out.stderr or out.stdout).strip().splitlines()
            msg = redact(lines[-1] if lines else f"exit status {out.returncode}", token)
            raise MirrorError(f"git {args[0]} failed: {msg}")
        return out.stdout.strip()

    def fetch_pull(
        self, repo: str, url: str, *, number: int, base_ref: str, head_sha: str, token: str | None
    ) -> FetchResult:
        """Fetch ``refs/pull/N/head`` and the base branch; returns the mirror path and
        the fetched shas. Raises :class:`MirrorError` when ``head_sha`` is not what
        the pull request points at any more and not otherwise present."""
        if not _SHA.match(head_sha):
            raise MirrorError(f"not a commit sha: {head_sha[:60]!r}")
        path = self.path_for(repo)
        allow_file = not url.startswith(("https://", "http://"))
        env = git_env(token, allow_file=allow_file)
        refspecs = [
            f"+refs/pull/{int(number)}/head:refs/lab-ci/pull/{int(number)}/head",
            f"+refs/heads/{base_ref}:refs/lab-ci/heads/{base_ref}",
        ]
        with self._locked(path):
            if not (path / "HEAD").exists():
                path.mkdir(parents=True, exist_ok=True)
                self._git(path, "init", "--quiet", "--bare", env=env)
            log.info("fetching %s pull %d into %s", repo, number, path)
            self._git(
                path,
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-recurse-submodules",
                url,
                *refspecs,
                env=env,
                token=token,
            )
            fetched_head = self._git(path, "rev-parse", f"refs/lab-ci/pull/{int(number)}/head", env=env)
            base_sha = self._git(path, "rev-parse", f"refs/lab-ci/heads/{base_ref}", env=env)
            if fetched_head != head_sha and not self.has_commit(path, head_sha):
                raise StaleHeadError(
                    f"commit {head_sha[:12]} is not in pull request #{number} any more (head is {fetched_head[:12]})"
                )
        return FetchResult(path, head_sha, base_sha)

    def fetch_ref(self, repo: str, url: str, ref: str, *, token: str | None) -> str:
        """Fetch one branch (e.g. the default branch after a merge); returns its sha."""
        path = self.path_for(repo)
        env = git_env(token, allow_file=not url.startswith(("https://", "http://")))
        with self._locked(path):
            if not (path / "HEAD").exists():
                path.mkdir(parents=True, exist_ok=True)
                self._git(path, "init", "--quiet", "--bare", env=env)
            self._git(
                path,
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                url,
                f"+refs/heads/{ref}:refs/lab-ci/heads/{ref}",
                env=env,
                token=token,
            )
            return self._git(path, "rev-parse", f"refs/lab-ci/heads/{ref}", env=env)

    def has_commit(self, path: Path, sha: str) -> bool:
        try:
            r = subprocess.run(
                ["git", "--git-dir", str(path), "cat-file", "-e", f"{sha}^{{commit}}"],
                env=git_env(None),
                capture_output=True,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            raise MirrorError(f"git cat-file in {path} did not answer within {self.timeout:.0f}s") from None
        return r.returncode == 0
