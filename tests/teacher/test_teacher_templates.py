"""Chat formatting (pure functions): the LAB template and GGUF Jinja templates."""

from __future__ import annotations

import pytest

from lab_ci.teacher.base import Message, TeacherError
from lab_ci.teacher.templates import (
    ChatFormat,
    chat_format_from_metadata,
    format_chat,
    merge_stops,
    render_jinja,
    render_lab,
)

CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_lab_template_system_user():
    msgs = [Message("system", "You are a teacher."), Message("user", "What is 2+2?")]
    assert render_lab(msgs) == "<|system|>\nYou are a teacher.\n<|user|>\nWhat is 2+2?\n<|assistant|>\n"


def test_lab_template_multi_turn_closes_assistant_turns():
    msgs = [Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye")]
    assert render_lab(msgs) == "<|user|>\nHi\n<|assistant|>\nHello<|endoftext|>\n<|user|>\nBye\n<|assistant|>\n"


def test_lab_template_rejects_unknown_role_and_empty():
    with pytest.raises(TeacherError, match="unknown role 'tool'"):
        render_lab([Message("tool", "x")])
    with pytest.raises(TeacherError, match="at least one message"):
        render_lab([])


def test_jinja_chatml_template():
    out = render_jinja(CHATML, [Message("user", "Hi")])
    assert out == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_jinja_template_sees_bos_eos_and_raise_exception():
    tmpl = "{{ bos_token }}{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}{{ messages[0]['content'] }}{{ eos_token }}"
    assert render_jinja(tmpl, [Message("user", "x")], bos_token="<s>", eos_token="</s>") == "<s>x</s>"
    with pytest.raises(TeacherError, match="first must be user"):
        render_jinja(tmpl, [Message("system", "x")])


def test_jinja_template_is_sandboxed():
    evil = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(TeacherError, match="cannot render"):
        render_jinja(evil, [Message("user", "x")])


def test_jinja_syntax_error_is_a_teacher_error():
    with pytest.raises(TeacherError, match="TemplateSyntaxError"):
        render_jinja("{% for %}", [Message("user", "x")])


def test_format_from_metadata_prefers_gguf_template():
    fmt = chat_format_from_metadata({"tokenizer.chat_template": CHATML}, bos_token="<s>", eos_token="<|im_end|>")
    assert fmt.name == "gguf-jinja" and fmt.stop == ("<|im_end|>",)
    assert format_chat([Message("user", "Hi")], fmt).endswith("<|im_start|>assistant\n")


def test_format_from_metadata_falls_back_to_lab():
    for meta in ({}, {"tokenizer.chat_template": "  "}):
        fmt = chat_format_from_metadata(meta, eos_token="</s>")
        assert fmt == ChatFormat() and fmt.name == "lab" and fmt.stop == ("<|endoftext|>",)
        assert format_chat([Message("user", "Hi")], fmt) == "<|user|>\nHi\n<|assistant|>\n"


def test_merge_stops_dedupes_and_drops_empty():
    assert merge_stops(["\n\n", "", "<|endoftext|>"], ChatFormat()) == ("\n\n", "<|endoftext|>")
