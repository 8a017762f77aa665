"""The tiny models built by scripts/build_tiny_models.py: tokenizer, GGUF export,
llama.cpp loading and generation, agreement with transformers, idempotent builds."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import EXAMPLE_TAXONOMY, REPO_ROOT

from lab_ci.errors import LabCIError
from lab_ci.train.gguf_export import export_gguf, permute_rotary
from lab_ci.train.tokenizer import (
    ASSISTANT, ENDOFTEXT, LAB_CHAT_TEMPLATE, PAD, SPECIAL_TOKENS, SYSTEM, USER, format_lab,
    train_tokenizer, yaml_strings,
)

SCRIPT = REPO_ROOT / "scripts" / "build_tiny_models.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("build_tiny_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _taxonomy_words() -> set[str]:
    words = set()
    for path in EXAMPLE_TAXONOMY.rglob("qna.yaml"):
        for text in yaml_strings(yaml.safe_load(path.read_text(encoding="utf-8"))):
            words.update(re.findall(r"[a-z]+", text.lower()))
    for path in (REPO_ROOT / "scripts" / "example-documents").rglob("*.md"):
        words.update(re.findall(r"[a-z]+", path.read_text(encoding="utf-8").lower()))
    return words


def _llama(path: Path, **kwargs):
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=2048, verbose=False, n_threads=1, **kwargs)


def _hf_greedy(hf_dir: Path, ids: list[int], n: int) -> list[int]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False)
    return out[0, len(ids):].tolist()  # ends at <|endoftext|> (id 0) when the model stops


def _cpp_greedy(llm, ids: list[int], n: int) -> list[int]:
    llm.reset()
    got = []
    for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
        got.append(token)
        if len(got) == n or token == 0:  # <|endoftext|>
            break
    return got


def _hf_tokenizer(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


# --------------------------------------------------------------------------- tokenizer


def test_models_tokenizer_round_trip_and_special_tokens(tiny_models):
    tok = _hf_tokenizer(tiny_models["student"])
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    assert list(ids.values()) == list(range(len(SPECIAL_TOKENS)))
    assert (tok.eos_token, tok.pad_token) == (ENDOFTEXT, PAD)
    for text in ["Git is a distributed version control system.", "naïve café ✓ 日本 \t  spaces\n\n", "x" * 50]:
        encoded = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(encoded) == text
        assert not set(encoded) & set(ids.values())  # plain text never yields special ids
    chat = format_lab("Be brief.", "What is a branch?", "A movable name.")
    encoded = tok(chat, add_special_tokens=False)["input_ids"]
    assert [i for i in encoded if i in ids.values()] == [ids[SYSTEM], ids[USER], ids[ASSISTANT], ids[ENDOFTEXT]]
    assert tok.decode(encoded) == chat


def test_models_tokenizer_chat_template_is_the_lab_format(tiny_models):
    tok = _hf_tokenizer(tiny_models["student"])
    assert tok.chat_template == LAB_CHAT_TEMPLATE
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
    ]
    assert tok.apply_chat_template(messages, tokenize=False) == "<|system|>\nS\n<|user|>\nU\n<|assistant|>\nA<|endoftext|>"
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt == format_lab("S", "U") == "<|system|>\nS\n<|user|>\nU\n<|assistant|>\n"


def test_models_tokenizer_training_is_deterministic():
    texts = ["the lighthouse flashes twice", "a commit is a snapshot", "the keepers kept goats"] * 5
    first, second = train_tokenizer(texts, vocab_size=300), train_tokenizer(texts, vocab_size=300)
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
    with pytest.raises(ValueError):
        train_tokenizer([], vocab_size=300)


# --------------------------------------------------------------------------- teacher GGUF


def test_models_teacher_gguf_loads_and_answers_like_the_taxonomy(tiny_models):
    assert tiny_models["teacher"].stat().st_size < 5_000_000
    llm = _llama(tiny_models["teacher"])
    meta = llm.metadata
    assert meta["general.architecture"] == "llama"
    assert meta["tokenizer.ggml.model"] == "gpt2"
    assert meta["tokenizer.chat_template"] == LAB_CHAT_TEMPLATE
    assert int(meta["tokenizer.ggml.eos_token_id"]) == 0
    assert llm.n_ctx() == 2048

    words = _taxonomy_words()
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": "What is a bare repository?"}], max_tokens=48, temperature=0.0
    )["choices"][0]["message"]["content"]
    found = re.findall(r"[a-z]+", reply.lower())
    assert len(found) >= 3, reply
    assert sum(w in words for w in found) / len(found) >= 0.8, reply
    assert "<|" not in reply  # stopped at <|endoftext|>, no template tokens leak


def test_models_teacher_writes_sdg_tags(tiny_models):
    """The teacher was trained on SDG-style tasks, so question generation uses the tags."""
    llm = _llama(tiny_models["teacher"])
    prompt = format_lab(
        "You are a very knowledgeable AI Assistant that will faithfully assist the user with their task.",
        "You are asked to come up with a set of 3 diverse questions - Give the antonym of an English word.\n"
        "Here is an example:\n\n[Start of Question]\nWhat is the antonym of \"hot\"?\n[End of Question]\n\n"
        "Now generate 3 such questions. Return each question between [Start of Question] and [End of Question] tags.",
    )
    text = llm.create_completion(prompt, max_tokens=80, temperature=0.0)["choices"][0]["text"]
    assert "[Start of Question]" in text and "[End of Question]" in text, text


def test_models_llamacpp_greedy_agrees_with_transformers(tiny_models):
    """teacher.gguf (Q8_0) against the HF weights it was exported from."""
    tok = _hf_tokenizer(tiny_models["dir"] / "teacher-hf")
    llm = _llama(tiny_models["teacher"])
    for question in ["What is a git branch?", "Write a haiku about a lighthouse."]:
        prompt = format_lab(None, question)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids
        hf = _hf_greedy(tiny_models["dir"] / "teacher-hf", ids, 12)
        cpp = _cpp_greedy(llm, ids, 12)
        assert cpp[:8] == hf[:8], (tok.decode(hf), tok.decode(cpp))


def test_models_student_f32_export_matches_transformers_logits(tiny_models, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    student = tiny_models["student"]
    gguf_path = export_gguf(student, tmp_path / "student.gguf", quant="f32")
    tok = _hf_tokenizer(student)
    ids = tok(format_lab(None, "Why was the Kestrel Island Lighthouse built?"), add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(student)
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    llm = _llama(gguf_path, logits_all=True)
    llm.eval(ids)
    got = np.array(llm.scores[: len(ids)])
    assert np.abs(got - ref).max() < 1e-2 * np.abs(ref).max()
    assert _cpp_greedy(llm, ids, 16) == _hf_greedy(student, ids, 16)


# --------------------------------------------------------------------------- export of other llama shapes


@pytest.mark.parametrize(
    "shape",
    [
        dict(num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=False),
        dict(num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True),
        dict(num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=True, head_dim=32),
    ],
    ids=["gqa-untied", "mha-tied", "mqa-wide-heads"],
)
def test_models_export_random_llama_agrees(tiny_models, tmp_path, shape):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _hf_tokenizer(tiny_models["student"])
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok) + 16,  # padded vocab: extra rows become unused tokens
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, max_position_embeddings=512,
        rope_theta=50000.0, rms_norm_eps=1e-6, eos_token_id=0, pad_token_id=1, bos_token_id=0, **shape,
    )
    model = LlamaForCausalLM(config).eval()
    hf_dir = tmp_path / "random-llama"
    model.save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    for src in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_models["student"] / src, hf_dir / src)
    out = export_gguf(hf_dir, tmp_path / "random.gguf", quant="f32", name="random")

    ids = tok("<|user|>\nA commit is a snapshot.\n<|assistant|>\n", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    llm = _llama(out, logits_all=True)
    assert llm.n_vocab() == config.vocab_size
    assert int(llm.metadata["llama.attention.head_count_kv"]) == shape["num_key_value_heads"]
    llm.eval(ids)
    got = np.array(llm.scores[: len(ids)])
    assert np.abs(got - ref).max() < 1e-3 * max(1.0, np.abs(ref).max())


def test_models_permute_rotary_interleaves_halves():
    # one head, head_dim 4: HF rows [r0 r1 | r2 r3] (rotate-half pairs r0/r2, r1/r3)
    weight = np.arange(4)[:, None] * np.ones((1, 3))
    assert permute_rotary(weight, 1)[:, 0].tolist() == [0, 2, 1, 3]


def test_models_export_rejects_what_it_cannot_convert(tiny_models, tmp_path):
    with pytest.raises(LabCIError, match="quantisation"):
        export_gguf(tiny_models["student"], tmp_path / "x.gguf", quant="q4_k")
    other = tmp_path / "gpt2"
    shutil.copytree(tiny_models["student"], other)
    config = json.loads((other / "config.json").read_text())
    config.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(LabCIError, match="only llama"):
        export_gguf(other, tmp_path / "x.gguf")
    with pytest.raises(LabCIError, match="config.json: not found"):
        export_gguf(tmp_path / "missing", tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


# --------------------------------------------------------------------------- the build script


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_models_build_script_second_run_reuses_the_models(tiny_models):
    folder = tiny_models["dir"]
    before = _hashes(folder)
    mtime = tiny_models["teacher"].stat().st_mtime_ns
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(folder)], check=True, capture_output=True, text=True
    )
    assert "up to date" in proc.stdout
    assert _hashes(folder) == before
    assert tiny_models["teacher"].stat().st_mtime_ns == mtime

    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"teacher.gguf", "student", "teacher-hf"}
    assert sum(manifest["sizes"].values()) < 10_000_000
    assert manifest["sample"]["greedy"].strip()


def test_models_build_script_notices_a_damaged_output(tiny_models, tmp_path):
    script = _load_script()
    copy = tmp_path / "models"
    shutil.copytree(tiny_models["dir"], copy)
    digest = script.inputs_digest(script.CONFIG)
    assert script.up_to_date(copy, digest) is not None
    assert script.up_to_date(copy, "0" * 64) is None  # other inputs: rebuild
    data = bytearray((copy / "teacher.gguf").read_bytes())
    data[-1] ^= 0xFF
    (copy / "teacher.gguf").write_bytes(bytes(data))
    assert script.up_to_date(copy, digest) is None
