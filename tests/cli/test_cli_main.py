"""The top-level CLI: one line and exit 2 for errors, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab_ci import cli


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab_ci", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0
    for command in ("check", "preview", "build", "serve"):
        assert command in r.stdout


def test_no_command_is_a_usage_error():
    r = run()
    assert r.returncode == 2 and "usage: lab-ci" in r.stderr


@pytest.mark.parametrize("module, extra", [("llama_cpp", "preview"), ("torch", "train"), ("uvicorn", "bot")])
def test_a_missing_extra_is_named(monkeypatch, capsys, module, extra):
    def needs(args):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["check"].set_defaults(func=needs)
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lab-ci: error: lab-ci check needs the '{extra}' extra: pip install 'lab-ci[{extra}]'")
    assert "Traceback" not in err


def test_an_internal_error_is_one_line(monkeypatch, capsys):
    def broken(args):
        raise ValueError("boom")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["check"].set_defaults(func=broken)
    monkeypatch.delenv("LAB_CI_DEBUG", raising=False)
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["lab-ci: internal error: ValueError: boom (set LAB_CI_DEBUG=1 for a traceback)"]
