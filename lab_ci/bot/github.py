"""GitHub access for the bot: App authentication and a thin adapter (PyGithub at the edge).

:class:`GitHubApp` signs app JWTs (``github.Auth.AppAuth``) and mints installation
tokens (``POST /app/installations/{id}/access_tokens``), cached until a minute before
they expire. :meth:`GitHubApp.client` gives a :class:`GitHubClient` for one
installation with exactly the operations the bot needs.

Transport policy (both for the app and installation clients):

- ``base_url`` is configurable (tests point it at the local REST double);
- retries GET/HEAD/PUT/DELETE on 5xx, 429 and read timeouts, and every request on
  connection errors (``github.GithubRetry``, a ``urllib3.Retry``), honouring ``Retry-After``, primary rate limits
  (``x-ratelimit-remaining: 0`` + ``x-ratelimit-reset``) and secondary rate limits,
  never waiting longer than ``max_rate_limit_wait`` seconds. POST and PATCH are NOT
  retried after the request was sent (a 5xx may come after GitHub applied the write:
  a retried POST would post a comment or dispatch a build twice, a retried PATCH would
  append annotations twice); the job's own retry looks up what exists first;
- errors come out as :class:`GitHubError` with ``transient`` set when retrying the
  whole job later may help (5xx, network errors, rate limits, every 429 whatever its
  body says, and a 403 that carries ``Retry-After``) (the queue does that when ``run_job`` raises), and a clear
  message when the app is not installed or lacks a permission.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import github
import requests
import urllib3
from github import Auth, GithubException, GithubIntegration, GithubRetry

from lab_ci.bot.render import batches
from lab_ci.errors import LabCIError

log = logging.getLogger("lab_ci.bot.github")
T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.github.com"
TOKEN_REFRESH_MARGIN_S = 60

#: What each permission of the app manifest is for, for "permission missing" messages.
PERMISSION_HINTS = {
    "check-runs": "checks: write",
    "comments": "issues: write / pull_requests: write",
    "collaborators": "metadata: read",
    "memberships": "members: read (organization)",
    "contents": "contents: read",
    "dispatches": "actions: write",
    "pulls": "pull_requests: read",
}


class GitHubError(LabCIError):
    """A GitHub API call failed. ``transient``: retrying the job later may succeed."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient

    @property
    def retryable(self) -> bool:
        """Read by the worker: a non-transient error makes the job dead at once."""
        return self.transient


class NotInstalledError(GitHubError):
    """The app is not installed on that account/repository (or the installation is gone)."""


class PermissionMissingError(GitHubError):
    """The installation lacks a permission the operation needs."""


@dataclass(frozen=True, slots=True)
class Transport:
    """HTTP settings shared by app and installation clients."""

    base_url: str = DEFAULT_BASE_URL
    timeout: int = 15  # seconds per request (PyGithub wants an int)
    retries: int = 4
    backoff_factor: float = 0.5
    max_rate_limit_wait: float = 120.0
    secondary_rate_wait: float = 60.0
    per_page: int = 100

    def retry(self) -> urllib3.Retry:
        return GithubRetry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            backoff_factor=self.backoff_factor,
            status_forcelist=list(range(500, 600)) + [429],
            # never POST/PATCH: a 5xx or read timeout may follow an applied write. The job
            # is retried instead, and it looks up (check run by name + head sha, comment
            # by marker, workflow run by run-name) before writing again.
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE"}),
            respect_retry_after_header=True,
            secondary_rate_wait=self.secondary_rate_wait,
            max_rate_limit_wait=self.max_rate_limit_wait,
            raise_on_status=False,
        )

    def kwargs(self) -> dict:
        return dict(
            base_url=self.base_url.rstrip("/"),
            timeout=max(1, int(self.timeout)),
            retry=self.retry(),
            per_page=self.per_page,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )


def _describe(e: Exception, what: str) -> GitHubError:
    """Turn a PyGithub/requests exception into a GitHubError with a clear message."""
    if isinstance(e, GitHubError):
        return e
    if isinstance(e, GithubException):
        status = e.status
        data = e.data if isinstance(e.data, dict) else {}
        msg = str(data.get("message") or e.data or "")[:300]
        headers = {str(k).lower(): v for k, v in (e.headers or {}).items()}
        if isinstance(e, github.RateLimitExceededException) or (status in (403, 429) and ("rate limit" in msg.lower())):
            return GitHubError(f"{what}: GitHub rate limit exceeded ({msg})", status=status, transient=True)
        if status == 429 or (status == 403 and "retry-after" in headers):
            # "Too Many Requests" from GitHub or from a proxy / load balancer in front of it
            # (whatever its body says), and any 403 that says when to come back: throttling
            wait = f"; retry after {headers['retry-after']} s" if "retry-after" in headers else ""
            return GitHubError(f"{what}: throttled ({status} {msg}){wait}", status=status, transient=True)
        if status == 401:
            return GitHubError(
                f"{what}: GitHub rejected the credentials (401 {msg}); check the app id and private key",
                status=401,
                transient=False,
            )
        if status == 403:
            hint = next((v for k, v in PERMISSION_HINTS.items() if k in what), None)
            need = f"; the app needs '{hint}'" if hint else ""
            return PermissionMissingError(f"{what}: permission missing (403 {msg}){need}", status=403)
        if status is not None and status >= 500:
            return GitHubError(
                f"{what}: GitHub server error {status} after retries ({msg})", status=status, transient=True
            )
        return GitHubError(f"{what}: {status} {msg}", status=status, transient=False)
    if isinstance(e, (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)):
        return GitHubError(
            f"{what}: network error talking to GitHub after retries ({type(e).__name__}: {e})"[:500], transient=True
        )
    raise e


def call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except GitHubError:
        raise
    except (GithubException, requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        raise _describe(e, what) from None


class GitHubApp:
    """The app identity: JWT auth and cached installation tokens (thread-safe)."""

    def __init__(
        self,
        app_id: int | str,
        private_key: str,
        *,
        transport: Transport = Transport(),
        clock: Callable[[], float] = time.time,
    ):
        self.app_id = app_id
        self.transport = transport
        self._clock = clock
        self._integration = GithubIntegration(auth=Auth.AppAuth(app_id, private_key), **transport.kwargs())
        self._tokens: dict[int, tuple[str, float]] = {}
        self._clients: dict[int, GitHubClient] = {}
        self._lock = threading.Lock()

    def token(self, installation_id: int) -> str:
        """An installation access token, refreshed a minute before it expires."""
        installation_id = int(installation_id)
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached and cached[1] - TOKEN_REFRESH_MARGIN_S > self._clock():
                return cached[0]
            try:
                auth = self._integration.get_access_token(installation_id)
            except GithubException as e:
                if e.status == 404:
                    raise NotInstalledError(
                        f"the lab-ci GitHub App (id {self.app_id}) is not installed for installation {installation_id}: "
                        "install it on the repository, or remove the stale webhook",
                        status=404,
                    ) from None
                raise _describe(e, f"installation token for installation {installation_id}") from None
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
                raise _describe(e, f"installation token for installation {installation_id}") from None
            expires = auth.expires_at.timestamp() if auth.expires_at else self._clock() + 3600
            self._tokens[installation_id] = (auth.token, expires)
            return auth.token

    def client(self, installation_id: int) -> GitHubClient:
        """THE client of one installation (cached: one HTTP session per installation,
        not one per job)."""
        installation_id = int(installation_id)
        with self._lock:
            c = self._clients.get(installation_id)
            if c is None:
                c = self._clients[installation_id] = GitHubClient(
                    lambda: self.token(installation_id), transport=self.transport, app_id=self.app_id
                )
            return c

    def close(self) -> None:
        """Close every cached HTTP session."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()


def basic_auth_header(token: str) -> str:
    """The ``Authorization`` header git uses for an installation token over HTTPS."""
    raw = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return f"Authorization: Basic {raw}"


def output_digest(title: str, summary: str, text: str | None, annotations: list[dict]) -> str:
    h = hashlib.sha256()
    for part in (title, summary, text or ""):
        h.update(part.encode())
        h.update(b"\0")
    for a in annotations:
        h.update(repr(sorted(a.items())).encode())
    return h.hexdigest()[:16]


class GitHubClient:
    """One installation's view of the API: only the operations the bot needs.

    Return values are plain dicts in GitHub's JSON shapes (``raw_data``), so the rest of
    the bot does not depend on PyGithub objects."""

    def __init__(
        self, token: str | Callable[[], str], *, transport: Transport = Transport(), app_id: int | str | None = None
    ):
        self._token = token if callable(token) else (lambda: token)
        self.app_id = app_id  # when known, only this app's check runs are ours to edit
        self.transport = transport
        self._gh: github.Github | None = None
        self._gh_token: str | None = None
        self._gh_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------
    def token(self) -> str:
        return self._token()

    @property
    def gh(self) -> github.Github:
        tok = self._token()
        with self._gh_lock:
            if self._gh is None or tok != self._gh_token:
                old, self._gh = self._gh, github.Github(auth=Auth.Token(tok), lazy=True, **self.transport.kwargs())
                self._gh_token = tok
                if old is not None:
                    old.close()  # a refreshed token: drop the old session
            return self._gh

    def close(self) -> None:
        with self._gh_lock:
            if self._gh is not None:
                self._gh.close()
                self._gh = None

    def _repo(self, repo: str):
        return self.gh.get_repo(repo)

    def _req(self, method: str, path: str, *, what: str, body: dict | None = None, params: dict | None = None) -> Any:
        def go():
            _, data = self.gh.requester.requestJsonAndCheck(method, path, parameters=params, input=body)
            return data

        return call(what, go)

    # -- pull requests --------------------------------------------------------------
    def get_pull(self, repo: str, number: int) -> dict:
        return call(f"GET pulls {repo}#{number}", lambda: self._repo(repo).get_pull(number).raw_data)

    # -- check runs -----------------------------------------------------------------
    def find_check_run(self, repo: str, sha: str, name: str) -> dict | None:
        """The newest check run named ``name`` on ``sha`` made by us (a workflow job of
        the same name belongs to another app and is left alone), or None."""

        def mine(r: dict) -> bool:
            return r.get("name") == name and (
                self.app_id is None or str((r.get("app") or {}).get("id")) == str(self.app_id)
            )

        def go():
            runs = self._repo(repo).get_commit(sha).get_check_runs(check_name=name)
            found = [r._rawData for r in runs if mine(r._rawData)]
            return max(found, key=lambda r: r["id"]) if found else None

        return call(f"GET check-runs {repo}@{sha[:12]}", go)

    def create_check_run(self, repo: str, body: dict) -> dict:
        return self._req("POST", f"/repos/{repo}/check-runs", what=f"POST check-runs {repo}", body=body)

    def update_check_run(self, repo: str, check_run_id: int, body: dict) -> dict:
        return self._req(
            "PATCH",
            f"/repos/{repo}/check-runs/{int(check_run_id)}",
            what=f"PATCH check-runs {repo}/{check_run_id}",
            body=body,
        )

    def publish_check_run(
        self,
        repo: str,
        *,
        name: str,
        head_sha: str,
        status: str = "completed",
        conclusion: str | None = None,
        title: str,
        summary: str,
        text: str | None = None,
        annotations: list[dict] | None = None,
        actions: list[dict] | None = None,
        external_id: str = "",
        details_url: str | None = None,
    ) -> dict:
        """Create or update THE check run ``name`` on ``head_sha`` (idempotent).

        An existing run is found by name + head sha. Annotations go in batches of 50
        (create, then PATCH with further batches; GitHub appends them). The output's
        digest is kept in ``external_id`` so a re-run of the same job resumes after the
        annotations already added instead of duplicating them; a new result on a run
        that already has annotations gets a fresh run (GitHub shows the newest)."""
        annotations = annotations or []
        digest = output_digest(title, summary, text, annotations)
        existing = self.find_check_run(repo, head_sha, name)
        start = 0
        if existing is not None:
            have = int((existing.get("output") or {}).get("annotations_count") or 0)
            old = _ext_digest(existing.get("external_id"))
            if have and not annotations:
                digest = old or digest  # e.g. "in_progress" on a re-run: keep the result's digest
            elif old == digest:
                start = min(have, len(annotations))  # resume after what is already there
                if (
                    start == len(annotations)
                    and existing.get("status") == status
                    and existing.get("conclusion") == (conclusion if status == "completed" else None)
                ):
                    return existing  # already published: nothing to do
            elif have:
                existing = None  # other annotations cannot be removed: start a fresh run
        ext = f"{external_id};out={digest}" if external_id else f"out={digest}"
        output: dict[str, Any] = {"title": title[:1000], "summary": summary}
        if text:
            output["text"] = text
        base: dict[str, Any] = {"name": name, "head_sha": head_sha, "status": status, "external_id": ext}
        if status == "completed":
            base["conclusion"] = conclusion
        if actions is not None:
            base["actions"] = actions
        if details_url:
            base["details_url"] = details_url
        chunks = list(batches(annotations[start:]))
        first = chunks[0] if chunks else []
        body = {**base, "output": {**output, "annotations": first} if first else output}
        if existing is None:
            run = self.create_check_run(repo, body)
        else:
            body.pop("head_sha")
            run = self.update_check_run(repo, existing["id"], body)
        for chunk in chunks[1:]:
            run = self.update_check_run(repo, run["id"], {"output": {**output, "annotations": chunk}})
        return run

    # -- comments -------------------------------------------------------------------
    def list_issue_comments(self, repo: str, number: int) -> list[dict]:
        return call(
            f"GET comments {repo}#{number}",
            lambda: [c._rawData for c in self._repo(repo).get_issue(number).get_comments()],
        )

    def create_comment_once(self, repo: str, number: int, marker: str, body: str) -> dict:
        """Post ``body`` (with the hidden ``marker``) unless a bot comment with ``marker``
        is already there (an earlier attempt of the same job); returns the comment."""
        for c in self.list_issue_comments(repo, number):
            if marker in (c.get("body") or "") and (c.get("user") or {}).get("type") == "Bot":
                return c
        return self.create_comment(repo, number, f"{marker}\n{body}")

    def create_comment(self, repo: str, number: int, body: str) -> dict:
        return self._req(
            "POST",
            f"/repos/{repo}/issues/{int(number)}/comments",
            what=f"POST comments {repo}#{number}",
            body={"body": body},
        )

    def edit_comment(self, repo: str, comment_id: int, body: str) -> dict:
        return self._req(
            "PATCH",
            f"/repos/{repo}/issues/comments/{int(comment_id)}",
            what=f"PATCH comments {repo}/{comment_id}",
            body={"body": body},
        )

    def upsert_sticky_comment(
        self, repo: str, number: int, marker: str, body: str, *, bot_login: str | None = None
    ) -> tuple[dict, str]:
        """Find the bot's comment carrying ``marker`` and edit it in place, or create it.
        Returns (comment, "created"|"edited"|"unchanged")."""
        if marker not in body:
            body = f"{marker}\n{body}"
        mine = [
            c
            for c in self.list_issue_comments(repo, number)
            if marker in (c.get("body") or "")
            and (c.get("user") or {}).get("type") == "Bot"
            and (bot_login is None or (c.get("user") or {}).get("login") == bot_login)
        ]
        if not mine:
            return self.create_comment(repo, number, body), "created"
        first = min(mine, key=lambda c: c["id"])
        if first.get("body") == body:
            return first, "unchanged"
        return self.edit_comment(repo, first["id"], body), "edited"

    # -- permissions ----------------------------------------------------------------
    def _get_or_none(self, path: str, *, what: str, params: dict | None = None) -> Any:
        """GET ``path``; None when GitHub answers 404."""
        try:
            return self._req("GET", path, params=params, what=what)
        except GitHubError as e:
            if e.status == 404:
                return None
            raise

    def collaborator_role(self, repo: str, user: str) -> str | None:
        """The user's role on the repo (admin, maintain, write, triage, read) or None."""
        data = self._get_or_none(
            f"/repos/{repo}/collaborators/{quote(user)}/permission", what=f"GET collaborators permission {repo} {user}"
        )
        if data is None:
            return None
        role = data.get("role_name") or data.get("permission")
        return None if role in (None, "none") else role

    def team_member(self, org: str, team_slug: str, user: str) -> bool:
        """True when ``user`` is an ACTIVE member of ``org/team_slug`` (404 = not a member)."""
        data = self._get_or_none(
            f"/orgs/{quote(org)}/teams/{quote(team_slug)}/memberships/{quote(user)}",
            what=f"GET team memberships {org}/{team_slug} {user}",
        )
        return data is not None and data.get("state") == "active"

    # -- contents / actions -----------------------------------------------------------
    def read_file(self, repo: str, path: str, ref: str) -> str | None:
        """The text of ``path`` at ``ref`` (e.g. the default branch), or None if absent."""
        data = self._get_or_none(
            f"/repos/{repo}/contents/{quote(path)}", params={"ref": ref}, what=f"GET contents {repo}/{path}"
        )
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        if data.get("encoding") == "base64":
            return base64.b64decode(data.get("content") or "").decode("utf-8", errors="replace")
        return data.get("content") or ""

    def list_workflow_runs(self, repo: str, workflow: str, *, event: str | None = None, limit: int = 100) -> list[dict]:
        """The newest runs of ``workflow`` (``GET .../actions/workflows/{id}/runs``);
        [] when the workflow does not exist."""
        params: dict[str, Any] = {"per_page": min(100, limit)}
        if event:
            params["event"] = event
        data = self._get_or_none(
            f"/repos/{repo}/actions/workflows/{quote(workflow)}/runs",
            params=params,
            what=f"GET workflow runs {repo} {workflow}",
        )
        return list((data or {}).get("workflow_runs") or [])[:limit]

    def dispatch_workflow(self, repo: str, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        """``POST /repos/{o}/{r}/actions/workflows/{id}/dispatches`` (204 No Content)."""
        self._req(
            "POST",
            f"/repos/{repo}/actions/workflows/{quote(workflow)}/dispatches",
            body={"ref": ref, "inputs": {k: str(v) for k, v in inputs.items()}},
            what=f"POST workflow dispatches {repo} {workflow}",
        )


def _ext_digest(external_id: str | None) -> str | None:
    for part in (external_id or "").split(";"):
        if part.startswith("out="):
            return part[4:]
    return None


def external_field(external_id: str | None, key: str) -> str | None:
    """Read ``key=value`` from a check run external_id written by the bot."""
    for part in (external_id or "").split(";"):
        k, _, v = part.partition("=")
        if k == key:
            return v
    return None
