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

from lab_ci.errors import LabCIError
from lab_ci.train.gguf_export import export_gguf, permute_rotary
from lab_ci.train.tokenizer import (
    ASSISTANT,
    ENDOFTEXT,
    LAB_CHAT_TEMPLATE,
    PAD,
    SPECIAL_TOKENS,
    SYSTEM,
    USER,
    format_lab,
    train_tokenizer,
    yaml_strings,
)
from labtest import EXAMPLE_TAXONOMY, REPO_ROOT

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
    # the teacher is also trained on the SDG prompts and the judges' verdict sentences
    for path in (REPO_ROOT / "lab_ci" / "sdg" / "prompts").glob("*.txt"):
        words.update(re.findall(r"[a-z]+", path.read_text(encoding="utf-8").lower()))
    script = _load_script()
    for text in [t for pair in script.JUDGE_TARGETS.values() for t in pair] + list(script.KNOWLEDGE_LEADS):
        words.update(re.findall(r"[a-z]+", text.lower()))
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
    return out[0, len(ids) :].tolist()  # ends at <|endoftext|> (id 0) when the model stops


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
    assert (
        tok.apply_chat_template(messages, tokenize=False) == "<|system|>\nS\n<|user|>\nU\n<|assistant|>\nA<|endoftext|>"
    )
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


def _pipeline_prompt(pipeline: str, block: str, values: dict):
    """(conversation, field specs) of one LLM block of a built-in pipeline, rendered with
    lab_ci.sdg's own loader and ``render`` exactly as the block renders it."""
    from lab_ci.sdg.pipeline import BUILTIN_PIPELINES, load_pipeline_file
    from lab_ci.sdg.text import FieldSpec, render
    from lab_ci.teacher.base import Message

    pipe = load_pipeline_file(BUILTIN_PIPELINES / f"{pipeline}.yaml")
    cfg = next(b.config for b in pipe.blocks if b.name == block)
    conv = [
        Message("system", pipe.prompts[cfg["system"]]),
        Message("user", render(pipe.prompts[cfg["prompt"]], values)),
    ]
    specs = [FieldSpec.from_config(k, v or {}) for k, v in cfg["fields"].items()]
    return conv, specs


def _leaf_seeds(rel: str):
    from lab_ci.taxonomy.leaf import LeafFile
    from lab_ci.taxonomy.seeds import parse_leaf

    path = EXAMPLE_TAXONOMY / rel
    return parse_leaf(LeafFile(path=rel, data=path.read_bytes()))


@pytest.fixture(scope="module")
def llamacpp_teacher(tiny_models):
    from lab_ci.teacher import load_teacher

    teacher = load_teacher(str(tiny_models["teacher"]), n_ctx=2048, n_threads=1)
    yield teacher
    teacher.close()


def test_models_teacher_judge_output_parses_with_the_sdg_parser(llamacpp_teacher):
    """Judge prompts of the real pipelines, answered by the GGUF through llama.cpp
    (greedy, as the pipelines run judges), parse with lab_ci.sdg's field parser."""
    from lab_ci.sdg.text import parse_fields
    from lab_ci.teacher.base import SamplingParams

    skill = _leaf_seeds("compositional_skills/linguistics/antonyms/qna.yaml")
    ex = skill.examples[-1]
    base = {"task_description": skill.task_description, "question": ex.question, "answer": ex.answer}
    knowledge = _leaf_seeds("knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml")
    kx = knowledge.examples[0]
    cases = [
        ("freeform_skills", "judge_questions", base, "question_score", {0, 1}),
        ("freeform_skills", "judge_pairs", base, "pair_score", {1, 2, 3}),
        ("knowledge", "judge_faithfulness", {"document": kx.context, "answer": kx.answer}, "faithful", {"YES", "NO"}),
        ("knowledge", "judge_relevance", {"question": kx.question, "answer": kx.answer}, "relevance_score", {0, 1, 2}),
    ]
    convs, specs = zip(*(_pipeline_prompt(p, b, v) for p, b, v, _, _ in cases))
    results = llamacpp_teacher.chat(list(convs), SamplingParams(temperature=0.0, max_tokens=48, seed=0))
    for (_pipeline, block, _, field, allowed), spec, [completion] in zip(cases, specs, results):
        fields = parse_fields(completion.text, spec)  # raises Unparseable otherwise
        assert fields[field] in allowed, (block, completion.text)
        assert re.search(r"(?im)^(score|verdict): ", completion.text), (block, completion.text)
    # a seed pair of the leaf itself is judged good
    assert parse_fields(results[0][0].text, specs[0])["question_score"] == 1, results[0][0].text


def test_models_teacher_generates_a_parseable_question(llamacpp_teacher):
    """The freeform question-generation prompt yields a question between the tags the
    pipeline parses (not merely the whole-text fallback), and knowledge Q/A generation
    mostly yields both fields."""
    from lab_ci.sdg.chunking import chunk_markdown
    from lab_ci.sdg.text import Unparseable, parse_fields
    from lab_ci.teacher.base import SamplingParams

    skill = _leaf_seeds("compositional_skills/arithmetic/unit_conversion/qna.yaml")
    examples = "\n\n".join(
        f"[Start of Question]\n{e.question}\n[End of Question]\n[Start of Response]\n{e.answer}\n[End of Response]"
        for e in skill.examples[:3]
    )
    q_conv, q_specs = _pipeline_prompt(
        "freeform_skills", "gen_questions", {"task_description": skill.task_description, "examples": examples}
    )
    [[q]] = llamacpp_teacher.chat([q_conv], SamplingParams(temperature=0.0, max_tokens=96, seed=0))
    assert "[Start of Question]" in q.text and "[End of Question]" in q.text, q.text
    question = parse_fields(q.text, q_specs)["question"]
    assert "?" in question or len(question.split()) >= 3, q.text
    assert "[" not in question, q.text

    # knowledge Q/A generation over every chunk of both knowledge documents: a 0.7M
    # model does not always get it right (measured 8 of 11 parse), most must
    k_convs = []
    for rel, doc in (
        ("knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml", "kestrel-island/lighthouse.md"),
        ("knowledge/technology/version_control/git_basics/qna.yaml", "git-basics/git-basics.md"),
    ):
        leaf = _leaf_seeds(rel)
        text = (REPO_ROOT / "scripts" / "example-documents" / doc).read_text(encoding="utf-8")
        examples = "\n\n".join(f"[QUESTION]\n{e.question}\n[ANSWER]\n{e.answer}\n[END]" for e in leaf.examples[:2])
        for chunk in chunk_markdown(doc, text, 300, 8):
            conv, k_specs = _pipeline_prompt(
                "knowledge",
                "gen_qa",
                {
                    "domain": leaf.domain,
                    "task_description": leaf.task_description,
                    "document": chunk.text,
                    "examples": examples,
                },
            )
            k_convs.append(conv)
    parsed = []
    for [k] in llamacpp_teacher.chat(k_convs, SamplingParams(temperature=0.0, max_tokens=256, seed=0)):
        try:
            parsed.append(parse_fields(k.text, k_specs))
        except Unparseable:
            pass
    assert len(parsed) * 2 > len(k_convs), f"{len(parsed)} of {len(k_convs)} knowledge Q/A outputs parse"
    for qa in parsed:
        assert qa["question"].strip() and qa["answer"].strip()


def test_models_distillation_data_uses_the_pipeline_formats():
    """The teacher's distillation examples are the real pipeline prompts (rendered by
    lab_ci.sdg) with targets that lab_ci.sdg's parser accepts."""
    from lab_ci.sdg.pipeline import BUILTIN_PIPELINES, load_pipeline_file
    from lab_ci.sdg.text import FieldSpec, parse_fields

    script = _load_script()
    samples = script.pipeline_samples(3, 0)
    pipes = {
        n: load_pipeline_file(BUILTIN_PIPELINES / f"{n}.yaml")
        for n in ("freeform_skills", "grounded_skills", "knowledge")
    }
    verdicts = set()
    for pipeline, block, conv, target in samples:
        pipe = pipes[pipeline]
        cfg = next(b.config for b in pipe.blocks if b.name == block)
        assert [(m.role, m.content) for m in conv[:1]] == [("system", pipe.prompts[cfg["system"]])]
        user = conv[-1].content
        template = pipe.prompts[cfg["prompt"]]
        assert user.startswith(template.split("{{")[0]) and user.endswith(template.split("}}")[-1]), user
        assert "{{" not in user
        fields = parse_fields(target, [FieldSpec.from_config(k, v or {}) for k, v in cfg["fields"].items()])
        verdicts.update((k, v) for k, v in fields.items() if k.endswith("_score") or k == "faithful")
    # every LLM block of each leaf's pipeline, 3 rounds: 3 freeform, 1 grounded, 2 knowledge leaves
    assert len(samples) == 3 * (3 * 4 + 1 * 5 + 2 * 3)
    assert {(p, b) for p, b, _, _ in samples} == {
        (n, b.name) for n, pipe in pipes.items() for b in pipe.blocks if b.type == "llm"
    }
    # the judges learn passing verdicts, and failing ones on mismatched pairs
    assert {("question_score", 1), ("pair_score", 2), ("faithful", "YES"), ("relevance_score", 2)} <= verdicts
    assert verdicts & {("question_score", 0), ("pair_score", 1), ("faithful", "NO"), ("relevance_score", 0)}


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
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        max_position_embeddings=512,
        rope_theta=50000.0,
        rms_norm_eps=1e-6,
        eos_token_id=0,
        pad_token_id=1,
        bos_token_id=0,
        **shape,
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
        for p in sorted(folder.rglob("*"))
        if p.is_file()
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
