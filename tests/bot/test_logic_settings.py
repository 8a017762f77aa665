"""One settings object for the whole bot: every field carries its environment variable,
default and description (the generated settings reference reads settings_fields())."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import pytest

from lab_ci.bot.settings import Settings, settings_fields
from lab_ci.errors import LabCIError


def test_every_setting_has_a_variable_a_default_and_a_description():
    rows = settings_fields()
    assert [r.name for r in rows] == [f.name for f in fields(Settings)]
    envs = [r.env for r in rows]
    assert len(set(envs)) == len(envs) and all(e.startswith("LAB_CI_") for e in envs)
    for r in rows:
        assert r.help and not r.help.endswith(".") and len(r.help) < 120, r
        assert r.default != "", r
    by = {r.env: r for r in rows}
    assert by["LAB_CI_WORKERS"].default == "2" and by["LAB_CI_CHECK_TIMEOUT"].default == "120.0"
    assert by["LAB_CI_BUILD_COMMAND"].default == "python -m lab_ci build"  # not this machine's interpreter
    assert by["LAB_CI_PRIVATE_KEY"].secret and by["LAB_CI_WEBHOOK_SECRET"].secret
    # the settings that were the GitHub side's BotOptions are in the same object
    assert {"LAB_CI_TEACHER", "LAB_CI_TEACHERS", "LAB_CI_APP_SLUG", "LAB_CI_GIT_URL", "LAB_CI_LOCAL_EXECUTOR"} <= set(
        envs
    )


def test_every_variable_is_read_with_its_type():
    env = {
        "LAB_CI_WORKERS": "3",
        "LAB_CI_LIGHT_WORKERS": "0",
        "LAB_CI_CHECK_TIMEOUT": "7.5",
        "LAB_CI_CHECK_MEMORY_MB": "300",
        "LAB_CI_LOCAL_EXECUTOR": "yes",
        "LAB_CI_BUILD_COMMAND": "/opt/lab-ci/bin/lab-ci build --no-progress",
        "LAB_CI_TEACHERS": '{"tiny": "/m/t.gguf"}',
        "LAB_CI_TEACHER": "  tiny ",
        "LAB_CI_DATA_DIR": "/srv/lab-ci",
        "LAB_CI_DB_SYNCHRONOUS": "normal",
        "LAB_CI_PREVIEWS_PER_USER_HOUR": "0",
    }
    s = Settings.from_env(env)
    assert (s.workers, s.light_workers, s.check_timeout, s.check_memory_mb) == (3, 0, 7.5, 300)
    assert s.allow_local_executor is True
    assert s.build_command == ("/opt/lab-ci/bin/lab-ci", "build", "--no-progress")
    assert s.teachers == (("tiny", "/m/t.gguf"),) and s.teacher == "tiny"
    assert s.data_dir == Path("/srv/lab-ci") and s.db_synchronous == "NORMAL"
    assert s.previews_per_user_hour == 0  # no limit
    assert Settings().build_command == (sys.executable, "-m", "lab_ci", "build")
    assert Settings.from_env(env, workers=1).workers == 1  # command-line options win


def test_lab_ci_teacher_has_one_reader():
    """The bot, `lab-ci preview` and `lab-ci build` read LAB_CI_TEACHER the same way."""
    from lab_ci.teacher import default_teacher_spec, spec_from_env

    env = {"LAB_CI_TEACHER": " http://127.0.0.1:8000/v1 "}
    assert (
        spec_from_env(env) == Settings.from_env(env).teacher == default_teacher_spec(env) == "http://127.0.0.1:8000/v1"
    )
    assert spec_from_env({"LAB_CI_TEACHER": "  "}) is None and Settings.from_env({"LAB_CI_TEACHER": ""}).teacher is None


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LAB_CI_PREVIEW_TIMEOUT": "soon"}, "LAB_CI_PREVIEW_TIMEOUT='soon' is not a valid float"),
        ({"LAB_CI_JOB_NICE": "40"}, "LAB_CI_JOB_NICE must be from -20 to 19"),
        ({"LAB_CI_MAX_QUEUED_PER_INSTALLATION": "-1"}, "LAB_CI_MAX_QUEUED_PER_INSTALLATION must be >= 0"),
        ({"LAB_CI_BUILD_COMMAND": "  "}, None),  # blank: the default
        ({"LAB_CI_WEBHOOK_SECRET": "x", "LAB_CI_GITHUB_TIMEOUT": "0"}, "LAB_CI_GITHUB_TIMEOUT must be > 0"),
    ],
)
def test_bad_values_name_their_variable(env, message):
    if message is None:
        assert Settings.from_env(env).build_command == Settings().build_command
        return
    with pytest.raises(LabCIError, match=message):
        Settings.from_env(env)
