"""Job-process targets for tests/bot/test_isolation.py: hostile work that simply burns
CPU, memory or time, or misbehaves (imported by the child process, not by pytest)."""

from __future__ import annotations

import os
import subprocess
import time

from lab_ci.errors import LabCIError


def echo(request: dict) -> dict:
    return {
        "echo": request,
        "pid": os.getpid(),
        "env": sorted(os.environ),
        "teacher_key": os.environ.get("LAB_CI_TEACHER_API_KEY"),
    }


def burn_cpu(request: dict) -> dict:
    x = 0
    while True:  # pure Python: this is what held the GIL in the bot's own process
        x += 1


def burn_memory(request: dict) -> dict:
    hoard = []
    while True:
        hoard.append(bytearray(8 * 1024 * 1024))


def sleep_with_grandchild(request: dict) -> dict:
    child = subprocess.Popen(["sleep", "1000"])
    with open(request["pid_file"], "w") as fh:
        fh.write(str(child.pid))
    time.sleep(1000)
    return {}


def user_error(request: dict) -> dict:
    raise LabCIError("refs/heads/nope: no such revision")


def bug(request: dict) -> dict:
    return {"x": 1 / request["zero"]}


def crash(request: dict) -> dict:
    os.abort()
