"""Chat formatting: conversations -> one prompt string plus the stop strings to use.

Pure functions. A model that ships a chat template (GGUF metadata key
``tokenizer.chat_template``, a Jinja template in the Hugging Face convention) is
rendered with it, in a sandboxed Jinja environment. A model without one gets the LAB
template::

    <|system|>
    {system}
    <|user|>
    {user}
    <|assistant|>
    {assistant}<|endoftext|>

with ``<|endoftext|>`` as the stop string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .base import LAB_ASSISTANT, LAB_EOS, LAB_SYSTEM, LAB_USER, Message, TeacherError

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
_ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True, slots=True)
class ChatFormat:
    """How one model wants conversations written.

    ``template`` is a Jinja chat template, or None for the LAB template.
    ``stop`` holds the stop strings that end an assistant turn.
    """

    template: str | None = None
    bos_token: str = ""
    eos_token: str = LAB_EOS
    stop: tuple[str, ...] = (LAB_EOS,)

    @property
    def name(self) -> str:
        return "lab" if self.template is None else "gguf-jinja"


def _check_messages(messages: Sequence[Message]) -> None:
    if not messages:
        raise TeacherError("a conversation needs at least one message")
    for i, m in enumerate(messages):
        if m.role not in _ROLES:
            raise TeacherError(f"message {i}: unknown role {m.role!r} (expected one of {sorted(_ROLES)})")


def render_lab(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """Render a conversation in the LAB template (the format InstructLab trains on)."""
    _check_messages(messages)
    heads = {"system": LAB_SYSTEM, "user": LAB_USER, "assistant": LAB_ASSISTANT}
    parts: list[str] = []
    for i, m in enumerate(messages):
        last = i == len(messages) - 1
        if m.role == "assistant":
            parts.append(f"{LAB_ASSISTANT}\n{m.content}{LAB_EOS}" + ("" if last else "\n"))
        else:
            parts.append(f"{heads[m.role]}\n{m.content}\n")
    if add_generation_prompt and messages[-1].role != "assistant":
        parts.append(f"{LAB_ASSISTANT}\n")
    return "".join(parts)


def _raise_exception(message: str):
    raise TeacherError(f"chat template refused the conversation: {message}")


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def render_jinja(
    template: str,
    messages: Sequence[Message],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render a Hugging Face-style Jinja chat template in a sandbox."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    _check_messages(messages)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    try:
        tmpl = env.from_string(template)
        return tmpl.render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
        )
    except TeacherError:
        raise
    except jinja2.TemplateError as e:
        raise TeacherError(f"cannot render the model's chat template: {type(e).__name__}: {e}") from e


def chat_format_from_metadata(metadata: Mapping[str, str], *, bos_token: str = "", eos_token: str = "") -> ChatFormat:
    """The chat format of a GGUF model, from its metadata and special-token texts.

    Uses ``tokenizer.chat_template`` when present and non-empty, else the LAB template.
    """
    template = (metadata.get(CHAT_TEMPLATE_KEY) or "").strip()
    if not template:
        return ChatFormat()
    stop = (eos_token,) if eos_token else ()
    return ChatFormat(template=template, bos_token=bos_token, eos_token=eos_token, stop=stop)


def format_chat(messages: Sequence[Message], fmt: ChatFormat = ChatFormat()) -> str:
    """The prompt string for one conversation, ending where the assistant speaks next."""
    if fmt.template is None:
        return render_lab(messages)
    return render_jinja(fmt.template, messages, bos_token=fmt.bos_token, eos_token=fmt.eos_token)


def merge_stops(user_stop: Sequence[str], fmt: ChatFormat) -> tuple[str, ...]:
    """The caller's stop strings plus the template's, without duplicates or empties."""
    out: list[str] = []
    for s in (*user_stop, *fmt.stop):
        if s and s not in out:
            out.append(s)
    return tuple(out)
