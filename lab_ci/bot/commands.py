"""Slash commands in pull request comments (pure parsing).

A command is a line that starts with ``/lab`` outside fenced code blocks and block
quotes (so quoting someone's ``/lab approve-build`` does not approve anything). Only the
first command line of a comment counts::

    /lab help
    /lab check
    /lab preview [samples=N]
    /lab approve-build <sha>      (maintainers)
    /lab cancel-build [<sha>]     (maintainers)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PREFIX = "/lab"
MAX_SAMPLES = 20
KNOWN = ("help", "check", "preview", "approve-build", "cancel-build")
MAINTAINER_COMMANDS = frozenset({"approve-build", "cancel-build"})
_SHA = re.compile(r"^[0-9a-f]{7,40}$")

HELP = """\
Commands (write them on their own line in a pull request comment):

| Command | Who | What it does |
|---|---|---|
| `/lab help` | anyone | this help |
| `/lab check` | anyone with write access, or the author | re-run the schema check |
| `/lab preview [samples=N]` | anyone with write access, or the author | re-run the synthetic data preview with N samples (1-{max}) |
| `/lab approve-build <sha>` | maintainers | approve the release build of merge commit `<sha>` |
| `/lab cancel-build [<sha>]` | maintainers | cancel a pending or running release build |
"""


def help_text(max_samples: int = MAX_SAMPLES) -> str:
    return HELP.replace("{max}", str(max_samples))


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # one of KNOWN, or "unknown" / "invalid"
    args: dict[str, str] = field(default_factory=dict)
    positional: tuple[str, ...] = ()
    raw: str = ""
    error: str | None = None  # why the command is invalid (user-facing, unescaped)

    @property
    def maintainer_only(self) -> bool:
        return self.name in MAINTAINER_COMMANDS

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "args": dict(self.args),
            "positional": list(self.positional),
            "raw": self.raw,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Command:
        return cls(
            d["name"], dict(d.get("args") or {}), tuple(d.get("positional") or ()), d.get("raw", ""), d.get("error")
        )


def command_lines(body: str) -> list[str]:
    """Lines starting with ``/lab``, skipping fenced code and ``>`` quotes."""
    out: list[str] = []
    fence: str | None = None
    for line in (body or "").splitlines():
        stripped = line.strip()
        m = re.match(r"^(`{3,}|~{3,})", stripped)
        if m:
            if fence is None:
                fence = m.group(1)
            elif stripped.startswith(fence[0] * len(fence)) and stripped.strip(fence[0]) == "":
                fence = None
            continue
        if fence is not None or stripped.startswith(">"):
            continue
        if line.startswith(PREFIX) and (len(line) == len(PREFIX) or line[len(PREFIX)].isspace()):
            out.append(stripped)
    return out


def parse(body: str, *, max_samples: int = MAX_SAMPLES) -> Command | None:
    """The first command in a comment body, or None when there is none."""
    lines = command_lines(body)
    if not lines:
        return None
    return parse_line(lines[0], max_samples=max_samples)


def parse_line(line: str, *, max_samples: int = MAX_SAMPLES) -> Command:
    raw = line[:200]
    words = line.split()[1:]
    if not words:
        return Command("help", raw=raw)
    name, rest = words[0].lower(), words[1:]
    if name not in KNOWN:
        return Command("unknown", raw=raw, error=f"unknown command {words[0][:40]!r}")
    args: dict[str, str] = {}
    positional: list[str] = []
    for w in rest:
        if "=" in w:
            k, _, v = w.partition("=")
            args[k.lower()] = v
        else:
            positional.append(w)
    if name in ("help", "check"):
        if args or positional:
            return Command("invalid", raw=raw, error=f"/lab {name} takes no arguments")
        return Command(name, raw=raw)
    if name == "preview":
        unknown = sorted(set(args) - {"samples"})
        if unknown or positional:
            return Command("invalid", raw=raw, error="usage: /lab preview [samples=N]")
        if "samples" in args:
            v = args["samples"]
            if not (v.isascii() and v.isdigit()) or not 1 <= int(v) <= max_samples:
                return Command("invalid", raw=raw, error=f"samples must be a whole number from 1 to {max_samples}")
            args["samples"] = str(int(v))
        return Command(name, args=args, raw=raw)
    # approve-build / cancel-build
    if args or len(positional) > 1:
        return Command("invalid", raw=raw, error=f"usage: /lab {name} <sha>")
    if positional:
        sha = positional[0].lower()
        if not _SHA.match(sha):
            return Command("invalid", raw=raw, error="the commit must be a hex sha of 7 to 40 characters")
        positional = [sha]
    if name == "approve-build" and not positional:
        return Command("invalid", raw=raw, error="name the merge commit to approve: /lab approve-build <sha>")
    return Command(name, positional=tuple(positional), raw=raw)


def sha_matches(given: str, full: str) -> bool:
    """True when ``given`` (7-40 hex chars) names the commit ``full``."""
    given, full = given.lower(), full.lower()
    return bool(_SHA.match(given)) and full.startswith(given)
