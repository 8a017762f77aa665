#!/usr/bin/env python3
"""Run the lab-ci bot locally, end to end, against the GitHub REST double.

Usage (from the repository root)::

    .venv/bin/python scripts/bot_local_demo.py [--pr N] [--teacher GGUF] [--github-latency S] [--keep]

Everything runs on 127.0.0.1 with real parts, except GitHub itself: github.com is
unreachable here, so its REST API is played by the test double ``tests/bot/ghdouble.py``
(the only stand-in; it speaks GitHub's wire format and records every call). The demo

1. starts the double and registers a GitHub App key (fresh RSA), an installation and the
   repository ``octo-org/taxonomy`` (maintainer ``maintainer``, dispatch workflow);
2. builds the "GitHub-side" bare repository from the real corpus
   (``$LAB_CI_SHARED/corpus/taxonomy-history.bundle``, default ``../shared``):
   ``pr/N`` becomes ``refs/pull/N/head`` as on GitHub; plus one pull request adding the
   example taxonomy's valid antonyms skill, for the preview with the tiny teacher
   (``.cache/models/teacher.gguf``, built by ``scripts/build_tiny_models.py`` if missing);
3. starts the real ``lab-ci serve`` as a subprocess, configured by environment variables;
4. posts real, HMAC-signed webhook payloads from ``shared/github/webhook-payloads``
   (adapted only in repository / pull request fields): an invalid corpus PR, the valid
   example PR, its merge, ``/lab approve-build`` by a contributor and by a maintainer;
5. after each delivery waits until the bot is idle (its ``/metrics``: no job queued or
   running), then reads each effect from the double's records and prints a transcript.
   It waits on state, never on time: a check run read while a later job still has to
   update it would make the transcript flaky.

Exit 0 when every expected effect happened, 1 otherwise (listing what was missing). The
server and the double are always stopped, unless ``--keep`` (then: until Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "tests" / "bot"), str(REPO_ROOT / "tests")]

import httpx  # noqa: E402
from botlib import (  # noqa: E402  (the bot tests' helpers: double, payloads, keys)
    APP_ID,
    INSTALLATION_ID,
    OWNER,
    REPO,
    SHARED,
    GitHubDouble,
    adapt,
    dispatch_run_name,
    free_port,
    load_payload,
    new_rsa_key,
    run_git,
)

from lab_ci.bot.handlers import BUILD_CHECK, PREVIEW_CHECK, PREVIEW_MARKER, SCHEMA_CHECK  # noqa: E402
from lab_ci.bot.webhooks import sign  # noqa: E402

SECRET = "local-demo-webhook-secret"
EXAMPLE_LEAF = "compositional_skills/linguistics/antonyms"
EXAMPLE_PR = 9001
MODELS = REPO_ROOT / ".cache" / "models"


def say(text: str = "") -> None:
    print(text, flush=True)


def bot_idle(url: str) -> bool:
    """True when the bot's queue has no job queued or running (from ``GET /metrics``)."""
    try:
        text = httpx.get(url + "/metrics", timeout=5).text
    except httpx.TransportError:
        return False
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("labci_queue_depth", "labci_jobs_running"):
            values[name] = float(value)
    return values.get("labci_queue_depth") == 0 and values.get("labci_jobs_running") == 0


def wait_for(what, timeout: float, server: subprocess.Popen):
    """Poll ``what()`` until it returns something truthy (returned) or ``timeout`` s pass
    (None); gives up at once if the server process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := what():
            return found
        if server.poll() is not None:
            say(f"  !! lab-ci serve exited with {server.returncode}")
            return None
        time.sleep(0.1)
    return None


# -- set-up --------------------------------------------------------------------------
def start_double(public_pem: str, latency: float = 0.0) -> GitHubDouble:
    double = GitHubDouble(app_id=APP_ID, public_key_pem=public_pem).start()
    if latency > 0:  # a slow GitHub: every check run write answers late (and still lands)
        double.fail("POST", r"/check-runs$", 0, delay=latency, times=10**6)
        double.fail("PATCH", r"/check-runs/\d+$", 0, delay=latency, times=10**6)
    double.add_installation(INSTALLATION_ID, OWNER)
    repo = double.add_repo(REPO)
    repo.collaborators.update({"maintainer": "maintain"})
    repo.workflows.add("lab-ci-build-dispatch.yml")
    repo.run_names["lab-ci-build-dispatch.yml"] = dispatch_run_name()
    repo.files[("main", ".github/lab-ci.yaml")] = "preview:\n  samples: 1\n  max_samples: 2\n"
    return double


def github_side_repo(tmp: Path) -> Path:
    """The corpus as GitHub holds it (refs/pull/N/head), plus the example PR."""
    bundle = SHARED / "corpus" / "taxonomy-history.bundle"
    if not bundle.is_file():
        raise SystemExit(f"bot_local_demo: corpus bundle not found: {bundle} (set LAB_CI_SHARED)")
    bare = tmp / "github" / OWNER / "taxonomy.git"
    run_git("clone", "--quiet", "--mirror", str(bundle), str(bare))
    refs = run_git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/pr/", cwd=bare)
    stdin = "".join(
        f"update refs/pull/{ref.rsplit('/', 1)[1]}/head {sha}\n"
        for ref, sha in (ln.split() for ln in refs.splitlines())
    )
    subprocess.run(["git", "update-ref", "--stdin"], input=stdin, text=True, cwd=bare, check=True)
    # the example PR: the example taxonomy's antonyms skill on top of main
    work = tmp / "contributor"
    run_git("clone", "--quiet", "--branch", "main", str(bare), str(work))
    shutil.copytree(REPO_ROOT / "taxonomy" / EXAMPLE_LEAF, work / EXAMPLE_LEAF, dirs_exist_ok=True)
    run_git("add", EXAMPLE_LEAF, cwd=work)
    run_git("commit", "--quiet", "-m", "Add antonyms skill (lab-ci example taxonomy)", cwd=work)
    run_git("push", "--quiet", str(bare), f"HEAD:refs/pull/{EXAMPLE_PR}/head", cwd=work)
    return bare


def teacher_model(teacher: Path | None) -> Path:
    """The GGUF teacher for previews: ``--teacher``, else the tiny one (built if missing)."""
    if teacher is not None:
        if not teacher.is_file():
            raise SystemExit(f"bot_local_demo: teacher model not found: {teacher}")
        return teacher
    teacher = MODELS / "teacher.gguf"
    if not teacher.is_file():
        say(f"building the tiny models into {MODELS} ...")
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "build_tiny_models.py"), "--out", str(MODELS)], check=True
        )
    return teacher


def start_server(tmp: Path, key_file: Path, api_url: str, teacher: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "LAB_CI_WEBHOOK_SECRET": SECRET,
        "LAB_CI_APP_ID": str(APP_ID),
        "LAB_CI_PRIVATE_KEY_PATH": str(key_file),
        "LAB_CI_GITHUB_API_URL": api_url,
        "LAB_CI_GIT_URL": f"file://{tmp}/github/{{repo}}.git",
        "LAB_CI_DATA_DIR": str(tmp / "bot-data"),
        "LAB_CI_TEACHER": str(teacher),
        "LAB_CI_WORKERS": "2",
        "PYTHONPATH": str(REPO_ROOT),
    }
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab_ci", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    if not wait_for(healthy, 60, proc):
        stop_server(proc)
        raise SystemExit(
            f"bot_local_demo: lab-ci serve did not become healthy; log:\n{(tmp / 'serve.log').read_text()[-3000:]}"
        )
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- deliveries ----------------------------------------------------------------------
class Deliverer:
    def __init__(self, url: str, clone_url: str):
        self.url, self.clone_url, self.n = url, clone_url, 0

    def post(self, event: str, payload: dict) -> int:
        self.n += 1
        body = json.dumps(payload).encode()
        r = httpx.post(
            f"{self.url}/webhook",
            content=body,
            timeout=10,
            headers={
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": f"local-demo-{os.getpid()}-{self.n}",
                "X-GitHub-Hook-Installation-Target-Type": "integration",
                "X-GitHub-Hook-Installation-Target-ID": str(APP_ID),
                "X-Hub-Signature-256": sign(SECRET.encode(), body),
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/lab-ci-demo",
            },
        )
        say(f"  -> POST /webhook  X-GitHub-Event: {event:<14} -> {r.status_code}")
        return r.status_code

    def pull_request(self, action: str, number: int, head: str, base: str, **fields) -> int:
        name = "opened.with-organization.payload.json" if action == "opened" else f"{action}.payload.json"
        p = adapt(
            load_payload(f"pull_request/{name}"),
            clone_url=self.clone_url,
            number=number,
            head_sha=head,
            base_sha=base,
            draft=False,
        )
        p["action"] = action
        p["pull_request"].update({"state": "open", **fields})
        return self.post("pull_request", p)

    def comment(self, number: int, body: str, user: str) -> int:
        p = adapt(load_payload("issue_comment/created.with-installation.payload.json"), clone_url=self.clone_url)
        p["issue"].update(number=number, pull_request={"url": f"https://api.github.com/repos/{REPO}/pulls/{number}"})
        p["comment"].update(body=body, id=10_000 + self.n)
        p["comment"]["user"].update(login=user, type="User")
        p["sender"].update(login=user, type="User")
        return self.post("issue_comment", p)


# -- reading effects from the double ---------------------------------------------------
# The double's server thread changes its records under ``double._lock``; reading them
# while it does would fail ("dictionary changed size during iteration"), so we hold it.
def finished_run(double: GitHubDouble, name: str, sha: str, status: str = "completed"):
    with double._lock:
        runs = [dict(r) for r in double.runs_named(REPO, name, sha) if r["status"] == status]
    return runs[-1] if runs else None


def annotations(double: GitHubDouble, run: dict) -> list[dict]:
    with double._lock:
        return list(double.annotations.get(run["id"], []))


def show_run(double: GitHubDouble, run: dict) -> None:
    anns = annotations(double, run)
    say(
        f"  check run {run['name']}: {run['status']}/{run['conclusion']} - {run['output'].get('title')} ({len(anns)} annotations)"
    )
    if anns:
        a = anns[0]
        say(f"    first: {a['path']}:{a['start_line']} [{a['annotation_level']}] {a['message']}")


def bot_comments(double: GitHubDouble, number: int) -> list[dict]:
    with double._lock:
        return [dict(c) for c in double.issue_comments(REPO, number) if c["user"]["type"] == "Bot"]


def show_comment(body: str, lines: int = 6) -> None:
    for line in [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("<!--")][:lines]:
        say(f"    | {line[:130]}")


def scenario(double: GitHubDouble, bare: Path, server: subprocess.Popen, url: str, invalid_pr: int) -> list[str]:
    """Every step of the walkthrough; returns the expected effects that did not happen."""
    missing: list[str] = []
    send = Deliverer(url, f"file://{bare}")
    main = run_git("rev-parse", "refs/heads/main", cwd=bare)

    def expect(label: str, what, timeout: float = 90):
        found = wait_for(what, timeout, server)
        if not found:
            missing.append(label)
            say(f"  !! MISSING after {timeout:.0f}s: {label}")
        return found

    def settle(timeout: float = 300) -> None:
        """Wait until the bot has done everything the last delivery asked for."""
        if not wait_for(lambda: bot_idle(url), timeout, server):
            missing.append("the bot going idle")
            say(f"  !! the bot still had jobs after {timeout:.0f}s")

    def expect_run(
        name: str, sha: str, conclusion: str | None, *, status: str = "completed", timeout: float = 90, what: str = ""
    ):
        """Wait until the bot is idle, then read check run ``name`` on ``sha`` in
        ``status``, show it, and count it missing unless it ended with ``conclusion``."""
        label = f"{name} {status}/{conclusion} {what}".rstrip()
        settle(max(timeout, 300))
        run = expect(label, lambda: finished_run(double, name, sha, status), timeout)
        if run:
            show_run(double, run)
            if run["conclusion"] != conclusion:
                missing.append(f"{label} (got {run['conclusion']}: {run['output'].get('title')})")
                say(f"    summary: {(run['output'].get('summary') or '').strip()[:300]}")
        return run

    say(f"\n[1] pull_request.opened: corpus PR #{invalid_pr} (refs/pull/{invalid_pr}/head)")
    head = run_git("rev-parse", f"refs/pull/{invalid_pr}/head", cwd=bare)
    base = run_git("rev-parse", f"refs/pull/{invalid_pr}/head^", cwd=bare)
    double.add_pull(REPO, invalid_pr, head_sha=head, base_sha=base)
    send.pull_request("opened", invalid_pr, head, base)
    if (run := expect_run(SCHEMA_CHECK, head, "failure", what=f"on PR #{invalid_pr}")) and not annotations(double, run):
        missing.append(f"annotations on PR #{invalid_pr}")

    say(f"\n[2] pull_request.opened: example PR #{EXAMPLE_PR} adds {EXAMPLE_LEAF}/qna.yaml (valid)")
    head = run_git("rev-parse", f"refs/pull/{EXAMPLE_PR}/head", cwd=bare)
    double.add_pull(REPO, EXAMPLE_PR, head_sha=head, base_sha=main)
    send.pull_request("opened", EXAMPLE_PR, head, main)
    expect_run(SCHEMA_CHECK, head, "success", what=f"on PR #{EXAMPLE_PR}")
    say("  (preview: the tiny teacher generates samples with llama.cpp ...)")
    preview = expect_run(PREVIEW_CHECK, head, "success", timeout=300, what=f"on PR #{EXAMPLE_PR}")
    comments = None
    if preview and preview["conclusion"] == "success":  # the comment is posted before the check completes
        comments = expect(
            "sticky preview comment",
            lambda: [c for c in bot_comments(double, EXAMPLE_PR) if c["body"].startswith(PREVIEW_MARKER)],
            timeout=30,
        )
    else:
        missing.append("sticky preview comment")
    if comments:
        say(f"  sticky comments on PR #{EXAMPLE_PR}: {len(comments)}; first lines:")
        show_comment(comments[0]["body"])

    say(f"\n[3] pull_request.closed (merged): PR #{EXAMPLE_PR} fast-forwarded onto main")
    run_git("update-ref", "refs/heads/main", head, main, cwd=bare)
    double.repos[REPO].pulls[EXAMPLE_PR].update(state="closed", merged=True, merge_commit_sha=head)
    send.pull_request("closed", EXAMPLE_PR, head, main, state="closed", merged=True, merge_commit_sha=head)
    if run := expect_run(BUILD_CHECK, head, "action_required", what="(waiting for approval)"):
        say(f"    buttons: {[a['label'] for a in run.get('actions') or []]}")

    say(f"\n[4] issue_comment: contributor writes '/lab approve-build {head[:12]}'")
    before = len(bot_comments(double, EXAMPLE_PR))
    send.comment(EXAMPLE_PR, f"/lab approve-build {head[:12]}", "contributor")
    if reply := expect("refusal for the contributor", lambda: bot_comments(double, EXAMPLE_PR)[before:]):
        show_comment(reply[-1]["body"], lines=2)
        if "only maintainers" not in reply[-1]["body"] or double.dispatches:
            missing.append("a polite refusal and no dispatch")

    say(f"\n[5] issue_comment: maintainer writes '/lab approve-build {head[:12]}'")
    send.comment(EXAMPLE_PR, f"/lab approve-build {head[:12]}", "maintainer")
    if dispatches := expect("workflow dispatch", lambda: list(double.dispatches)):
        d = dispatches[0]
        say(f"  workflow_dispatch {d['workflow']} on {d['ref']}: inputs {d['inputs']}")
    expect_run(BUILD_CHECK, head, None, status="in_progress", timeout=30, what="(build dispatched)")
    return missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pr", type=int, default=100, help="invalid corpus pull request to check (default 100)")
    ap.add_argument(
        "--teacher", type=Path, help=f"GGUF teacher for previews (default {MODELS.relative_to(REPO_ROOT)}/teacher.gguf)"
    )
    ap.add_argument(
        "--github-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="answer every check run write S seconds late, like a slow GitHub (default 0)",
    )
    ap.add_argument("--keep", action="store_true", help="leave the server and the double running until Ctrl-C")
    args = ap.parse_args(argv)

    # Ctrl-C (even when started in the background) and SIGTERM both end in the finally below
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="lab-ci-bot-demo-"))
    double = server = None
    try:
        say(f"lab-ci bot local demo (work folder {tmp})")
        private_pem, public_pem = new_rsa_key()
        key_file = tmp / "app.pem"
        key_file.write_text(private_pem)
        key_file.chmod(0o600)
        double = start_double(public_pem, args.github_latency)
        say(f"GitHub REST double (test double; github.com is unreachable): {double.base_url}")
        bare = github_side_repo(tmp)
        if subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/pull/{args.pr}/head"], cwd=bare, capture_output=True
        ).returncode:
            raise SystemExit(f"bot_local_demo: corpus has no pull request #{args.pr}")
        say(f"GitHub-side repository {REPO}: {bare}")
        server, url = start_server(tmp, key_file, double.base_url, teacher_model(args.teacher))
        say(f"lab-ci serve: {url} (log {tmp / 'serve.log'})")
        missing = scenario(double, bare, server, url, args.pr)
        say(f"\n{len(double.calls)} REST calls recorded by the double.")
        if missing:
            say("FAILED, missing: " + "; ".join(missing))
        else:
            say("OK: check, preview, sticky comment, build approval and dispatch all happened.")
        if args.keep:
            say(f"\n--keep: try  curl {url}/healthz  and  curl {url}/metrics  (Ctrl-C to stop)")
            try:
                while server.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                say(f"stopping ... (work folder kept: {tmp})")
        return 1 if missing else 0
    finally:
        if server is not None:
            stop_server(server)
        if double is not None:
            double.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C during the walkthrough: everything is already stopped
        sys.exit(130)
