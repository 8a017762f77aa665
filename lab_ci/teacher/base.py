"""The one interface every teacher backend implements.

A backend turns prompts into completions. Backends: a local GGUF model through
llama-cpp-python (``lab_ci.teacher.llamacpp``), or any OpenAI-compatible server
(``lab_ci.teacher.openai``). ``lab_ci.teacher.load_teacher(spec)`` picks one from a
spec: a path to a ``.gguf`` file, or an ``http(s)://`` base URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import LabCIError

#: The LAB chat template, used when a model ships none.
LAB_SYSTEM = "<|system|>"
LAB_USER = "<|user|>"
LAB_ASSISTANT = "<|assistant|>"
LAB_EOS = "<|endoftext|>"


class TeacherError(LabCIError, RuntimeError):
    """A teacher could not be loaded or did not answer usefully. The message says why;
    the CLI prints it as one ``lab-ci: error:`` line."""


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    #: Keep the k likeliest tokens / drop tokens below min_p x the top probability, before
    #: top_p. None: the backend's default (llama.cpp's 40 and 0.05 for the local teacher;
    #: not sent to an OpenAI-compatible server, whose own default applies).
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class TeacherInfo:
    id: str  # stable identity: "gguf:<sha256 prefix>:<file name>" or "openai:<base url>#<model>"
    name: str
    details: dict = field(default_factory=dict)


@runtime_checkable
class Teacher(Protocol):
    info: TeacherInfo

    def complete(self, prompts: Sequence[str], params: SamplingParams, n: int = 1) -> list[list[Completion]]:
        """Complete raw prompts: result[i] holds the n completions of prompts[i].

        Backends decode everything they are given together where they can (the
        local backend evaluates a shared prompt prefix once and decodes all
        sequences in one batch).
        """

    def chat(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams, n: int = 1
    ) -> list[list[Completion]]:
        """Like complete(), for chat conversations, using the model's chat template."""

    def close(self) -> None: ...
