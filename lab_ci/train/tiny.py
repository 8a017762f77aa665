"""Tiny, random, download-free student models for tests and benchmarks.

:func:`train_bpe_tokenizer` trains a byte-level BPE (``tokenizers``) on a few texts
and wraps it as a Hugging Face tokenizer with the LAB special tokens and chat
template; :func:`make_tiny_llama` writes a randomly initialised ``LlamaForCausalLM``
plus that tokenizer as an HF model directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lab_ci.train.data import ASSISTANT, EOS, SYSTEM, USER

PAD = "<|pad|>"
LAB_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}<|assistant|>\n{{ m['content'] }}<|endoftext|>{% if not loop.last %}\n{% endif %}"
    "{% else %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, SYSTEM, USER, ASSISTANT, EOS]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=PAD, additional_special_tokens=[SYSTEM, USER, ASSISTANT]
    )
    fast.chat_template = LAB_CHAT_TEMPLATE
    return fast


def make_tiny_llama(
    out: Path,
    tokenizer,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int | None = None,
    max_positions: int = 1024,
    seed: int = 0,
) -> Path:
    """Write a random ``LlamaForCausalLM`` with ``tokenizer`` to ``out`` (an HF model dir)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate or 2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    out = Path(out)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
