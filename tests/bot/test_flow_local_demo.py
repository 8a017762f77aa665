"""The README walkthrough "Try the bot locally": ``scripts/bot_local_demo.py`` run as an
operator runs it (a subprocess, real ``lab-ci serve``, the GitHub double, the corpus),
so the documented command and its transcript cannot rot."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from botlib import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "bot_local_demo.py"


def run_demo(*args: str, timeout: float = 600) -> tuple[int, str]:
    """Run the demo; on timeout, SIGTERM it (it stops its server and double) and fail."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        raise AssertionError(f"demo still running after {timeout}s:\n{out[-4000:]}") from None
    return proc.returncode, out


@pytest.mark.parametrize("latency", ["0", "0.5"], ids=["github-fast", "github-slow"])
def test_demo_walks_a_pr_through_check_preview_comment_approval_and_dispatch(tiny_models, latency):
    """With a slow GitHub (every check run write answered 0.5 s late) the transcript is the
    same: the demo waits until the bot is idle before it reads an effect. Reading as soon
    as the dispatch appeared showed "Approved by maintainer" instead of "Build dispatched"
    whenever the last check run update came late (issue 10: the flaky step 5)."""
    rc, out = run_demo("--teacher", str(tiny_models["teacher"]), "--github-latency", latency)
    print(out)  # shown by pytest when an assertion below fails
    assert rc == 0, out
    assert "Traceback" not in out
    lines = out.splitlines()

    def line(prefix: str) -> str:
        found = [ln.strip() for ln in lines if ln.strip().startswith(prefix)]
        assert found, f"no line starting {prefix!r} in:\n{out}"
        return found[0]

    assert "127.0.0.1" in line("GitHub REST double (test double") and "127.0.0.1" in line("lab-ci serve: http://")
    assert out.count("-> POST /webhook") == 5 and all(ln.endswith("-> 202") for ln in lines if "-> POST /webhook" in ln)
    # [1] invalid corpus PR #100: failing schema check with annotations on its leaf
    failing = line("check run lab-ci/schema: completed/failure")
    assert "invalid" in failing and "(0 annotations)" not in failing
    assert line("first: ").startswith("first: compositional_skills/writing/freeform/technical/draw_a_diagram/qna.yaml:")
    # [2] the valid example PR: success, preview, ONE sticky comment
    assert "(0 annotations)" in line("check run lab-ci/schema: completed/success")
    assert line("check run lab-ci/preview: completed/success").startswith(
        "check run lab-ci/preview: completed/success - Preview ready"
    )
    assert line("sticky comments on PR #9001:") == "sticky comments on PR #9001: 1; first lines:"
    assert "| ## lab-ci preview" in out and "antonyms" in out
    # [3]-[5] merge -> waiting for approval -> refusal -> dispatch
    assert "Waiting for approval" in line("check run lab-ci/build: completed/action_required")
    assert line("buttons:") == "buttons: ['Approve build']"
    assert "sorry, only maintainers" in line("| `contributor`:")
    dispatch = line("workflow_dispatch lab-ci-build-dispatch.yml on main: inputs")
    merged = line("[5] issue_comment: maintainer writes").rsplit(" ", 1)[1].strip("'")
    assert f"'sha': '{merged}" in dispatch and "'request_id': '1'" in dispatch
    assert line("check run lab-ci/build: in_progress").endswith("Build dispatched (0 annotations)")
    assert lines[-1].startswith("OK: check, preview, sticky comment")


def test_demo_names_an_unknown_pull_request_and_fails_cleanly(tiny_models):
    rc, out = run_demo("--pr", "999999", "--teacher", str(tiny_models["teacher"]), timeout=300)
    assert rc == 1
    assert "bot_local_demo: corpus has no pull request #999999" in out
    assert "Traceback" not in out


def test_demo_reports_a_missing_effect_and_exits_1(tmp_path):
    """A teacher file that is no GGUF: the preview fails, the demo says what is missing,
    still runs the other steps, stops everything and exits 1."""
    bad = tmp_path / "not-a-model.gguf"
    bad.write_text("not a gguf\n")
    rc, out = run_demo("--teacher", str(bad), timeout=300)
    print(out)
    assert rc == 1, out
    assert "check run lab-ci/preview: completed/failure" in out
    assert "FAILED, missing: lab-ci/preview completed/success on PR #9001 (got failure" in out
    assert "sticky preview comment" in out.splitlines()[-1]
    assert "workflow_dispatch lab-ci-build-dispatch.yml on main" in out  # later steps still ran
    assert "Traceback" not in out
