"""Helpers and fixtures for the bot's GitHub logic: the REST double, an app key made in the test,
a real "GitHub-side" bare repository built from the corpus, and real webhook payloads
adapted only in repository / pull request fields."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).parent))

from ghdouble import GitHubDouble, UvicornThread  # noqa: E402,F401

from labtest import REPO_ROOT, SHARED, WEBHOOK_PAYLOADS, run_git  # noqa: E402,F401


def wait_for(predicate, timeout: float = 30.0, *, interval: float = 0.02, proc: subprocess.Popen | None = None) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` s pass (False); with
    ``proc``, fail at once if that process exits meanwhile."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else b""
            raise AssertionError(
                f"process exited {proc.returncode}: {(out.decode() if isinstance(out, bytes) else out)[-2000:]}"
            )
        time.sleep(interval)
    return False


def free_port() -> int:
    """A loopback port free right now (for subprocesses that bind it themselves)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_rsa_key() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh 2048-bit RSA key (the GitHub App's key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


APP_ID = 4242
INSTALLATION_ID = 77
OWNER, NAME = "octo-org", "taxonomy"
REPO = f"{OWNER}/{NAME}"


@pytest.fixture(scope="session")
def app_key() -> tuple[str, str]:
    """(private PEM, public PEM): an RSA key generated for this test run."""
    return new_rsa_key()


@pytest.fixture
def app_key_file(app_key, tmp_path) -> Path:
    """The app's private key as a PEM file (for LAB_CI_PRIVATE_KEY_PATH)."""
    path = tmp_path / "app.pem"
    path.write_text(app_key[0])
    return path


def dispatch_run_name() -> str:
    """The ``run-name`` of the example dispatch workflow (what GitHub would show)."""
    import yaml

    return yaml.safe_load((REPO_ROOT / "examples" / "workflows" / "lab-ci-build-dispatch.yml").read_text())["run-name"]


@pytest.fixture
def ghdouble(app_key) -> GitHubDouble:
    d = GitHubDouble(app_id=APP_ID, public_key_pem=app_key[1]).start()
    d.add_installation(INSTALLATION_ID, OWNER)
    repo = d.add_repo(REPO)
    repo.collaborators.update({"maintainer": "maintain", "admin-user": "admin", "writer": "write"})
    repo.workflows.add("lab-ci-build-dispatch.yml")
    repo.run_names["lab-ci-build-dispatch.yml"] = dispatch_run_name()
    yield d
    d.stop()


@pytest.fixture
def transport(ghdouble):
    from lab_ci.bot.github import Transport

    return Transport(
        base_url=ghdouble.base_url,
        timeout=2,
        retries=3,
        backoff_factor=0.05,
        max_rate_limit_wait=5,
        secondary_rate_wait=1,
    )


@pytest.fixture
def github_app(app_key, transport):
    from lab_ci.bot.github import GitHubApp

    return GitHubApp(APP_ID, app_key[0], transport=transport)


@pytest.fixture
def gh(github_app):
    """A GitHubClient for the test installation, talking to the double."""
    return github_app.client(INSTALLATION_ID)


@pytest.fixture(scope="session")
def github_side_repo(corpus_mirror, tmp_path_factory) -> Path:
    """The corpus as GitHub would hold it: a bare repo with ``main`` and, for every
    ``pr/N`` branch, ``refs/pull/N/head`` (what the bot fetches, like on GitHub)."""
    dest = tmp_path_factory.mktemp("github-side") / OWNER / f"{NAME}.git"
    run_git("clone", "--quiet", "--bare", str(corpus_mirror), str(dest))
    refs = run_git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/pr/", cwd=dest)
    lines = [ln.split() for ln in refs.splitlines() if ln]
    stdin = "".join(f"update refs/pull/{ref.rsplit('/', 1)[1]}/head {sha}\n" for ref, sha in lines)
    subprocess.run(["git", "update-ref", "--stdin"], input=stdin, text=True, cwd=dest, check=True)
    return dest


def load_payload(name: str) -> dict:
    return json.loads((WEBHOOK_PAYLOADS / name).read_text())


def adapt(
    payload: dict,
    *,
    clone_url: str,
    base_url: str = "https://api.github.com",
    number: int | None = None,
    head_sha: str | None = None,
    base_sha: str | None = None,
    head_ref: str | None = None,
    default_branch: str = "main",
    draft: bool | None = None,
) -> dict:
    """A real webhook payload adapted to our test repository (repository / PR fields only)."""
    p = copy.deepcopy(payload)
    repo = p.setdefault("repository", {})
    repo.update(
        {
            "name": NAME,
            "full_name": REPO,
            "clone_url": clone_url,
            "default_branch": default_branch,
            "url": f"{base_url}/repos/{REPO}",
        }
    )
    repo.setdefault("owner", {})["login"] = OWNER
    p["installation"] = {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc="}
    pr = p.get("pull_request")
    if pr is not None:
        if number is not None:
            pr["number"] = number
            p["number"] = number
        if head_sha:
            pr["head"]["sha"] = head_sha
        if head_ref:
            pr["head"]["ref"] = head_ref
        if base_sha:
            pr["base"]["sha"] = base_sha
        pr["base"]["ref"] = default_branch
        pr["base"]["repo"] = {
            **pr["base"].get("repo", {}),
            "full_name": REPO,
            "name": NAME,
            "clone_url": clone_url,
            "default_branch": default_branch,
        }
        if draft is not None:
            pr["draft"] = draft
    return p


# ---------------------------------------------------------------------------------------
# The real bot: the webhook app + SQLite queue + workers, with our handlers, on loopback
# ---------------------------------------------------------------------------------------
WEBHOOK_SECRET = b"webhook-secret-for-tests"


def signed_headers(event: str, body: bytes, *, delivery_id: str | None = None, secret: bytes | None = WEBHOOK_SECRET):
    """The headers GitHub sends with a delivery of ``body`` to our App (signed with
    ``secret``; unsigned when None)."""
    import uuid

    from lab_ci.bot.webhooks import sign

    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": str(APP_ID),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return headers


class BotServer:
    """``lab-ci serve`` in-process: create_app + build_worker (which calls
    ``lab_ci.bot.handlers.configure``), uvicorn on 127.0.0.1, real signed deliveries."""

    def __init__(self, settings):
        from lab_ci.bot.app import create_app
        from lab_ci.bot.cli import build_worker
        from lab_ci.bot.metrics import Metrics
        from lab_ci.bot.queue import SQLiteQueue

        self.settings = settings
        self.queue = SQLiteQueue(settings.queue_path, synchronous="NORMAL")
        self.worker = build_worker(settings, self.queue, Metrics())
        self.worker.poll_interval = 0.05
        self.app = create_app(settings, self.queue, worker=self.worker)
        self._n = 0

    @property
    def services(self):
        return self.worker.services

    def start(self) -> BotServer:
        self.http = UvicornThread(self.app, lifespan="on").start()
        self.url = self.http.url
        return self

    def stop(self) -> None:
        self.http.stop(timeout=30)
        self.queue.close()

    def deliver(
        self, event: str, payload: dict, *, delivery_id: str | None = None, secret: bytes | None = WEBHOOK_SECRET
    ):
        import httpx

        body = json.dumps(payload).encode()
        headers = signed_headers(event, body, delivery_id=delivery_id, secret=secret)
        return httpx.post(f"{self.url}/webhook", content=body, headers=headers, timeout=10)

    def wait_idle(self, timeout: float = 120.0) -> list[dict]:
        """Wait until no job is queued or running; returns all job rows."""
        import time

        deadline = time.time() + timeout
        while time.time() < deadline:
            # one snapshot: two queries (queued, then running) could miss a child job
            # that a finishing job enqueued between them
            jobs = self.queue.jobs()
            busy = [j for j in jobs if j["state"] in ("queued", "running")]
            if not busy:
                return jobs
            time.sleep(0.05)
        raise AssertionError(
            f"jobs still busy after {timeout}s: {[(j['kind'], j['state'], j.get('last_error')) for j in busy]}"
        )


@pytest.fixture
def bot_settings(tmp_path, app_key, ghdouble):
    from lab_ci.bot.settings import Settings

    return Settings(
        github_timeout=2,
        github_retries=2,
        webhook_secret=WEBHOOK_SECRET,
        app_id=str(APP_ID),
        private_key=app_key[0],
        github_api_url=ghdouble.base_url,
        data_dir=tmp_path / "bot-data",
        workers=2,
        lease_seconds=10,
        backoff_base=0.2,
        backoff_max=1.0,
    )


@pytest.fixture
def bot(bot_settings):
    server = BotServer(bot_settings).start()
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------
# Hostile pull requests against a real `lab-ci serve` process (issue 10's attacks)
# ---------------------------------------------------------------------------------------
def alias_bomb(levels: int = 8, fanout: int = 9) -> bytes:
    """A qna.yaml whose anchors nest aliases ``levels`` deep (the mapping shape of issue
    10: ``b: &b {q: *a, r: *a, ...}`` ..., then ``seed_examples: [*h]``): a few hundred
    bytes that expand to ``fanout ** levels`` nodes."""
    names = "abcdefghijklmnop"
    keys = "qrstuvwxyz"[:fanout]
    lines = ["version: 3", "created_by: mallory", "task_description: bomb", "a: &a {q: x, r: y}"]
    for i in range(1, levels):
        prev, cur = names[i - 1], names[i]
        lines.append(f"{cur}: &{cur} {{" + ", ".join(f"{k}: *{prev}" for k in keys) + "}")
    lines.append(f"seed_examples: [*{names[levels - 1]}]")
    return ("\n".join(lines) + "\n").encode()


def github_side_with_prs(root: Path, prs: dict[int, dict[str, bytes]]) -> tuple[Path, str, dict[int, str]]:
    """A bare "GitHub-side" repository under ``root``: ``main`` with one README commit,
    and for every pull request number a ``refs/pull/N/head`` commit on top of main
    adding the given files. Returns (bare path, main sha, {number: head sha})."""
    work = root / "contributor"
    work.mkdir(parents=True)
    run_git("init", "--quiet", "--initial-branch=main", cwd=work)
    (work / "README.md").write_text("taxonomy\n")
    run_git("add", "-A", cwd=work)
    run_git("commit", "--quiet", "-m", "main", cwd=work)
    main = run_git("rev-parse", "HEAD", cwd=work)
    bare = root / "github" / OWNER / f"{NAME}.git"
    bare.parent.mkdir(parents=True)
    run_git("clone", "--quiet", "--bare", str(work), str(bare))
    heads = {}
    for number, files in prs.items():
        run_git("checkout", "--quiet", "-B", f"pr{number}", main, cwd=work)
        for rel, data in files.items():
            path = work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        run_git("add", "-A", cwd=work)
        run_git("commit", "--quiet", "-m", f"pull request {number}", cwd=work)
        heads[number] = run_git("rev-parse", "HEAD", cwd=work)
        run_git("push", "--quiet", str(bare), f"HEAD:refs/pull/{number}/head", cwd=work)
    return bare, main, heads


def pr_opened(clone_url: str, number: int, head: str, base: str, *, user: str = "contributor") -> dict:
    """A real ``pull_request.opened`` payload for our repository (adapted fields only)."""
    p = adapt(
        load_payload("pull_request/opened.with-organization.payload.json"),
        clone_url=clone_url,
        number=number,
        head_sha=head,
        base_sha=base,
        draft=False,
    )
    p["action"] = "opened"
    p["pull_request"]["state"] = "open"
    p["pull_request"]["user"]["login"] = user
    return p


def pr_comment(clone_url: str, number: int, body: str, user: str, *, author: str = "contributor", cid: int) -> dict:
    """A real ``issue_comment.created`` payload: ``user`` writes ``body`` on pull request
    ``number`` (opened by ``author``)."""
    p = adapt(load_payload("issue_comment/created.with-installation.payload.json"), clone_url=clone_url)
    p["issue"].update(number=number, pull_request={"url": f"https://api.github.com/repos/{REPO}/pulls/{number}"})
    p["issue"]["user"]["login"] = author
    p["comment"].update(body=body, id=cid)
    p["comment"]["user"].update(login=user, type="User")
    p["sender"].update(login=user, type="User")
    return p


class ServeProcess:
    """The real ``lab-ci serve`` as a subprocess (environment-configured, as operators
    run it) against the GitHub double; killed at the end whatever it is doing."""

    def __init__(
        self,
        tmp_path: Path,
        ghdouble: GitHubDouble,
        private_pem: str,
        env: dict[str, str] | None = None,
        *,
        check_target: str | None = None,
    ):
        """``check_target``: a ``module:function`` of tests/bot that every check's job
        process runs instead of the checker (see serve_with_target.py)."""
        self.check_target = check_target
        self.data = tmp_path / "serve-data"
        self.log_path = tmp_path / "serve.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LAB_CI_")},
            "LAB_CI_SHARED": str(SHARED),
            "LAB_CI_WEBHOOK_SECRET": WEBHOOK_SECRET.decode(),
            "LAB_CI_APP_ID": str(APP_ID),
            "LAB_CI_PRIVATE_KEY": private_pem,
            "LAB_CI_GITHUB_API_URL": ghdouble.base_url,
            "LAB_CI_DATA_DIR": str(self.data),
            "LAB_CI_GITHUB_TIMEOUT": "5",
            "LAB_CI_GITHUB_RETRIES": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(Path(__file__).parent)]),
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self._n = 0

    def start(self) -> ServeProcess:
        import httpx

        port = free_port()
        self._log = open(self.log_path, "w")
        program = ["-m", "lab_ci"]
        if self.check_target:
            program = [str(Path(__file__).parent / "serve_with_target.py"), self.check_target]
        self.proc = subprocess.Popen(
            [sys.executable, *program, "serve", "--port", str(port), "--log-level", "info"],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        if not wait_for(healthy, 60, interval=0.1, proc=self.proc):
            self.stop()
            raise AssertionError(f"lab-ci serve did not become healthy:\n{self.log()[-3000:]}")
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def deliver(self, event: str, payload: dict, *, timeout: float = 10.0):
        """POST one signed delivery; GitHub gives up after 10 s, and so do we."""
        import httpx

        body = json.dumps(payload).encode()
        return httpx.post(f"{self.url}/webhook", content=body, headers=signed_headers(event, body), timeout=timeout)

    def jobs(self, kind: str | None = None) -> list[dict]:
        """The queue's job rows, read from the server's database file (read-only)."""
        import sqlite3

        db = sqlite3.connect(f"file:{self.data / 'queue.db'}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            sql, args = "SELECT * FROM jobs", ()
            if kind:
                sql, args = sql + " WHERE kind = ?", (kind,)
            return [dict(r) for r in db.execute(sql + " ORDER BY id", args)]
        finally:
            db.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def corpus_pr_payload(github_side_repo: Path, n: int, *, action: str = "opened", draft: bool = False) -> dict:
    """A real ``pull_request`` payload for corpus pull request ``n`` (head and base from
    the GitHub-side repository)."""
    head = run_git("rev-parse", f"refs/pull/{n}/head", cwd=github_side_repo)
    base = run_git("rev-parse", "refs/heads/main", cwd=github_side_repo)
    name = "opened.with-organization.payload.json" if action == "opened" else f"{action}.payload.json"
    p = adapt(
        load_payload(f"pull_request/{name}"),
        clone_url=f"file://{github_side_repo}",
        number=n,
        head_sha=head,
        base_sha=base,
        draft=draft,
    )
    p["action"] = action
    p["pull_request"]["state"] = "open"
    return p
