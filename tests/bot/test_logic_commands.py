"""Slash command parsing (pure)."""

import pytest

from lab_ci.bot import commands as c


@pytest.mark.parametrize(
    "body,name,args,pos",
    [
        ("/lab help", "help", {}, ()),
        ("/lab", "help", {}, ()),
        ("Thanks!\n/lab check\n", "check", {}, ()),
        ("/lab preview", "preview", {}, ()),
        ("/lab preview samples=5", "preview", {"samples": "5"}, ()),
        ("/lab   PREVIEW   samples=07", "preview", {"samples": "7"}, ()),
        ("/lab approve-build 0123abcd", "approve-build", {}, ("0123abcd",)),
        (
            "/lab approve-build 0123ABCDEF0123456789abcdef0123456789abcd",
            "approve-build",
            {},
            ("0123abcdef0123456789abcdef0123456789abcd",),
        ),
        ("/lab cancel-build", "cancel-build", {}, ()),
        ("/lab cancel-build deadbeef", "cancel-build", {}, ("deadbeef",)),
    ],
)
def test_valid_commands(body, name, args, pos):
    cmd = c.parse(body)
    assert (cmd.name, cmd.args, cmd.positional, cmd.error) == (name, args, pos, None)


@pytest.mark.parametrize(
    "body,fragment",
    [
        ("/lab preview samples=0", "from 1 to"),
        ("/lab preview samples=21", "from 1 to"),
        ("/lab preview samples=abc", "whole number"),
        ("/lab preview samples=-3", "whole number"),
        ("/lab preview temperature=2", "usage"),
        ("/lab check now", "no arguments"),
        ("/lab approve-build", "name the merge commit"),
        ("/lab approve-build main", "hex sha"),
        ("/lab approve-build abc", "hex sha"),
        ("/lab approve-build deadbeef cafebabe", "usage"),
    ],
)
def test_invalid_commands_say_why(body, fragment):
    cmd = c.parse(body)
    assert cmd.name == "invalid" and fragment in cmd.error


def test_unknown_command():
    cmd = c.parse("/lab deploy-prod")
    assert cmd.name == "unknown" and "deploy-prod" in cmd.error


@pytest.mark.parametrize(
    "body",
    [
        "no command here",
        "> /lab approve-build deadbeef",  # quoting someone is not a command
        "```\n/lab approve-build deadbeef\n```",
        "~~~~\n/lab check\n~~~~",
        "please run /lab check",  # not at the start of a line
        "/labcheck",
        "  /lab check",  # indented: not at the line start either
        "",
    ],
)
def test_not_a_command(body):
    assert c.parse(body) is None


def test_first_command_wins_and_code_blocks_close():
    body = "```\n/lab approve-build deadbeef\n```\n/lab preview samples=2\n/lab check"
    cmd = c.parse(body)
    assert cmd.name == "preview" and cmd.args == {"samples": "2"}


def test_max_samples_is_configurable():
    assert c.parse("/lab preview samples=8", max_samples=5).name == "invalid"
    assert c.parse("/lab preview samples=5", max_samples=5).args == {"samples": "5"}


def test_round_trip_and_sha_match():
    cmd = c.parse("/lab approve-build deadbeef")
    assert c.Command.from_dict(cmd.to_dict()) == cmd
    assert c.sha_matches("deadbeef", "deadbeef" + "0" * 32)
    assert not c.sha_matches("deadbee", "deadbef" + "0" * 33)
    assert not c.sha_matches("dead", "dead" + "0" * 36)  # too short to name a commit
    assert cmd.maintainer_only and not c.parse("/lab check").maintainer_only


def test_help_lists_every_command():
    h = c.help_text(7)
    for name in c.KNOWN:
        assert f"/lab {name}" in h
    assert "1-7" in h
