"""Isolated job execution with real child processes and real rlimits: jobs that simply
burn CPU, memory or time end at their limit with an error that names it; the child's
process group goes with it; the bot's secrets never reach it; it dies with the bot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from botlib import wait_for

from lab_ci.bot.isolation import Cancelled, JobCrashed, JobFailed, LimitExceeded, Limits, run_isolated

HERE = Path(__file__).resolve().parent
SETTINGS = {"wall": "LAB_CI_CHECK_TIMEOUT", "cpu": "LAB_CI_CHECK_CPU_SECONDS", "memory": "LAB_CI_CHECK_MEMORY_MB"}


def limits(wall=30.0, cpu=30.0, memory=512):
    return Limits(wall_seconds=wall, cpu_seconds=cpu, memory_mb=memory, nice=5, settings=SETTINGS)


def run(target, request=None, lim=None, tmp_path=None, **kw):
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE),
        "LAB_CI_PRIVATE_KEY": "pem",
        "LAB_CI_WEBHOOK_SECRET": "s",
        "LAB_CI_TEACHER_API_KEY": "upstream-key",
        "LAB_CI_TEACHERS": "big=https://vllm.internal/v1",
    }
    return run_isolated(
        f"isolation_targets:{target}", request or {}, lim or limits(), workdir=tmp_path / "job", env=env, **kw
    )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie of a process we did not start counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_job_returns_its_result_without_the_bots_secrets(tmp_path):
    out = run("echo", {"a": [1, "x"]}, tmp_path=tmp_path)
    assert out["echo"] == {"a": [1, "x"]} and out["pid"] != os.getpid()
    assert "LAB_CI_PRIVATE_KEY" not in out["env"] and "LAB_CI_WEBHOOK_SECRET" not in out["env"]
    # nor the upstream teacher's key and allow-list (a preview reaches the teacher through
    # the bot's service, with a key of its own)
    assert "LAB_CI_TEACHER_API_KEY" not in out["env"] and "LAB_CI_TEACHERS" not in out["env"]
    assert not (tmp_path / "job").exists()  # the working folder is removed


def test_a_job_gets_what_it_is_granted_after_the_secrets_are_removed(tmp_path):
    out = run("echo", {}, tmp_path=tmp_path, grant={"LAB_CI_TEACHER_API_KEY": "job-token"})
    assert out["teacher_key"] == "job-token"


def test_cpu_burner_stops_at_the_cpu_limit(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(LimitExceeded) as e:
        run("burn_cpu", lim=limits(cpu=1), tmp_path=tmp_path)
    assert e.value.limit == "cpu" and not e.value.retryable
    assert str(e.value) == "stopped at its CPU-time limit of 1 s (LAB_CI_CHECK_CPU_SECONDS)"
    assert time.monotonic() - t0 < 25  # the CPU limit, not the wall one, ended it


def test_memory_burner_stops_at_the_address_space_limit(tmp_path):
    with pytest.raises(LimitExceeded) as e:
        run("burn_memory", lim=limits(memory=256), tmp_path=tmp_path)
    assert e.value.limit == "memory"
    assert str(e.value) == "stopped at its memory limit of 256 MiB (LAB_CI_CHECK_MEMORY_MB)"


def test_wall_time_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(LimitExceeded) as e:
        run("sleep_with_grandchild", {"pid_file": str(pid_file)}, lim=limits(wall=2), tmp_path=tmp_path)
    assert e.value.limit == "wall" and "wall-time limit of 2 s" in str(e.value)
    grandchild = int(pid_file.read_text())
    assert wait_for(lambda: gone(grandchild), 10), "the job's own child survived the wall-time kill"


def test_cancellation_stops_the_child(tmp_path):
    flag = threading.Event()
    threading.Timer(0.5, flag.set).start()
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(Cancelled):
        run("sleep_with_grandchild", {"pid_file": str(pid_file)}, tmp_path=tmp_path, cancelled=flag.is_set)
    assert wait_for(lambda: pid_file.exists() and gone(int(pid_file.read_text())), 10)


def test_user_errors_bugs_and_crashes_are_told_apart(tmp_path):
    with pytest.raises(JobFailed, match="no such revision"):
        run("user_error", tmp_path=tmp_path)
    with pytest.raises(JobCrashed, match="internal error in the job: ZeroDivisionError"):
        run("bug", {"zero": 0}, tmp_path=tmp_path)
    with pytest.raises(JobCrashed, match="SIGABRT"):
        run("crash", tmp_path=tmp_path)


PARENT = """
import os, sys
sys.path[:0] = [{root!r}, {here!r}]
from pathlib import Path
from lab_ci.bot.isolation import Limits, run_isolated
run_isolated("isolation_targets:sleep_with_grandchild", {{"pid_file": {pid!r}}},
             Limits(wall_seconds=600, cpu_seconds=600, memory_mb=512), workdir=Path({work!r}),
             env={{**os.environ, "PYTHONPATH": {here!r}}})
"""


def test_the_job_dies_with_the_bot(tmp_path):
    """SIGKILL the bot mid-job: its job process does not live on as an orphan."""
    pid_file = tmp_path / "grandchild.pid"
    code = PARENT.format(root=str(HERE.parents[1]), here=str(HERE), pid=str(pid_file), work=str(tmp_path / "w"))
    bot = subprocess.Popen([sys.executable, "-c", code])
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30, proc=bot)
        [job] = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == bot.pid]
    finally:
        bot.send_signal(signal.SIGKILL)
        bot.wait(10)
    assert wait_for(lambda: gone(job), 10), "the job process outlived the bot"


def _ppid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_job_folders_of_dead_bots_are_pruned_at_start_up(tmp_path):
    from lab_ci.bot.services import prune_job_folders

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    jobs = tmp_path / "jobs"
    left = jobs / f"{dead.pid}-7-1"
    mine = jobs / f"{os.getpid()}-8-1"
    for folder in (left, mine):
        folder.mkdir(parents=True)
        (folder / "job.log").write_text("x")
    assert prune_job_folders(tmp_path) == 1
    assert not left.exists() and mine.exists()
