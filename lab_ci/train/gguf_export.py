"""Export a llama-architecture Hugging Face model directory to a GGUF file for llama.cpp.

``export_gguf(hf_dir, out, quant="f16")`` reads ``config.json``, the safetensors
weights and a byte-level BPE ``tokenizer.json`` (+ ``tokenizer_config.json``), and
writes a GGUF file with the ``gguf`` package, the way llama.cpp's
``convert_hf_to_gguf.py`` does for ``LlamaForCausalLM``:

* tensor names through ``gguf``'s own HF -> GGUF name map (``blk.N.attn_q.weight``...);
* ``q_proj`` / ``k_proj`` rows permuted from HF's rotate-half rotary layout to the
  interleaved layout llama.cpp's ``rope`` expects (``k`` with the kv head count, so
  grouped-query attention works);
* tied embeddings: no ``output.weight`` is written; llama.cpp then reuses
  ``token_embd.weight`` as the output projection;
* tokenizer model ``gpt2`` (tokens, token types, merges, special ids, pre-tokenizer
  ``gpt-2``) and ``tokenizer.chat_template``;
* quantisation: ``f32``; ``f16`` (2-D tensors, norms stay f32); ``q8_0`` (2-D tensors
  whose rows are a multiple of 32 values, others f16).

Pure reading and writing of files. A model it cannot export (other architectures,
unsupported rope scaling, biases, non-BPE tokenizers) raises :class:`NotExportable`;
a failed write (disk full, an unwritable folder) a plain ``LabCIError`` naming the file
and the cause, after removing the partial ``OUT.tmp``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lab_ci.errors import LabCIError
from lab_ci.train.files import failing_write, fsync_file, os_error

QUANTS = ("f32", "f16", "q8_0")


class NotExportable(LabCIError):
    """This model cannot be written as GGUF by this exporter (the model, not the disk)."""


def _config(hf_dir: Path) -> dict:
    path = hf_dir / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotExportable(f"{path}: not found; is {hf_dir} a Hugging Face model directory?") from None
    except json.JSONDecodeError as exc:
        raise NotExportable(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    archs = config.get("architectures") or []
    if config.get("model_type") != "llama" and "LlamaForCausalLM" not in archs:
        raise NotExportable(
            f"{path}: model_type {config.get('model_type')!r} is not supported; only llama-architecture models can be exported"
        )
    for flag in ("attention_bias", "mlp_bias"):
        if config.get(flag):
            raise NotExportable(f"{path}: {flag}=true is not supported by this exporter")
    return config


def rope_theta(config: dict) -> float:
    """rope base frequency, from ``rope_theta`` or transformers 5's ``rope_parameters``."""
    params = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or {}
    rope_type = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if rope_type != "default":
        raise NotExportable(f"rope scaling type {rope_type!r} is not supported by this exporter")
    return float(params.get("rope_theta", config.get("rope_theta", 10000.0)))


def permute_rotary(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder q/k projection rows from HF's rotate-half layout to llama.cpp's
    interleaved pairs (what convert_hf_to_gguf.py's ``LlamaModel.permute`` does)."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _hf_tensors(hf_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, float32 array) for every tensor in the directory's safetensors files."""
    from safetensors import safe_open

    files = sorted(hf_dir.glob("*.safetensors"))
    if not files:
        raise NotExportable(f"{hf_dir}: no *.safetensors weights found")
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():
                yield name, f.get_tensor(name).float().numpy()


def _vocab(hf_dir: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """Token strings in id order and their GGUF token types, padded to ``vocab_size``."""
    import gguf

    path = hf_dir / "tokenizer.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotExportable(f"{path}: not found; the exporter needs a fast (tokenizer.json) tokenizer") from None
    model = data.get("model") or {}
    if model.get("type") != "BPE" or not model.get("merges"):
        raise NotExportable(f"{path}: only byte-level BPE tokenizers with merges can be exported")
    by_id: dict[int, tuple[str, int]] = {i: (tok, gguf.TokenType.NORMAL) for tok, i in model["vocab"].items()}
    for added in data.get("added_tokens", []):
        kind = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        by_id[added["id"]] = (added["content"], kind)
    if max(by_id) >= vocab_size:
        raise NotExportable(f"{path}: token id {max(by_id)} does not fit the model's vocab_size {vocab_size}")
    tokens, types = [], []
    for i in range(vocab_size):
        tok, kind = by_id.get(i, (f"[PAD{i}]", gguf.TokenType.UNUSED))
        tokens.append(tok)
        types.append(int(kind))
    return tokens, types


def add_bpe_tokenizer(writer, tokenizer_dir: Path, vocab_size: int, *, tokenizer_pre: str = "gpt-2") -> None:
    """Write the byte-level BPE tokenizer of ``tokenizer_dir`` (``tokenizer.json`` and
    ``tokenizer_config.json``) into a GGUF writer as llama.cpp's ``gpt2`` tokenizer:
    tokens (padded to ``vocab_size``), token types, merges, special ids and the chat
    template."""
    import gguf

    tokenizer_dir = Path(tokenizer_dir)
    tokens, token_types = _vocab(tokenizer_dir, vocab_size)
    special = gguf.SpecialVocab(tokenizer_dir, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise NotExportable(
            f"{tokenizer_dir / 'tokenizer.json'}: no BPE merges found; llama.cpp cannot load a gpt2 tokenizer without them"
        )
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tokenizer_pre)
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    special.add_to_gguf(writer, quiet=True)


def _encode(name: str, data: np.ndarray, quant: str):
    """(array, raw ggml type or None) for one tensor at the requested precision."""
    import gguf

    if data.ndim <= 1 or quant == "f32":
        return data.astype(np.float32), None
    if quant == "q8_0" and data.shape[-1] % 32 == 0:
        qtype = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(data.astype(np.float32), qtype), qtype
    return data.astype(np.float16), None


def export_gguf(
    hf_dir: Path,
    out: Path,
    *,
    quant: str = "f16",
    name: str | None = None,
    tokenizer_pre: str = "gpt-2",
) -> Path:
    """Write ``out`` (a GGUF file) from the llama-architecture HF model in ``hf_dir``.

    ``quant`` is ``"f32"``, ``"f16"`` or ``"q8_0"``. ``name`` goes into
    ``general.name`` (default: the directory's name). Returns ``out``.
    """
    import gguf

    hf_dir, out = Path(hf_dir), Path(out)
    if quant not in QUANTS:
        raise NotExportable(f"unknown quantisation {quant!r}; choose one of {', '.join(QUANTS)}")
    cfg = _config(hf_dir)
    n_embd = int(cfg["hidden_size"])
    n_layer = int(cfg["num_hidden_layers"])
    n_head = int(cfg["num_attention_heads"])
    n_head_kv = int(cfg.get("num_key_value_heads") or n_head)
    head_dim = int(cfg.get("head_dim") or n_embd // n_head)
    vocab_size = int(cfg["vocab_size"])
    tied = bool(cfg.get("tie_word_embeddings", False))

    _vocab(hf_dir, vocab_size)  # a tokenizer it cannot export fails before anything is written

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise os_error(e, action="cannot create the folder") from None
    tmp = out.with_name(out.name + ".tmp")
    with failing_write(out, tmp):
        writer = gguf.GGUFWriter(str(tmp), arch="llama")
        writer.add_name(name or hf_dir.name)
        writer.add_file_type(
            {
                "f32": gguf.LlamaFileType.ALL_F32,
                "f16": gguf.LlamaFileType.MOSTLY_F16,
                "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
            }[quant]
        )
        if quant == "q8_0":
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_vocab_size(vocab_size)
        writer.add_context_length(int(cfg.get("max_position_embeddings", 2048)))
        writer.add_embedding_length(n_embd)
        writer.add_block_count(n_layer)
        writer.add_feed_forward_length(int(cfg["intermediate_size"]))
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_head_kv)
        writer.add_rope_dimension_count(head_dim)
        if head_dim != n_embd // n_head:
            writer.add_key_length(head_dim)
            writer.add_value_length(head_dim)
        writer.add_rope_freq_base(rope_theta(cfg))
        writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))

        add_bpe_tokenizer(writer, hf_dir, vocab_size, tokenizer_pre=tokenizer_pre)

        names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
        written = set()
        for hf_name, data in _hf_tensors(hf_dir):
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue
            if hf_name == "lm_head.weight" and tied:
                continue  # llama.cpp falls back to token_embd.weight
            gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise NotExportable(f"{hf_dir}: tensor {hf_name!r} has no llama GGUF name")
            if hf_name.endswith("q_proj.weight"):
                data = permute_rotary(data, n_head)
            elif hf_name.endswith("k_proj.weight"):
                data = permute_rotary(data, n_head_kv)
            array, raw_dtype = _encode(gguf_name, data, quant)
            writer.add_tensor(gguf_name, array, raw_dtype=raw_dtype)
            written.add(gguf_name)
        if "token_embd.weight" not in written:
            raise NotExportable(f"{hf_dir}: no embedding tensor (model.embed_tokens.weight) found")

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.flush()
        written = writer.fout[0].tell()
        writer.close()
        on_disk = os.path.getsize(tmp)
        if on_disk != written:  # numpy's tofile can lose its last buffered bytes without a word
            raise OSError(f"{on_disk} of {written} bytes on disk")  # the cause: see failing_write
        fsync_file(tmp)
        os.replace(tmp, out)
    return out
