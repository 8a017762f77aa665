"""A small byte-level BPE tokenizer with the LAB chat template, trained on our own text.

Used to build the tiny test models (``scripts/build_tiny_models.py``): no tokenizer
can be downloaded here, so we train one (HF ``tokenizers``) on the example taxonomy's
strings and documents, and wrap it as a ``transformers`` fast tokenizer whose
``chat_template`` renders the LAB format::

    <|system|>
    {system}
    <|user|>
    {user}
    <|assistant|>
    {answer}<|endoftext|>

The tokenizer is byte-level (GPT-2 style pre-tokenizer and decoder, no prefix space),
so any text round-trips, and llama.cpp reads it as tokenizer model ``gpt2`` with
pre-tokenizer ``gpt-2``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..teacher.base import LAB_ASSISTANT as ASSISTANT
from ..teacher.base import LAB_EOS as ENDOFTEXT
from ..teacher.base import LAB_SYSTEM as SYSTEM
from ..teacher.base import LAB_USER as USER

#: Special tokens, in id order: ``<|endoftext|>`` is 0, ``<|pad|>`` is 1, ...
PAD = "<|pad|>"
SPECIAL_TOKENS = (ENDOFTEXT, PAD, SYSTEM, USER, ASSISTANT)

#: Jinja chat template of the LAB format (the same shape as IBM Granite's).
LAB_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' + message['content'] + '<|endoftext|>' + ('' if loop.last else '\n') }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def format_lab(system: str | None, user: str, answer: str | None = None) -> str:
    """The LAB chat format as plain text (what ``LAB_CHAT_TEMPLATE`` renders).

    With ``answer=None`` the text ends with the generation prompt ``<|assistant|>\\n``.
    """
    text = f"{SYSTEM}\n{system}\n" if system is not None else ""
    text += f"{USER}\n{user}\n{ASSISTANT}\n"
    if answer is not None:
        text += f"{answer}{ENDOFTEXT}"
    return text


def yaml_strings(node: Any) -> Iterator[str]:
    """Every string value inside a parsed YAML document (keys excluded), depth first."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from yaml_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from yaml_strings(item)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer on ``texts``; return a ``PreTrainedTokenizerFast``.

    Deterministic for the same texts and vocab size. The result has the special
    tokens above (eos ``<|endoftext|>``, pad ``<|pad|>``, bos ``<|endoftext|>`` but
    never added automatically) and the LAB chat template.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts)
    if not texts:
        raise ValueError("cannot train a tokenizer on no text")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=ENDOFTEXT,
        eos_token=ENDOFTEXT,
        pad_token=PAD,
        unk_token=None,
        additional_special_tokens=[SYSTEM, USER, ASSISTANT],
        add_bos_token=False,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
    )
    fast.chat_template = LAB_CHAT_TEMPLATE
    return fast


def save_tokenizer(tokenizer, out_dir: Path) -> Path:
    """Save as a transformers tokenizer directory (tokenizer.json, tokenizer_config.json
    with the chat template inline, special_tokens_map.json)."""
    import json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    # Keep the template inside tokenizer_config.json as well (older readers, gguf's
    # SpecialVocab and llama.cpp converters look there first).
    config_path = out_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["chat_template"] = LAB_CHAT_TEMPLATE
    config["add_bos_token"] = False
    config["add_eos_token"] = False
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out_dir / "chat_template.jinja").unlink(missing_ok=True)
    return out_dir
