"""The example workflows and the app manifest agree with what the bot expects."""

import json
from pathlib import Path

import yaml

from lab_ci.bot.executors import parse_run_name, run_name
from lab_ci.bot.handlers import PREVIEW_MARKER

ROOT = Path(__file__).resolve().parents[2]
WF = ROOT / "examples" / "workflows"


def load(name):
    data = yaml.safe_load((WF / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads `on:` as true
    return data


def test_dispatch_workflow_run_name_is_matched_back_to_the_request():
    wf = load("lab-ci-build-dispatch.yml")
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"sha", "request_id"} and all(i["required"] for i in inputs.values())
    sha = "ab" * 20
    title = wf["run-name"].replace("${{ inputs.request_id }}", "17").replace("${{ inputs.sha }}", sha)
    assert title == run_name(17, sha)
    assert parse_run_name(title) == (17, sha)
    assert parse_run_name("CI for main") is None
    job = wf["jobs"]["build"]
    assert job["runs-on"] == ["self-hosted", "gpu"]
    assert any("lab-ci build" in (s.get("run") or "") and "--commit" in s["run"] for s in job["steps"])
    assert wf["permissions"] == {"contents": "read"}


def test_build_on_approval_waits_for_the_environment():
    wf = load("lab-ci-build-on-approval.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    job = wf["jobs"]["build"]
    assert job["environment"] == "release-build" and job["runs-on"] == ["self-hosted", "gpu"]
    assert any("lab-ci build" in (s.get("run") or "") for s in job["steps"])


def test_preview_workflow_keeps_one_sticky_comment():
    wf = load("lab-ci-preview.yml")
    assert wf["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "pull_request_target" not in wf["on"]  # never run with secrets on fork code
    steps = wf["jobs"]["preview"]["steps"]
    run = next(s["run"] for s in steps if "lab-ci preview" in (s.get("run") or ""))
    assert "--base" in run and "--format markdown" in run
    script = next(s["with"]["script"] for s in steps if s.get("uses", "").startswith("actions/github-script"))
    assert PREVIEW_MARKER in script and "updateComment" in script and "paginate" in script


def test_app_manifest_permissions_and_events():
    m = json.loads((ROOT / "lab_ci" / "bot" / "app-manifest.json").read_text())
    assert m["public"] is False and m["hook_attributes"]["url"].endswith("/webhook")
    assert m["default_permissions"] == {
        "checks": "write",
        "pull_requests": "write",
        "issues": "write",
        "contents": "read",
        "metadata": "read",
        "members": "read",
        "actions": "write",
    }
    assert set(m["default_events"]) == {
        "pull_request",
        "issue_comment",
        "check_run",
        "check_suite",
        "push",
        "workflow_run",
    }


def test_check_workflow_is_bounded_in_time_and_by_push():
    wf = yaml.safe_load((WF / "lab-ci-check.yml").read_text())
    assert wf["jobs"]["check"]["timeout-minutes"] <= 15
    assert wf["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in wf["concurrency"]["group"]
