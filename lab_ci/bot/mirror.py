"""Local bare mirrors of taxonomy repositories, fetched with an installation token.

The bot reads pull request contents as git objects only: it fetches
``refs/pull/N/head`` (which lives in the BASE repository, so fork pull requests work)
and the base branch into a bare repository, then the checker reads blobs from it.
Nothing from the pull request is ever executed: no checkout, no hooks
(``core.hooksPath=/dev/null``), no config from the fetched refs, no submodules.

Git runs through lab_ci's one git runner (:mod:`lab_ci.taxonomy.gitrun`, the
``isolated`` profile, with a time limit per process). The token travels as an
``http.extraHeader`` set through git's environment (``GIT_CONFIG_COUNT``/
``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``): never in the URL, the command line, an
error message or the logs.
"""

from __future__ import annotations

import fcntl
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab_ci.errors import LabCIError
from lab_ci.taxonomy.gitrun import ISOLATED, GitError, GitRunner, GitTimeout

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


def _runner(token: str | None, *, allow_file: bool = False) -> GitRunner:
    """The git runner for mirror fetches: the isolated profile (no system or global
    config, no prompts, no proxies from the environment), https/http transports (plus
    file for local test remotes), the token as a header that never reaches the
    command line, the URL or an error message."""
    protocols = ("https", "http", *(("file",) if allow_file else ()))
    runner = GitRunner(ISOLATED, protocols=protocols).with_config(
        ("fetch.recurseSubmodules", "false"),
        ("transfer.fsckObjects", "false"),
    )
    if token:
        from lab_ci.bot.github import basic_auth_header

        runner = runner.with_config(("http.extraHeader", basic_auth_header(token)), secrets=[token])
    return runner


def git_env(token: str | None, *, allow_file: bool = False) -> dict[str, str]:
    """The environment mirror fetches run git with (see :func:`_runner`)."""
    return _runner(token, allow_file=allow_file).env()


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

    def _git(self, path: Path, *args: str, runner: GitRunner) -> str:
        try:
            return runner.text(list(args), git_dir=path, timeout=self.timeout)
        except GitTimeout:
            raise MirrorError(f"git {args[0]} timed out after {self.timeout:.0f}s") from None
        except GitError as e:
            raise MirrorError(f"git {args[0]} failed: {e.detail or e.category}") from None

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
        runner = _runner(token, allow_file=allow_file)
        refspecs = [
            f"+refs/pull/{int(number)}/head:refs/lab-ci/pull/{int(number)}/head",
            f"+refs/heads/{base_ref}:refs/lab-ci/heads/{base_ref}",
        ]
        with self._locked(path):
            if not (path / "HEAD").exists():
                path.mkdir(parents=True, exist_ok=True)
                self._git(path, "init", "--quiet", "--bare", runner=runner)
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
                runner=runner,
            )
            fetched_head = self._git(path, "rev-parse", f"refs/lab-ci/pull/{int(number)}/head", runner=runner)
            base_sha = self._git(path, "rev-parse", f"refs/lab-ci/heads/{base_ref}", runner=runner)
            if fetched_head != head_sha and not self.has_commit(path, head_sha):
                raise StaleHeadError(
                    f"commit {head_sha[:12]} is not in pull request #{number} any more (head is {fetched_head[:12]})"
                )
        return FetchResult(path, head_sha, base_sha)

    def fetch_ref(self, repo: str, url: str, ref: str, *, token: str | None) -> str:
        """Fetch one branch (e.g. the default branch after a merge); returns its sha."""
        path = self.path_for(repo)
        runner = _runner(token, allow_file=not url.startswith(("https://", "http://")))
        with self._locked(path):
            if not (path / "HEAD").exists():
                path.mkdir(parents=True, exist_ok=True)
                self._git(path, "init", "--quiet", "--bare", runner=runner)
            self._git(
                path,
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                url,
                f"+refs/heads/{ref}:refs/lab-ci/heads/{ref}",
                runner=runner,
            )
            return self._git(path, "rev-parse", f"refs/lab-ci/heads/{ref}", runner=runner)

    def has_commit(self, path: Path, sha: str) -> bool:
        try:
            return _runner(None).ok(["cat-file", "-e", f"{sha}^{{commit}}"], git_dir=path, timeout=self.timeout)
        except GitTimeout:
            raise MirrorError(f"git cat-file in {path} did not answer within {self.timeout:.0f}s") from None
