"""End to end on the tiny teacher: `lab-ci preview` in child processes, as the bot will
run it, reaching one shared teacher through the teacher service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab_ci.teacher.llamacpp import LlamaCppTeacher
from lab_ci.teacher.service import TeacherService

REPO_ROOT = Path(__file__).resolve().parents[2]
ANTONYMS = "compositional_skills/linguistics/antonyms/qna.yaml"
HAIKU = "compositional_skills/writing/freeform/haiku/qna.yaml"


def git(*args, cwd):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t.invalid")
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def pull_request(example_taxonomy_repo) -> Path:
    """Branch `change` of the example taxonomy: two skill leaves edited."""
    repo = example_taxonomy_repo
    git("checkout", "--quiet", "-b", "change", cwd=repo)
    for leaf in (ANTONYMS, HAIKU):
        p = repo / leaf
        p.write_text(p.read_text().replace("version: 3", "version: 3\n# edited", 1))
    git("commit", "--quiet", "-am", "change", cwd=repo)
    return repo


@pytest.fixture
def service(tiny_models):
    teacher = LlamaCppTeacher(tiny_models["teacher"], n_ctx=4096, max_parallel=8)
    svc = TeacherService(teacher).start()
    yield svc
    svc.close()
    teacher.close()


def preview_child(repo: Path, ticket, out: Path, samples: int = 3) -> subprocess.Popen:
    env = {**os.environ, **ticket.env, "PYTHONPATH": str(REPO_ROOT)}
    args = ["--taxonomy", str(repo), "--base", "main", "--head", "change", "--samples", str(samples)]
    return subprocess.Popen(
        [sys.executable, "-m", "lab_ci", "preview", "--quiet", "--format", "json", "-o", str(out), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_previews_share_the_teacher(service, pull_request, tmp_path):
    tickets = [service.open_job(f"preview:org/repo#{i}", token_budget=100_000) for i in range(2)]
    outs = [tmp_path / f"preview-{i}.json" for i in range(2)]
    children = [preview_child(pull_request, t, o) for t, o in zip(tickets, outs)]
    for child in children:
        _, err = child.communicate(timeout=600)
        assert child.returncode == 0, err
    for ticket, out in zip(tickets, outs):
        result = json.loads(out.read_text())
        assert result["teacher"]["id"] == f"openai:{service.url}#{service.model}"
        leaves = {leaf["path"]: leaf for leaf in result["leaves"]}
        assert set(leaves) == {ANTONYMS, HAIKU}
        for leaf in leaves.values():
            assert leaf["status"] == "previewed", leaf.get("reason")
            assert len(leaf["accepted"]) + len(leaf["rejected"]) >= 3
            assert leaf["stats"]["usage"]["completion_tokens"] > 0
        usage = service.close_job(ticket)
        assert usage["used"] == sum(leaf["stats"]["usage"]["completion_tokens"] for leaf in leaves.values())
    assert service.stats()["queued_sequences"] == 0


def test_a_new_push_supersedes_the_running_preview(service, pull_request, tmp_path):
    first = service.open_job("preview:org/repo#5", token_budget=100_000)
    child = preview_child(pull_request, first, tmp_path / "first.json", samples=8)
    deadline = time.monotonic() + 120
    while service.stats()["queued_sequences"] == 0:  # the child is generating
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()
        time.sleep(0.05)
    second = service.open_job("preview:org/repo#5", token_budget=100_000)
    _, err = child.communicate(timeout=300)
    result = json.loads((tmp_path / "first.json").read_text())
    failed = [leaf for leaf in result["leaves"] if leaf["status"] == "failed"]
    assert failed, "the superseded preview should not have completed"
    assert "cancelled: superseded by a newer job" in failed[0]["reason"]
    # the new job's preview runs to the end on the same teacher
    again = preview_child(pull_request, second, tmp_path / "second.json", samples=2)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert all(leaf["status"] == "previewed" for leaf in json.loads((tmp_path / "second.json").read_text())["leaves"])
