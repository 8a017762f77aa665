"""A local GitHub REST API double: a real HTTP server on 127.0.0.1 (Starlette + uvicorn
in a thread) serving the routes the lab-ci bot uses, with GitHub's request/response
shapes and status codes (docs.github.com/en/rest: checks/runs, issues/comments,
collaborators, teams/members, repos/contents, actions/workflows, apps).

- App auth: ``POST /app/installations/{id}/access_tokens`` needs an RS256 app JWT
  (``iss`` = app id) signed by the key the test registered; it mints tokens with an
  ``expires_at``. Every other route needs ``Authorization: token|Bearer <token>`` of a
  live installation token, else ``401 Bad credentials``.
- Validation like GitHub's: more than 50 annotations in one call, an invalid or missing
  conclusion, a bad status -> ``422 Validation Failed``.
- Pagination with ``per_page``/``page`` and ``Link`` headers (rel next/last).
- Fault injection: :meth:`GitHubDouble.fail` queues scripted responses (status, headers,
  body, delay) per method + path regex: 401, 403 primary rate limit
  (``x-ratelimit-remaining: 0``, ``x-ratelimit-reset``), 403/429 secondary rate limit
  with ``Retry-After``, 404, 422, 5xx, slow responses (client timeouts), and
  ``apply=True``: the write IS applied, then the error is answered (what GitHub does
  when a proxy times out after the backend committed: the client cannot tell).
- Every call is recorded (:attr:`calls`: method, path, query, json body, arrival time
  ``at`` and ``done_at`` when the answer was sent, both ``time.monotonic()``).
- Workflow dispatches create workflow runs (``GET .../actions/workflows/{id}/runs``)
  whose ``display_title`` is the workflow's ``run-name`` with the inputs filled in.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DOCS = "https://docs.github.com/rest"
CONCLUSIONS = {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
STATUSES = {"queued", "in_progress", "completed", "waiting", "requested", "pending"}
ROLE_TO_LEGACY = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}


def iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(t if t is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    done_at: float | None = None


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    times: int = 1
    apply: bool = False  # apply the request, then answer ``status`` anyway


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int
    default_branch: str = "main"
    pulls: dict[int, dict] = field(default_factory=dict)
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (ref, path) -> text
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role_name
    workflows: set[str] = field(default_factory=set)
    #: workflow file -> its ``run-name`` (``${{ inputs.X }}`` filled in on dispatch)
    run_names: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class UvicornThread:
    """A real uvicorn server in a daemon thread on a loopback port chosen by the OS (the
    socket is bound here and handed to uvicorn, so no free-port race). The one helper
    for the double, the in-process bot and the HTTP tests."""

    def __init__(self, app, *, lifespan: str = "on", **config: Any):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config.setdefault("log_level", "warning")
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, **config))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self, timeout: float = 15.0) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class GitHubDouble:
    def __init__(self, *, app_id: int = 4242, public_key_pem: str | None = None, app_slug: str = "lab-ci"):
        self.app_id = app_id
        self.app_slug = app_slug
        self.public_key_pem = public_key_pem
        self.installations: dict[int, dict] = {}
        self.tokens: dict[str, tuple[int, float]] = {}  # token -> (installation id, expires)
        self.foreign_tokens: dict[str, dict] = {}  # token -> app acting (another app's runs)
        self.token_ttl = 3600.0
        self.repos: dict[str, FakeRepo] = {}
        self.teams: dict[tuple[str, str], dict[str, str]] = {}  # (org, slug) -> login -> state
        self.check_runs: dict[int, dict] = {}
        self.annotations: dict[int, list[dict]] = {}
        self.comments: dict[int, dict] = {}
        self.comment_issue: dict[int, tuple[str, int]] = {}
        self.dispatches: list[dict] = []
        self.workflow_runs: list[dict] = []
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self._ids = itertools.count(1000)
        # re-entrant: the query helpers below take it too, also when a route calls them
        self._lock = threading.RLock()
        self.answered = threading.Condition()
        self.base_url = ""
        self._server: UvicornThread | None = None

    # -- set-up helpers ---------------------------------------------------------------
    def add_installation(self, installation_id: int, account: str) -> None:
        self.installations[installation_id] = {"id": installation_id, "account": {"login": account}}

    def add_repo(self, full_name: str, *, default_branch: str = "main") -> FakeRepo:
        owner, name = full_name.split("/")
        repo = FakeRepo(owner, name, id=next(self._ids), default_branch=default_branch)
        self.repos[full_name] = repo
        return repo

    def add_pull(
        self,
        full_name: str,
        number: int,
        *,
        head_sha: str,
        base_sha: str,
        head_ref: str = "topic",
        draft: bool = False,
        user: str = "contributor",
    ) -> dict:
        repo = self.repos[full_name]
        api = f"{self.base_url}/repos/{full_name}"
        pr = {
            "url": f"{api}/pulls/{number}",
            "id": next(self._ids),
            "node_id": f"PR_{number}",
            "html_url": f"https://github.com/{full_name}/pull/{number}",
            "number": number,
            "state": "open",
            "locked": False,
            "title": f"PR {number}",
            "user": self._user(user),
            "body": None,
            "created_at": iso(),
            "updated_at": iso(),
            "closed_at": None,
            "merged_at": None,
            "merge_commit_sha": None,
            "draft": draft,
            "head": {
                "label": f"{repo.owner}:{head_ref}",
                "ref": head_ref,
                "sha": head_sha,
                "user": self._user(repo.owner),
                "repo": self._repo_json(repo),
            },
            "base": {
                "label": f"{repo.owner}:{repo.default_branch}",
                "ref": repo.default_branch,
                "sha": base_sha,
                "user": self._user(repo.owner),
                "repo": self._repo_json(repo),
            },
            "merged": False,
            "mergeable": None,
            "comments": 0,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }
        repo.pulls[number] = pr
        return pr

    def add_comment(
        self, full_name: str, number: int, body: str, *, user: str = "contributor", bot: bool = False
    ) -> dict:
        with self._lock:
            return self._new_comment(full_name, number, body, self._user(user, bot=bot))

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        headers: dict | None = None,
        body: Any = None,
        delay: float = 0.0,
        times: int = 1,
        apply: bool = False,
    ) -> None:
        """Queue ``times`` scripted responses for requests matching method + path regex.
        ``apply=True``: the request takes effect before the scripted error is answered."""
        self.faults.append(
            Fault(method.upper(), re.compile(path_regex), status, dict(headers or {}), body, delay, times, apply)
        )

    def fail_rate_limit(self, method: str, path_regex: str, *, reset_in: int = 1, times: int = 1) -> None:
        """403 primary rate limit, as GitHub sends it."""
        self.fail(
            method,
            path_regex,
            403,
            headers={
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000",
                "x-ratelimit-reset": str(int(time.time()) + reset_in),
                "x-ratelimit-resource": "core",
            },
            body={
                "message": "API rate limit exceeded for installation ID 1.",
                "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
            },
            times=times,
        )

    def fail_secondary_rate_limit(
        self, method: str, path_regex: str, *, retry_after: int = 1, status: int = 403, times: int = 1
    ) -> None:
        self.fail(
            method,
            path_regex,
            status,
            headers={"retry-after": str(retry_after)},
            body={
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            },
            times=times,
        )

    # -- queries for assertions ------------------------------------------------------
    def calls_to(self, method: str, path_regex: str) -> list[Call]:
        rx = re.compile(path_regex)
        return [c for c in self.calls if c.method == method.upper() and rx.search(c.path)]

    # The queries hold the lock: a test polls them while the server thread adds runs and
    # comments (iterating a dict that grows meanwhile raises RuntimeError).
    def runs_named(self, full_name: str, name: str, head_sha: str | None = None) -> list[dict]:
        with self._lock:
            return [
                r
                for r in list(self.check_runs.values())
                if r["_repo"] == full_name and r["name"] == name and (head_sha is None or r["head_sha"] == head_sha)
            ]

    def issue_comments(self, full_name: str, number: int) -> list[dict]:
        with self._lock:
            return [c for cid, c in sorted(self.comments.items()) if self.comment_issue[cid] == (full_name, number)]

    # -- JSON shapes ---------------------------------------------------------------------
    def _user(self, login: str, *, bot: bool = False) -> dict:
        uid = abs(hash(login)) % 10_000_000
        return {
            "login": login,
            "id": uid,
            "node_id": f"U_{uid}",
            "avatar_url": "",
            "url": f"{self.base_url}/users/{login}",
            "html_url": f"https://github.com/{login}",
            "type": "Bot" if bot else "User",
            "site_admin": False,
        }

    def _repo_json(self, repo: FakeRepo) -> dict:
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": False,
            "owner": self._user(repo.owner),
            "url": f"{self.base_url}/repos/{repo.full_name}",
            "default_branch": repo.default_branch,
        }

    def _bot_user(self) -> dict:
        return self._user(f"{self.app_slug}[bot]", bot=True)

    def _new_comment(self, full_name: str, number: int, body: str, user: dict) -> dict:
        cid = next(self._ids)
        c = {
            "url": f"{self.base_url}/repos/{full_name}/issues/comments/{cid}",
            "html_url": f"https://github.com/{full_name}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{self.base_url}/repos/{full_name}/issues/{number}",
            "id": cid,
            "node_id": f"IC_{cid}",
            "user": user,
            "created_at": iso(),
            "updated_at": iso(),
            "author_association": "NONE",
            "performed_via_github_app": None,
            "body": body,
        }
        self.comments[cid] = c
        self.comment_issue[cid] = (full_name, number)
        return c

    # -- server -----------------------------------------------------------------------------
    def start(self) -> GitHubDouble:
        try:
            self._server = UvicornThread(self._app(), lifespan="off").start(timeout=10)
        except RuntimeError:
            raise RuntimeError("GitHub double did not start") from None
        self.base_url = self._server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=10)

    def _app(self) -> Starlette:
        return Starlette(
            routes=[Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])]
        )

    async def _dispatch(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._error(400, "Problems parsing JSON")
        call = Call(request.method, path, dict(request.query_params), body)
        self.calls.append(call)
        fault = self._take_fault(request.method, path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.apply:
                with self._lock:
                    self._handle(request, path, body)
            if fault.status:
                if fault.body is None:
                    fault.body = {
                        "message": {
                            500: "Server Error",
                            502: "Bad Gateway",
                            503: "Service Unavailable",
                            504: "Gateway Timeout",
                            404: "Not Found",
                            401: "Bad credentials",
                            422: "Validation Failed",
                        }.get(fault.status, "Error"),
                        "documentation_url": DOCS,
                    }
                self._finish(call, fault.status)
                return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        with self._lock:
            resp = self._handle(request, path, body)
        self._finish(call, resp.status_code)
        return resp

    def _finish(self, call: Call, status: int) -> None:
        with self.answered:
            call.status = status
            call.done_at = time.monotonic()
            self.answered.notify_all()

    def wait_answered(self, method: str, path_regex: str, *, count: int = 1, timeout: float = 30.0) -> bool:
        """Block until ``count`` matching calls have been answered (even if the client
        went away meanwhile)."""
        with self.answered:
            return self.answered.wait_for(
                lambda: sum(c.done_at is not None for c in self.calls_to(method, path_regex)) >= count, timeout
            )

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.method == method and f.path.search(path) and f.times > 0:
                    f.times -= 1
                    return f
        return None

    @staticmethod
    def _error(status: int, message: str, errors: list | None = None) -> JSONResponse:
        body: dict[str, Any] = {"message": message, "documentation_url": DOCS}
        if errors is not None:
            body["errors"] = errors
        body["status"] = str(status)
        return JSONResponse(body, status_code=status)

    def _auth_token(self, request: Request) -> str | None:
        h = request.headers.get("authorization", "")
        parts = h.split(None, 1)
        return parts[1].strip() if len(parts) == 2 and parts[0].lower() in ("token", "bearer") else None

    def _handle(self, request: Request, path: str, body: Any) -> Response:
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if m and request.method == "POST":
            return self._access_token(request, int(m.group(1)))
        tok = self._auth_token(request)
        live = self.tokens.get(tok or "")
        if live is None or live[1] < time.time():
            return self._error(401, "Bad credentials")
        routes = [
            ("GET", r"/repos/([^/]+/[^/]+)", self._get_repo),
            ("GET", r"/repos/([^/]+/[^/]+)/pulls/(\d+)", self._get_pull),
            ("GET", r"/repos/([^/]+/[^/]+)/commits/([^/]+)/check-runs", self._list_check_runs),
            ("POST", r"/repos/([^/]+/[^/]+)/check-runs", self._create_check_run),
            ("PATCH", r"/repos/([^/]+/[^/]+)/check-runs/(\d+)", self._update_check_run),
            ("GET", r"/repos/([^/]+/[^/]+)/check-runs/(\d+)", self._get_check_run),
            ("GET", r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", self._list_comments),
            ("POST", r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", self._create_comment),
            ("PATCH", r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)", self._edit_comment),
            ("GET", r"/repos/([^/]+/[^/]+)/collaborators/([^/]+)/permission", self._permission),
            ("GET", r"/orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", self._membership),
            ("GET", r"/repos/([^/]+/[^/]+)/contents/(.+)", self._contents),
            ("POST", r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/dispatches", self._dispatch_workflow),
            ("GET", r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/runs", self._list_workflow_runs),
        ]
        for method, rx, fn in routes:
            m = re.fullmatch(rx, path)
            if m and request.method == method:
                groups = m.groups()
                if groups and "/" in groups[0] and groups[0] not in self.repos and fn is not self._membership:
                    return self._error(404, "Not Found")
                return fn(request, body, *groups)
        return self._error(404, "Not Found")

    # -- routes ---------------------------------------------------------------------------------
    def _access_token(self, request: Request, installation_id: int) -> Response:
        tok = self._auth_token(request)
        if not tok or request.headers.get("authorization", "").split()[0].lower() != "bearer":
            return self._error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                tok, self.public_key_pem, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]}, leeway=60
            )
        except jwt.PyJWTError as e:
            return self._error(401, f"A JSON web token could not be decoded ({type(e).__name__})")
        if str(claims["iss"]) != str(self.app_id):
            return self._error(401, "'Issuer' claim ('iss') must be an Integer")
        if installation_id not in self.installations:
            return self._error(404, "Not Found")
        token = "ghs_" + secrets.token_hex(18)
        expires = time.time() + self.token_ttl
        self.tokens[token] = (installation_id, expires)
        return JSONResponse(
            {
                "token": token,
                "expires_at": iso(expires),
                "permissions": {
                    "checks": "write",
                    "contents": "read",
                    "issues": "write",
                    "pull_requests": "write",
                    "metadata": "read",
                    "members": "read",
                    "actions": "write",
                },
                "repository_selection": "all",
            },
            status_code=201,
        )

    def _get_repo(self, request, body, full):
        return JSONResponse(self._repo_json(self.repos[full]))

    def _get_pull(self, request, body, full, number):
        pr = self.repos[full].pulls.get(int(number))
        return JSONResponse(pr) if pr else self._error(404, "Not Found")

    def _paginate(self, request: Request, items: list, key: str | None = None, extra: dict | None = None) -> Response:
        try:
            per_page = min(100, max(1, int(request.query_params.get("per_page", 30))))
            page = max(1, int(request.query_params.get("page", 1)))
        except ValueError:
            return self._error(422, "Invalid pagination parameters")
        last = max(1, (len(items) + per_page - 1) // per_page)
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        links = []
        q = {k: v for k, v in request.query_params.items() if k not in ("page", "per_page")}

        def url(p: int) -> str:
            qs = "&".join([f"{k}={v}" for k, v in q.items()] + [f"per_page={per_page}", f"page={p}"])
            return f"{self.base_url}{request.url.path}?{qs}"

        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
            links.append(f'<{url(page - 1)}>; rel="prev"')
        if links:
            headers["link"] = ", ".join(links)
        data: Any = chunk if key is None else {**(extra or {}), key: chunk}
        return JSONResponse(data, headers=headers)

    def _public_run(self, run: dict) -> dict:
        return {k: v for k, v in run.items() if not k.startswith("_")}

    def _list_check_runs(self, request, body, full, ref):
        name = request.query_params.get("check_name")
        runs = [
            self._public_run(r)
            for r in sorted(self.check_runs.values(), key=lambda r: -r["id"])
            if r["_repo"] == full and r["head_sha"] == ref and (name is None or r["name"] == name)
        ]
        return self._paginate(request, runs, "check_runs", {"total_count": len(runs)})

    def _validate_run(self, body: dict, *, creating: bool) -> Response | None:
        if not isinstance(body, dict):
            return self._error(422, "Invalid request.", [{"resource": "CheckRun", "code": "invalid"}])
        if creating:
            for k in ("name", "head_sha"):
                if not isinstance(body.get(k), str) or not body.get(k):
                    return self._error(422, f'Invalid request.\n\n"{k}" wasn\'t supplied.')
        status = body.get("status")
        if status is not None and status not in STATUSES:
            return self._error(
                422, "Validation Failed", [{"resource": "CheckRun", "code": "invalid", "field": "status"}]
            )
        concl = body.get("conclusion")
        if concl is not None and concl not in CONCLUSIONS:
            return self._error(
                422, "Validation Failed", [{"resource": "CheckRun", "code": "invalid", "field": "conclusion"}]
            )
        if status == "completed" and concl is None and creating:
            return self._error(
                422, "Validation Failed", [{"resource": "CheckRun", "code": "missing_field", "field": "conclusion"}]
            )
        out = body.get("output")
        if out is not None:
            if not isinstance(out, dict) or not out.get("title") or not isinstance(out.get("summary"), str):
                return self._error(
                    422, 'Invalid request.\n\nFor \'properties/output\', "title" and "summary" are required.'
                )
            for k in ("summary", "text"):
                if isinstance(out.get(k), str) and len(out[k]) > 65535:
                    return self._error(
                        422,
                        "Validation Failed",
                        [
                            {
                                "resource": "CheckRun",
                                "code": "custom",
                                "field": f"output.{k}",
                                "message": f"output.{k} is too long (maximum is 65535 characters)",
                            }
                        ],
                    )
            anns = out.get("annotations") or []
            if len(anns) > 50:
                return self._error(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "CheckRun",
                            "code": "custom",
                            "field": "annotations",
                            "message": "only 50 annotations may be created per request",
                        }
                    ],
                )
            for a in anns:
                need = ("path", "start_line", "end_line", "annotation_level", "message")
                if any(a.get(k) in (None, "") for k in need) or a["annotation_level"] not in (
                    "notice",
                    "warning",
                    "failure",
                ):
                    return self._error(422, "Invalid request.\n\nInvalid annotation.")
                if ("start_column" in a or "end_column" in a) and a["start_line"] != a["end_line"]:
                    return self._error(
                        422,
                        "Invalid request.\n\nstart_column and end_column may only be used on single-line annotations.",
                    )
        actions = body.get("actions")
        if actions is not None:
            if len(actions) > 3 or any(
                len(a.get("label", "")) > 20 or len(a.get("identifier", "")) > 20 or len(a.get("description", "")) > 40
                for a in actions
            ):
                return self._error(
                    422, "Validation Failed", [{"resource": "CheckRun", "code": "custom", "field": "actions"}]
                )
        return None

    def _apply_run(self, run: dict, body: dict) -> None:
        for k in (
            "name",
            "details_url",
            "external_id",
            "status",
            "conclusion",
            "started_at",
            "completed_at",
            "actions",
        ):
            if k in body:
                run[k] = body[k]
        if body.get("conclusion") and "status" not in body:
            run["status"] = "completed"
        if run["status"] == "completed":
            run["completed_at"] = run.get("completed_at") or iso()
        else:
            run["conclusion"] = None
        out = body.get("output")
        if out:
            anns = out.get("annotations") or []
            self.annotations.setdefault(run["id"], []).extend(anns)
            run["output"].update({k: out.get(k) for k in ("title", "summary", "text") if k in out})
            run["output"]["annotations_count"] = len(self.annotations[run["id"]])

    def _create_check_run(self, request, body, full):
        err = self._validate_run(body, creating=True)
        if err:
            return err
        rid = next(self._ids)
        api = f"{self.base_url}/repos/{full}/check-runs/{rid}"
        run = {
            "id": rid,
            "node_id": f"CR_{rid}",
            "head_sha": body["head_sha"],
            "external_id": "",
            "url": api,
            "html_url": f"https://github.com/{full}/runs/{rid}",
            "details_url": None,
            "status": "queued",
            "conclusion": None,
            "started_at": iso(),
            "completed_at": None,
            "output": {
                "title": None,
                "summary": None,
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{api}/annotations",
            },
            "name": body["name"],
            "check_suite": {"id": 5000 + rid},
            "app": {"id": self.app_id, "slug": self.app_slug, "name": self.app_slug}
            if self._token_app(request) is None
            else self._token_app(request),
            "pull_requests": [],
            "_repo": full,
        }
        self.annotations[rid] = []
        self._apply_run(run, body)
        self.check_runs[rid] = run
        return JSONResponse(self._public_run(run), status_code=201)

    def _token_app(self, request) -> dict | None:
        """Tokens minted by :meth:`add_foreign_token` act as another app (e.g. Actions)."""
        return self.foreign_tokens.get(self._auth_token(request) or "")

    def add_foreign_token(self, app: dict) -> str:
        token = "ghs_foreign_" + secrets.token_hex(8)
        self.tokens[token] = (0, time.time() + 3600)
        self.foreign_tokens[token] = app
        return token

    def _update_check_run(self, request, body, full, rid):
        run = self.check_runs.get(int(rid))
        if run is None or run["_repo"] != full:
            return self._error(404, "Not Found")
        if run["app"]["id"] != (self._token_app(request) or {"id": self.app_id})["id"]:
            return self._error(
                403,
                f"Invalid app_id `{self.app_id}` - check run can only be modified by the GitHub App that created it.",
            )
        err = self._validate_run(body, creating=False)
        if err:
            return err
        self._apply_run(run, body)
        return JSONResponse(self._public_run(run))

    def _get_check_run(self, request, body, full, rid):
        run = self.check_runs.get(int(rid))
        return JSONResponse(self._public_run(run)) if run and run["_repo"] == full else self._error(404, "Not Found")

    def _list_comments(self, request, body, full, number):
        return self._paginate(request, self.issue_comments(full, int(number)))

    def _create_comment(self, request, body, full, number):
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"]:
            return self._error(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
        if len(body["body"]) > 65536:
            return self._error(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "IssueComment",
                        "code": "unprocessable",
                        "field": "data",
                        "message": "Body is too long (maximum is 65536 characters)",
                    }
                ],
            )
        return JSONResponse(self._new_comment(full, int(number), body["body"], self._bot_user()), status_code=201)

    def _edit_comment(self, request, body, full, cid):
        c = self.comments.get(int(cid))
        if c is None or self.comment_issue[int(cid)][0] != full:
            return self._error(404, "Not Found")
        if c["user"]["login"] != f"{self.app_slug}[bot]":
            return self._error(403, "Resource not accessible by integration")
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            return self._error(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
        c["body"] = body["body"]
        c["updated_at"] = iso()
        return JSONResponse(c)

    def _permission(self, request, body, full, user):
        repo = self.repos[full]
        role = repo.collaborators.get(user)
        if role is None:
            # Not a collaborator: GitHub answers with the public "read" role for public repos.
            return JSONResponse({"permission": "read", "role_name": "read", "user": self._user(user)})
        return JSONResponse(
            {"permission": ROLE_TO_LEGACY[role], "role_name": role, "user": {**self._user(user), "permissions": {}}}
        )

    def _membership(self, request, body, org, slug, user):
        team = self.teams.get((org, slug))
        if team is None or user not in team:
            return self._error(404, "Not Found")
        return JSONResponse(
            {
                "url": f"{self.base_url}/orgs/{org}/teams/{slug}/memberships/{user}",
                "role": "member",
                "state": team[user],
            }
        )

    def _contents(self, request, body, full, path):
        repo = self.repos[full]
        ref = request.query_params.get("ref", repo.default_branch)
        text = repo.files.get((ref, path))
        if text is None:
            return self._error(404, "Not Found")
        raw = text.encode()
        return JSONResponse(
            {
                "type": "file",
                "encoding": "base64",
                "size": len(raw),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "content": base64.encodebytes(raw).decode(),
                "sha": secrets.token_hex(20),
                "url": f"{self.base_url}/repos/{full}/contents/{path}?ref={ref}",
            }
        )

    def _dispatch_workflow(self, request, body, full, workflow):
        repo = self.repos[full]
        if workflow not in repo.workflows:
            return self._error(404, "Not Found")
        if not isinstance(body, dict) or not body.get("ref"):
            return self._error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        inputs = body.get("inputs") or {}
        if len(inputs) > 10 or not all(isinstance(v, str) for v in inputs.values()):
            return self._error(422, "Invalid request.\n\nFor 'properties/inputs', values must be strings.")
        self.dispatches.append({"repo": full, "workflow": workflow, "ref": body["ref"], "inputs": inputs})
        # GitHub queues a run at once; its display_title is the workflow's run-name
        rid = next(self._ids)
        title = re.sub(
            r"\$\{\{\s*inputs\.(\w+)\s*\}\}",
            lambda m: str(inputs.get(m.group(1), "")),
            repo.run_names.get(workflow, workflow),
        )
        self.workflow_runs.append(
            {
                "id": rid,
                "name": workflow,
                "node_id": f"WFR_{rid}",
                "display_title": title,
                "event": "workflow_dispatch",
                "status": "queued",
                "conclusion": None,
                "head_branch": body["ref"],
                "head_sha": secrets.token_hex(20),
                "path": f".github/workflows/{workflow}",
                "run_number": rid,
                "created_at": iso(),
                "updated_at": iso(),
                "url": f"{self.base_url}/repos/{full}/actions/runs/{rid}",
                "html_url": f"https://github.com/{full}/actions/runs/{rid}",
                "repository": self._repo_json(repo),
                "_repo": full,
                "_workflow": workflow,
            }
        )
        return Response(status_code=204)

    def _list_workflow_runs(self, request, body, full, workflow):
        repo = self.repos[full]
        if workflow not in repo.workflows:
            return self._error(404, "Not Found")
        event = request.query_params.get("event")
        runs = [
            self._public_run(r)
            for r in sorted(self.workflow_runs, key=lambda r: -r["id"])
            if r["_repo"] == full and r["_workflow"] == workflow and (event is None or r["event"] == event)
        ]
        return self._paginate(request, runs, "workflow_runs", {"total_count": len(runs)})
