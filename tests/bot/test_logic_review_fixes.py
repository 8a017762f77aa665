"""Pure regression tests for review findings 2, 3, 9, 10, 12, 13, 14, 17."""

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from lab_ci.bot.config import ConfigError, parse
from lab_ci.bot.handlers import resolve_teacher
from lab_ci.bot.settings import Settings
from lab_ci.errors import LabCIError

ROOT = Path(__file__).resolve().parents[2]
WF = ROOT / "examples" / "workflows"


# -- 3 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,fragment",
    [
        ("1: x\n", ":1:1: 1: unknown key"),
        ("check: {}\n1: x\nb: 2\n", ":2:1: 1: unknown key"),  # mixed key types: no TypeError
        ("check:\n  1: x\n  strict: true\n", "check.1: unknown key"),
        ("preview:\n  true: 1\n", "preview.True: unknown key"),
        ("build:\n  approvers:\n    1: a\n    b: c\n", "build.approvers.1: unknown key"),
        ("build:\n  approvers:\n    2.5: a\n", "build.approvers.2.5: unknown key"),
    ],
)
def test_non_string_keys_are_config_errors(text, fragment):
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert fragment in str(e.value) and str(e.value).startswith(".github/lab-ci.yaml:")


# -- 14 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("teacher", ["/models/x.gguf", "http://10.0.0.1:8000/v1", "../x", "a b", ""])
def test_repo_config_cannot_name_a_path_or_url(teacher):
    with pytest.raises(ConfigError) as e:
        parse(f"preview:\n  teacher: {json.dumps(teacher)}\n")
    assert "preview.teacher" in str(e.value) and "not a path or URL" in str(e.value)


def test_teacher_names_resolve_only_through_the_server_allow_list():
    opts = Settings.from_env(
        {"LAB_CI_TEACHERS": '{"tiny": "/models/t.gguf", "big": "http://127.0.0.1:8000/v1"}', "LAB_CI_TEACHER": "tiny"}
    )
    assert resolve_teacher("big", opts) == ("http://127.0.0.1:8000/v1", None)
    assert resolve_teacher(None, opts) == ("/models/t.gguf", None)  # the default is a name
    spec, error = resolve_teacher("huge", opts)
    assert spec is None and "huge" in error and "`big`" in error and "`tiny`" in error and "/models" not in error
    plain = Settings.from_env({"LAB_CI_TEACHER": "/srv/teacher.gguf"})
    assert resolve_teacher(None, plain) == ("/srv/teacher.gguf", None)  # the default may be a spec
    assert resolve_teacher("tiny", plain)[0] is None  # but a repo cannot reach it by a path
    assert resolve_teacher(None, Settings.from_env({})) == (None, None)


@pytest.mark.parametrize("raw", ["not json", "[1]", '{"../x": "/m"}', '{"a": 3}', '{"a": ""}'])
def test_bad_teacher_list_is_a_clear_error(raw):
    with pytest.raises(LabCIError) as e:
        Settings.from_env({"LAB_CI_TEACHERS": raw})
    assert "LAB_CI_TEACHERS" in str(e.value)


# -- 13 ----------------------------------------------------------------------------------
def test_secret_is_required_off_loopback():
    from lab_ci.bot.cli import check_webhook_secret, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("bot.example.org")
    check_webhook_secret(None, "127.0.0.1", insecure=False)
    check_webhook_secret(b"s", "0.0.0.0", insecure=False)
    check_webhook_secret(None, "0.0.0.0", insecure=True)
    check_webhook_secret(None, "0.0.0.0", insecure=False, http=False)  # --worker-only
    with pytest.raises(LabCIError) as e:
        check_webhook_secret(None, "0.0.0.0", insecure=False)
    assert "LAB_CI_WEBHOOK_SECRET" in str(e.value) and "--insecure-no-signature" in str(e.value)


def test_serve_refuses_to_listen_publicly_without_a_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LAB_CI_WEBHOOK_SECRET"}
    env.update(LAB_CI_DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-m", "lab_ci", "serve", "--no-workers", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("lab-ci: error: LAB_CI_WEBHOOK_SECRET is not set and --host 0.0.0.0")


# -- 10, 17, 12 ---------------------------------------------------------------------------
def test_approved_build_is_never_cancelled_by_a_newer_push():
    wf = yaml.safe_load((WF / "lab-ci-build-on-approval.yml").read_text())
    assert wf["concurrency"]["cancel-in-progress"] is False
    dispatch = yaml.safe_load((WF / "lab-ci-build-dispatch.yml").read_text())
    assert dispatch["concurrency"]["cancel-in-progress"] is False


@pytest.mark.parametrize("name", ["lab-ci-build-dispatch.yml", "lab-ci-build-on-approval.yml", "lab-ci-preview.yml"])
def test_no_expression_is_pasted_into_a_shell_script(name):
    wf = yaml.safe_load((WF / name).read_text())
    for job in wf["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in (step.get("run") or ""), (name, step.get("name"))


def test_image_builds_llama_cpp_in_a_builder_stage():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
    assert stages[0] == ("python:3.11-slim", "builder") and len(stages) == 2
    builder, runtime = text.split("\nFROM python:3.11-slim\n")
    assert "build-essential" in builder and "cmake" in builder and "[bot,preview]" in builder
    assert "build-essential" not in runtime and "--from=builder" in runtime


# -- 9 -----------------------------------------------------------------------------------
def test_has_commit_times_out_instead_of_hanging(tmp_path):
    """A loose object that never finishes reading (a FIFO) used to hang the worker."""
    from lab_ci.bot.mirror import MirrorError, Mirrors

    git = tmp_path / "m.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(git)], check=True)
    sha = "ab" * 20
    (git / "objects" / sha[:2]).mkdir(parents=True)
    fifo = git / "objects" / sha[:2] / sha[2:]
    os.mkfifo(fifo)
    m = Mirrors(tmp_path / "mirrors", timeout=1.0)
    try:
        with pytest.raises(MirrorError) as e:
            m.has_commit(git, sha)
        assert "did not answer" in str(e.value)
    finally:
        # unblock anything still waiting on the FIFO
        threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True).start()
