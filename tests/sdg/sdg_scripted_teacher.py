"""A scripted teacher for PURE unit tests of parsing, filters and bookkeeping only.

Pipeline tests use the real llama.cpp runtime on the tiny teacher; this double only
lets block logic be tested without a model. It answers by looking at the prompt."""

from __future__ import annotations

from lab_ci.teacher.base import Completion, TeacherInfo


class ScriptedTeacher:
    info = TeacherInfo(id="scripted:test", name="scripted")

    def __init__(self, rules):
        # rules: list of (substring in the last user message, reply text or callable(prompt) -> text)
        self.rules = rules
        self.calls = []

    def chat(self, conversations, params, n=1):
        self.calls.append((len(conversations), n))
        out = []
        for conv in conversations:
            prompt = conv[-1].content
            reply = next((r for key, r in self.rules if key in prompt), "")
            text = reply(prompt) if callable(reply) else reply
            out.append([Completion(text=text, completion_tokens=len(text.split())) for _ in range(n)])
        return out

    def complete(self, prompts, params, n=1):
        raise NotImplementedError

    def close(self):
        pass
