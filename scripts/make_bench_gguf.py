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

The tokenizer is, by default, a sentencepiece-style ``llama`` vocabulary: ``<unk>``,
``<s>``, ``</s>``, the LAB template tokens (control), the 256 byte tokens
``<0x00>``..``<0xFF>`` (type BYTE), then letter pieces of up to four letters with and
without the ``▁`` word marker. It splits English into ~2.3 characters per token, about
half what real tokenizers do, so prompts come out ~1.7x too long in tokens.

``--bpe-corpus TEXTS`` gives the model a real-sized tokenizer instead: a byte-level BPE
of the shape's vocabulary size (32000 for 0.5b/1.5b, Llama 2's) trained with HF
``tokenizers`` on real English: TEXTS is a git bundle or repository (every ``qna.yaml``
blob of every ref, e.g. ``../shared/corpus/taxonomy-history.bundle``: ~1,600 files
written by real contributors) or a folder of ``.txt``/``.md``/``.yaml`` files. It is
trained once per corpus and vocabulary size and kept beside the output
(``bpe-<vocab>-<digest>/``). On the pipeline's prompts it gives ~4 characters per
token, as Llama 2's and Mistral's tokenizers do on English.

    python scripts/make_bench_gguf.py --shape 0.5b --quant q4_0 --out .cache/bench/0.5b-q4_0-bpe.gguf \
        --bpe-corpus ../shared/corpus/taxonomy-history.bundle
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # lab_ci, for --bpe-corpus, without an install

SPECIAL_TOKENS = [
    "<unk>",
    "<s>",
    "</s>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|endoftext|>",
    "<|pretrain|>",
    "<|/pretrain|>",
]


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


def corpus_texts(source: Path) -> list[str]:
    """English texts to train a tokenizer on: the string values of every ``qna.yaml``
    blob reachable from any ref of a git bundle or repository, or the files of a folder
    (``.txt``, ``.md``, ``.yaml``)."""
    import yaml

    from lab_ci.train.tokenizer import yaml_strings

    def strings(data: bytes) -> list[str]:
        text = data.decode("utf-8", "replace")
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            return [text]  # real contributions include broken YAML: its text still counts
        return [s for s in yaml_strings(doc) if s.strip()] if isinstance(doc, (dict, list)) else [text]

    if source.is_dir() and not (source / "HEAD").exists() and not (source / ".git").exists():
        files = sorted(p for p in source.rglob("*") if p.suffix in {".txt", ".md", ".yaml"} and p.is_file())
        return [s for p in files for s in strings(p.read_bytes())]
    with tempfile.TemporaryDirectory() as tmp:
        repo = source
        if source.is_file():  # a bundle: clone it (read-only input)
            repo = Path(tmp) / "corpus.git"
            subprocess.run(["git", "clone", "-q", "--mirror", str(source), str(repo)], check=True, capture_output=True)
        objects = subprocess.run(
            ["git", "-C", str(repo), "rev-list", "--all", "--objects"], check=True, capture_output=True, text=True
        ).stdout
        blobs = sorted({line.split()[0] for line in objects.splitlines() if line.endswith("qna.yaml")})
        out = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "--batch"],
            input="\n".join(blobs).encode() + b"\n",
            check=True,
            capture_output=True,
        ).stdout
    texts, i = [], 0
    while i < len(out):
        header_end = out.index(b"\n", i)
        size = int(out[i:header_end].split()[2])
        texts += strings(out[header_end + 1 : header_end + 1 + size])
        i = header_end + 1 + size + 1
    return texts


def bpe_tokenizer(corpus: Path, vocab_size: int, cache: Path) -> Path:
    """A byte-level BPE tokenizer of ``vocab_size`` tokens trained on ``corpus`` (see
    :func:`corpus_texts`), saved once under ``cache``; returns its folder."""
    from lab_ci.train.tokenizer import save_tokenizer, train_tokenizer

    texts = corpus_texts(corpus)
    if not texts:
        raise ValueError("no qna.yaml files or text files in it")
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:12]
    folder = cache / f"bpe-{vocab_size}-{digest}"
    if not (folder / "tokenizer.json").exists():
        tok = train_tokenizer(texts, vocab_size=vocab_size)
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix=folder.name + "."))
        save_tokenizer(tok, tmp)
        tmp.replace(folder)
        print(f"trained {folder.name}: {len(tok)} tokens on {len(texts)} texts ({sum(map(len, texts)) / 1e6:.1f} MB)")
    return folder


def write_gguf(
    shape: Shape, quant: str, out: Path, seed: int = 0, chat_template: str | None = None, tokenizer: Path | None = None
) -> Path:
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

    if tokenizer is not None:
        from lab_ci.train.gguf_export import add_bpe_tokenizer

        add_bpe_tokenizer(w, tokenizer, shape.n_vocab)  # its LAB chat template included
    else:
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
    ap.add_argument(
        "--bpe-corpus",
        type=Path,
        default=None,
        metavar="TEXTS",
        help="train a byte-level BPE of the shape's vocabulary size on TEXTS (a git bundle or "
        "repository: its qna.yaml files; or a folder of text files) instead of the letter vocabulary",
    )
    ap.add_argument("--force", action="store_true", help="rewrite the file even if it exists")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.force:
        print(f"{args.out} exists (use --force to rewrite)", file=sys.stderr)
        return 0
    if args.bpe_corpus is not None and not args.bpe_corpus.exists():
        print(f"--bpe-corpus {args.bpe_corpus}: no such file or folder", file=sys.stderr)
        return 2
    shape = SHAPES[args.shape]
    tokenizer = None
    if args.bpe_corpus is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            tokenizer = bpe_tokenizer(args.bpe_corpus, shape.n_vocab, args.out.parent)
        except subprocess.CalledProcessError as e:
            why = (e.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            print(
                f"--bpe-corpus {args.bpe_corpus}: not a git bundle or repository{': ' + why[-1] if why else ''}",
                file=sys.stderr,
            )
            return 2
        except ValueError as e:
            print(f"--bpe-corpus {args.bpe_corpus}: {e}", file=sys.stderr)
            return 2
    write_gguf(shape, args.quant, args.out, seed=args.seed, chat_template=args.chat_template, tokenizer=tokenizer)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
