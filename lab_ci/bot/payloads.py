"""Typed payloads of the bot's jobs, serialised at the queue boundary.

The queue stores a job's payload as a JSON object; the router builds one of these
dataclasses and stores ``to_dict()``, and ``run_job`` reads it back with ``from_dict``
before calling the job's handler, so handlers work with typed fields, never with
``payload["..."]``. The JSON shapes are the ones the bot always stored (flat objects),
so jobs queued by an earlier version still run.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, TypeVar

from lab_ci.bot.commands import Command
from lab_ci.bot.jobs import PermanentError

P = TypeVar("P", bound="Payload")


@dataclass(frozen=True, kw_only=True)
class Payload:
    """A job payload: ``to_dict()`` for the queue, ``from_dict()`` back."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls: type[P], data: dict[str, Any]) -> P:
        known = {f.name for f in fields(cls)}
        missing = [
            f.name
            for f in fields(cls)
            if f.default is MISSING and f.default_factory is MISSING and f.name not in data  # type: ignore[misc]
        ]
        if missing:
            raise PermanentError(f"{cls.__name__} lacks {', '.join(missing)} (a job stored by another version?)")
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, kw_only=True)
class RepoPayload(Payload):
    """The repository a job works on, as the event named it."""

    repo: str
    installation_id: int
    clone_url: str = ""
    default_branch: str = "main"

    def repo_fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(RepoPayload)}


@dataclass(frozen=True, kw_only=True)
class PullPayload(RepoPayload):
    """A job on one pull request."""

    number: int

    @property
    def pr_key(self) -> str:
        """The queue key of the pull request: its heavy jobs never run side by side."""
        return f"{self.repo}#{self.number}"


@dataclass(frozen=True, kw_only=True)
class CheckPayload(PullPayload):
    """``check``: check the leaves the pull request changes at ``head_sha``."""

    head_sha: str
    base_ref: str | None = None
    draft: bool = False
    trigger: str = "opened"  # a pull_request action, "rerequested" or "command"
    author: str = ""  # the pull request's author (whose pushes cause the automatic preview)


@dataclass(frozen=True, kw_only=True)
class PreviewPayload(PullPayload):
    """``preview``: generate ``samples`` per changed leaf and post the sticky comment."""

    head_sha: str
    base_ref: str | None = None
    samples: int = 3
    requested_by: str = ""  # the user whose quota it used


@dataclass(frozen=True, kw_only=True)
class CommandPayload(PullPayload):
    """``command``: a ``/lab ...`` comment by ``user`` on the pull request."""

    user: str
    pr_author: str = ""
    comment_id: int | None = None
    command: Command = field(default_factory=lambda: Command("help"))

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "command": self.command.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommandPayload:
        data = dict(data)
        if isinstance(data.get("command"), dict):
            data["command"] = Command.from_dict(data["command"])
        return super().from_dict(data)


@dataclass(frozen=True, kw_only=True)
class ApprovePayload(RepoPayload):
    """``approve``: the "Approve build" button of a ``lab-ci/build`` check run."""

    sha: str
    user: str
    via: str = "button"
    number: int | None = None


@dataclass(frozen=True, kw_only=True)
class BuildRequestPayload(RepoPayload):
    """``build-request``: a merge (or push) of ``sha`` to the default branch."""

    sha: str
    number: int | None = None


@dataclass(frozen=True, kw_only=True)
class BuildRunPayload(Payload):
    """``build-dispatch`` / ``build-local``: start approved build request ``request_id``."""

    repo: str
    installation_id: int
    request_id: int


@dataclass(frozen=True, kw_only=True)
class BuildStatusPayload(RepoPayload):
    """``build-status``: a ``workflow_run`` event of the dispatched build workflow."""

    request_id: int
    sha: str | None = None
    action: str = ""
    status: str | None = None
    conclusion: str | None = None
    run_id: int | None = None
    run_url: str | None = None
    path: str | None = None
