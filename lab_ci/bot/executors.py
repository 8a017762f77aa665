"""Where approved release builds run.

- ``actions`` (default): a GitHub Actions ``workflow_dispatch`` of the repository's build
  workflow (``build.workflow`` in ``.github/lab-ci.yaml``, run on self-hosted GPU
  runners) with inputs ``sha`` and ``request_id``. The workflow's ``run-name`` must carry
  ``lab-ci build request <id>`` (see ``examples/workflows/lab-ci-build-dispatch.yml``);
  ``workflow_run`` events are matched back to the request by it
  (:func:`parse_run_name`) and update the ``lab-ci/build`` check run.
- ``local``: ``lab-ci build --taxonomy <mirror> --commit <sha> --out <dir>`` as a
  subprocess on the bot's own machine (a single GPU box); the server must opt in
  (``LAB_CI_LOCAL_EXECUTOR=1``). It is cancelled when the request is cancelled.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RUN_NAME_RX = re.compile(r"lab-ci build request (\d+)\b(?:.*?\b([0-9a-f]{7,40})\b)?")

#: workflow_run conclusion -> (approvals event, check run conclusion)
WORKFLOW_CONCLUSIONS = {
    "success": ("succeed", "success"),
    "failure": ("fail", "failure"),
    "timed_out": ("fail", "timed_out"),
    "startup_failure": ("fail", "failure"),
    "action_required": ("fail", "failure"),
    "stale": ("fail", "stale"),
    "neutral": ("succeed", "neutral"),
    "skipped": ("fail", "skipped"),
    "cancelled": ("cancel", "cancelled"),
}


def run_name(request_id: int, sha: str) -> str:
    """The ``run-name`` the dispatch workflow must produce (tested against the example)."""
    return f"lab-ci build request {request_id} ({sha})"


def parse_run_name(title: str | None) -> tuple[int, str | None] | None:
    """(request id, sha or None) from a workflow run's display title, else None."""
    m = RUN_NAME_RX.search(title or "")
    return (int(m.group(1)), m.group(2)) if m else None


def dispatch_actions(gh, repo: str, *, workflow: str, ref: str, request_id: int, sha: str) -> None:
    """Start the build workflow (``POST .../actions/workflows/{workflow}/dispatches``)."""
    gh.dispatch_workflow(repo, workflow, ref, {"sha": sha, "request_id": str(request_id)})


def find_dispatched_run(gh, repo: str, *, workflow: str, request_id: int, sha: str) -> dict | None:
    """The run of ``workflow`` that a dispatch for this request already started, or None
    (matched by its ``run-name``: request id AND sha; only ``workflow_dispatch`` runs).
    Used before dispatching so that a retried job does not start a second build."""
    for run in gh.list_workflow_runs(repo, workflow, event="workflow_dispatch"):
        if parse_run_name(run.get("display_title") or run.get("name")) == (int(request_id), sha):
            return run
    return None


@dataclass
class LocalResult:
    returncode: int | None  # None: cancelled
    log_tail: str
    seconds: float


def run_local(
    command: list[str],
    *,
    taxonomy: Path,
    sha: str,
    out: Path,
    cancelled: Callable[[], bool],
    timeout: float = 24 * 3600,
    poll: float = 1.0,
    tail_chars: int = 6000,
) -> LocalResult:
    """Run ``command --taxonomy T --commit SHA --out DIR``; poll ``cancelled`` and stop
    the process (SIGTERM, then SIGKILL) when it turns true. The log goes to
    ``out/build.log``; the last ``tail_chars`` come back for the check run."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "build.log"
    argv = [*command, "--taxonomy", str(taxonomy), "--commit", sha, "--out", str(out)]
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        rc: int | None = None
        while True:
            try:
                rc = proc.wait(timeout=poll)
                break
            except subprocess.TimeoutExpired:
                if cancelled() or time.monotonic() - t0 > timeout:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    rc = None if cancelled() else -1
                    break
    data = log_path.read_bytes()[-tail_chars:].decode("utf-8", errors="replace")
    return LocalResult(rc, data, time.monotonic() - t0)
