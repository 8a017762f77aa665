#!/usr/bin/env python3
"""Write a random-weight llama GGUF with a realistic shape, for benchmarks and tests.

The weights are random (the text it writes is gibberish), but the shape, the
quantization and the tokenizer are those of a real small llama model, so the
llama.cpp runtime does exactly the work it would do for a real one: this is what
``benchmarks/preview_throughput.py`` measures, and what the teacher tests run on
before (and besides) the tiny trained teacher.

    python scripts/make_bench_gguf.py --shape 0.5b --quant q8_0 --out .cache/bench/0.5b-q8_0.gguf
    python scripts/make_bench_gguf.py --shape tiny --quant f32 --out /tmp/tiny.gguf

Shapes (llama architecture, SwiGLU FFN, RMSNorm, RoPE):

    tiny  E=64    layers=2   FFN=128   heads=4  (kv 2)  vocab=512
    0.5b  E=1024  layers=24  FFN=2816  heads=16 (kv 16) vocab=32000
    1.5b  E=2048  layers=24  FFN=5632  heads=16 (kv 16) vocab=32000
    0.5b-gqa, 1.5b-gqa: the same with 4 KV heads (grouped-query attention)

The tokenizer is a sentencepiece-style ``llama`` vocabulary: ``<unk>``, ``<s>``,
``</s>``, the LAB template tokens (control), the 256 byte tokens ``<0x00>``..``<0xFF>``
(type BYTE), then letter pieces with and without the ``▁`` word marker.
"""

from __future__ import annotations

import argparse
import itertools
import string
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>", "<|pretrain|>", "<|/pretrain|>"]


@dataclass(frozen=True)
class Shape:
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    n_ctx: int = 4096


SHAPES = {
    "tiny": Shape(n_embd=64, n_layer=2, n_ff=128, n_head=4, n_head_kv=2, n_vocab=512),
    "0.5b": Shape(n_embd=1024, n_layer=24, n_ff=2816, n_head=16, n_head_kv=16, n_vocab=32000),
    "1.5b": Shape(n_embd=2048, n_layer=24, n_ff=5632, n_head=16, n_head_kv=16, n_vocab=32000),
    # grouped-query attention, 4 query heads per KV head, as in Llama 3 (32/8) and most
    # current teachers: a quarter of the KV cache, so attention costs a quarter
    "0.5b-gqa": Shape(n_embd=1024, n_layer=24, n_ff=2816, n_head=16, n_head_kv=4, n_vocab=32000),
    "1.5b-gqa": Shape(n_embd=2048, n_layer=24, n_ff=5632, n_head=16, n_head_kv=4, n_vocab=32000),
}


def build_vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of a sentencepiece-style llama vocabulary."""
    import gguf

    T = gguf.TokenType
    tokens: list[str] = []
    types: list[int] = []
    for i, tok in enumerate(SPECIAL_TOKENS):
        tokens.append(tok)
        types.append(T.UNKNOWN if i == 0 else T.CONTROL)
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(T.BYTE)
    if n_vocab < len(tokens) + 1:
        raise SystemExit(f"vocab size {n_vocab} is too small (need > {len(tokens)})")
    seen = set(tokens)

    def pieces():
        chars = string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation
        yield "▁"
        for c in chars:
            yield "▁" + c
            yield c
        letters = string.ascii_lowercase
        for a, b in itertools.product(letters, repeat=2):
            yield "▁" + a + b
            yield a + b
        for a, b, c in itertools.product(letters, repeat=3):
            yield "▁" + a + b + c
            yield a + b + c
        for a, b, c, d in itertools.product(letters, repeat=4):
            yield "▁" + a + b + c + d

    for piece in pieces():
        if len(tokens) >= n_vocab:
            break
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        types.append(T.NORMAL)
    # Longer pieces win merges (higher score), ties broken by order.
    scores = [0.0 if t != T.NORMAL else float(len(tok)) - i * 1e-6 for i, (tok, t) in enumerate(zip(tokens, types))]
    return tokens, scores, [int(t) for t in types]


def write_gguf(shape: Shape, quant: str, out: Path, seed: int = 0, chat_template: str | None = None) -> Path:
    import gguf

    qtypes = {
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
        "q4_0": gguf.GGMLQuantizationType.Q4_0,
        "f16": gguf.GGMLQuantizationType.F16,
        "f32": gguf.GGMLQuantizationType.F32,
    }
    file_types = {
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "f32": gguf.LlamaFileType.ALL_F32,
    }
    qtype = qtypes[quant]
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")

    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_name(f"lab-ci random bench llama {out.stem}")
    w.add_context_length(shape.n_ctx)
    w.add_embedding_length(shape.n_embd)
    w.add_block_count(shape.n_layer)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_rope_dimension_count(shape.n_embd // shape.n_head)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(file_types[quant])
    w.add_vocab_size(shape.n_vocab)

    tokens, scores, types = build_vocab(shape.n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    if chat_template:
        w.add_chat_template(chat_template)

    def matrix(name: str, rows: int, cols: int, std: float) -> None:
        a = (rng.standard_normal((rows, cols), dtype=np.float32) * std).astype(np.float32)
        if qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, a)
        elif qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)

    def norm(name: str, n: int) -> None:
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    E, F = shape.n_embd, shape.n_ff
    head_dim = E // shape.n_head
    kv = head_dim * shape.n_head_kv
    std = 1.0 / np.sqrt(E)
    matrix("token_embd.weight", shape.n_vocab, E, 1.0)
    for i in range(shape.n_layer):
        norm(f"blk.{i}.attn_norm.weight", E)
        matrix(f"blk.{i}.attn_q.weight", E, E, std)
        matrix(f"blk.{i}.attn_k.weight", kv, E, std)
        matrix(f"blk.{i}.attn_v.weight", kv, E, std)
        matrix(f"blk.{i}.attn_output.weight", E, E, std)
        norm(f"blk.{i}.ffn_norm.weight", E)
        matrix(f"blk.{i}.ffn_gate.weight", F, E, std)
        matrix(f"blk.{i}.ffn_up.weight", F, E, std)
        matrix(f"blk.{i}.ffn_down.weight", E, F, 1.0 / np.sqrt(F))
    norm("output_norm.weight", E)
    # A larger output scale gives peaked next-token distributions (clear argmax,
    # like a trained model) instead of near-uniform ones.
    matrix("output.weight", shape.n_vocab, E, 4.0 * std)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--quant", choices=["q8_0", "q4_0", "f16", "f32"], default="q8_0")
    ap.add_argument("--out", type=Path, required=True, help="output .gguf file")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    ap.add_argument("--chat-template", default=None, help="a Jinja chat template to store as tokenizer.chat_template")
    ap.add_argument("--force", action="store_true", help="rewrite the file even if it exists")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.force:
        print(f"{args.out} exists (use --force to rewrite)", file=sys.stderr)
        return 0
    write_gguf(SHAPES[args.shape], args.quant, args.out, seed=args.seed, chat_template=args.chat_template)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
