#!/usr/bin/env python3
"""Build the tiny teacher (GGUF) and student (HF) models the tests and demos use.

No model can be downloaded here, so we make a real one: a byte-level BPE tokenizer
trained on the example taxonomy, its documents and the SDG prompt files
(``lab_ci.train.tokenizer``) and a tiny ``LlamaForCausalLM`` trained on CPU on the
taxonomy's seed examples (LAB chat format) and its knowledge documents (the student),
then distilled on OUR generation pipelines (the teacher): every LLM block of the
built-in ``lab_ci/sdg`` pipelines (freeform skills, grounded skills, knowledge),
prompted exactly as ``lab_ci.sdg`` prompts it (its pipeline loader, source blocks,
``render`` and system prompt; the GGUF's chat template), from the example taxonomy's
seed examples and document chunks, with targets in the formats the pipeline parsers
accept: another seed example of the same leaf for generation blocks (local-leaf
sampling), the best-matching seed Q/A for knowledge Q/A generation, and an
explanation sentence plus a passing ``Score: N`` / ``Verdict: YES`` line for judges
(a failing one for a fraction of deliberately mismatched pairs).

Output in ``--out DIR``:

* ``student/``     HF model dir (safetensors, config, generation config, tokenizer):
  the model after the first training phase (seed examples + documents).
* ``teacher-hf/``  the same model trained further on the pipeline distillation data.
* ``teacher.gguf`` ``teacher-hf`` exported with ``lab_ci.train.gguf_export`` (Q8_0).
* ``manifest.json`` hash of the inputs (taxonomy, documents, SDG pipelines and
  prompts, sources, config, library versions), file hashes and sizes, build time,
  sample outputs.

A run whose inputs hash equals the manifest's (and whose files are intact) does
nothing and returns in well under a second. Training is seeded and deterministic.

Usage: ``scripts/build_tiny_models.py --out DIR [--force]``
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TAXONOMY_DIR = REPO_ROOT / "taxonomy"
DOCUMENTS_DIR = REPO_ROOT / "scripts" / "example-documents"
SOURCES = (
    Path(__file__).resolve(),
    REPO_ROOT / "lab_ci" / "train" / "tokenizer.py",
    REPO_ROOT / "lab_ci" / "train" / "gguf_export.py",
    # the SDG code whose prompts and formats the teacher is trained on
    *(REPO_ROOT / "lab_ci" / "sdg" / f for f in ("blocks.py", "text.py", "chunking.py", "pipeline.py")),
    REPO_ROOT / "lab_ci" / "taxonomy" / "seeds.py",
    REPO_ROOT / "lab_ci" / "teacher" / "templates.py",
)
SDG_DIRS = (REPO_ROOT / "lab_ci" / "sdg" / "pipelines", REPO_ROOT / "lab_ci" / "sdg" / "prompts")
MANIFEST = "manifest.json"
OUTPUTS = ("teacher.gguf", "student", "teacher-hf")

CONFIG = {
    "seed": 1234,
    "vocab_size": 1024,
    "hidden_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 352,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "max_seq_len": 800,  # the longest rendered pipeline prompt + target is ~750 tokens
    "batch_size": 8,
    "learning_rate": 3e-3,
    "student_steps": 100,
    "teacher_steps": 420,
    # seeded pipeline candidates per leaf rendered for distillation (more for the
    # pipelines with fewer leaves or longer chains). The skills pipelines' question and
    # answer prompts share their first half (the examples, so the answer call reuses the
    # question call's KV cells): telling them apart takes more rounds and steps than
    # distinct prompts did (12/32 rounds, 340 steps: 10 of 32 candidates accepted).
    "pipeline_rounds": {"freeform_skills": 24, "grounded_skills": 48, "knowledge": 80},
    "teacher_quant": "q8_0",
    "torch_threads": 1,
}

SYSTEM_PROMPT = "You are a very knowledgeable AI Assistant that will faithfully assist the user with their task."


# --------------------------------------------------------------------------- inputs


def input_files() -> list[Path]:
    """Every file whose content decides the models."""
    files = [p for d in (TAXONOMY_DIR, DOCUMENTS_DIR, *SDG_DIRS) for p in d.rglob("*") if p.is_file()]
    files = [p for p in files if "__pycache__" not in p.parts]
    return sorted(files) + list(SOURCES)


def _library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "tokenizers", "gguf", "safetensors")}


def inputs_digest(config: dict) -> str:
    h = hashlib.sha256()
    for path in input_files():
        h.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    h.update(json.dumps(config, sort_keys=True).encode())
    h.update(json.dumps(_library_versions(), sort_keys=True).encode())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's files (names and contents)."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(p.relative_to(path).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def up_to_date(out: Path, digest: str) -> dict | None:
    """The manifest when ``out`` already holds intact models built from these inputs."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("inputs_sha256") != digest:
        return None
    for name, sha in manifest.get("files", {}).items():
        if not (out / name).exists() or file_sha256(out / name) != sha:
            return None
    return manifest


# --------------------------------------------------------------------------- data


def load_leaves(taxonomy_dir: Path = TAXONOMY_DIR) -> list[tuple[str, dict]]:
    """(kind, parsed qna.yaml) for every leaf; kind is knowledge|grounded|freeform."""
    import yaml

    leaves = []
    for path in sorted(taxonomy_dir.rglob("qna.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if path.relative_to(taxonomy_dir).parts[0] == "knowledge":
            kind = "knowledge"
        elif all("context" in ex for ex in data["seed_examples"]):
            kind = "grounded"
        else:
            kind = "freeform"
        leaves.append((kind, data))
    return leaves


def load_documents(documents_dir: Path = DOCUMENTS_DIR) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(documents_dir.rglob("*.md"))]


def document_sections(document: str) -> list[str]:
    """A Markdown document split before each heading (non-empty parts)."""
    parts, current = [], []
    for line in document.splitlines():
        if line.startswith("#") and current:
            parts.append("\n".join(current).strip())
            current = []
        current.append(line)
    parts.append("\n".join(current).strip())
    return [p for p in parts if p]


def _qa_pairs(kind: str, leaf: dict) -> list[tuple[str | None, str, str]]:
    """(context, question, answer) triples of a leaf."""
    if kind == "knowledge":
        return [
            (ex["context"].strip(), qa["question"].strip(), qa["answer"].strip())
            for ex in leaf["seed_examples"]
            for qa in ex["questions_and_answers"]
        ]
    return [
        (ex.get("context", "").strip() or None, ex["question"].strip(), ex["answer"].strip())
        for ex in leaf["seed_examples"]
    ]


def chat_samples(leaves, rng: random.Random) -> list[tuple[str | None, str, str]]:
    """(system, user, answer) conversations from the seed examples."""
    out = []
    for kind, leaf in leaves:
        for context, question, answer in _qa_pairs(kind, leaf):
            user = f"{context}\n\n{question}" if context and kind != "knowledge" else question
            out.append((None, user, answer))
            out.append((SYSTEM_PROMPT, user, answer))
            if kind == "knowledge":
                out.append((SYSTEM_PROMPT, f"{context}\n\n{question}", answer))
    return out


# --------------------------------------------------------------------------- pipeline distillation
#
# The teacher must answer OUR generation pipelines (lab_ci/sdg): so its training data is
# made by rendering the real pipeline prompts (loaded with lab_ci.sdg's own loader, the
# source blocks run by lab_ci.sdg's own block classes, prompts rendered with its own
# ``render`` and the GGUF's chat template) from the example taxonomy's seed examples,
# with well-formed outputs (in the formats the pipeline parsers accept) as targets.

JUDGE_NEGATIVE_FRACTION = 0.25  # judge examples on mismatched pairs, scored failing


def _leaf_seeds(taxonomy_dir: Path = TAXONOMY_DIR):
    """``lab_ci.sdg`` LeafSeeds for every leaf of the example taxonomy."""
    from lab_ci.taxonomy.leaf import LeafFile
    from lab_ci.taxonomy.seeds import parse_leaf

    return [
        parse_leaf(LeafFile(path=p.relative_to(taxonomy_dir).as_posix(), data=p.read_bytes()))
        for p in sorted(taxonomy_dir.rglob("qna.yaml"))
    ]


def _leaf_documents(seeds, documents_dir: Path = DOCUMENTS_DIR) -> list:
    """The example documents a knowledge leaf's ``document.patterns`` select (what the
    docs repository made by ``make_example_docs.py`` serves)."""
    from fnmatch import fnmatch

    from lab_ci.taxonomy.documents import Document

    if seeds.document is None:
        return []
    out = []
    for p in sorted(documents_dir.rglob("*")):
        rel = p.relative_to(documents_dir).as_posix()
        if p.is_file() and any(fnmatch(rel, pat) for pat in seeds.document.patterns):
            out.append(Document(rel, p.read_text(encoding="utf-8")))
    return out


def _overlap(a: str, b: str) -> float:
    from lab_ci.sdg.text import tokens

    ta, tb = set(tokens(a)), set(tokens(b))
    return len(ta & tb) / max(1, len(ta))


# Judge outputs: one explanation sentence, then the score line the parser looks for.
JUDGE_TARGETS = {  # field -> (passing, failing); distinct wording per judge
    "question_score": (
        "The question is clear and fits the task.\nScore: 1",
        "The question does not fit the task.\nScore: 0",
    ),
    "pair_score": (
        # 2 ("mostly correct") passes the filter (>= 2) and is the relevance judge's pass
        # score too: a tiny model mixing up the two judges still writes a valid score
        "The answer is correct, with small gaps at most.\nScore: 2",
        "The answer is wrong for this question.\nScore: 1",
    ),
    "faithful": (
        "The document supports the answer.\nVerdict: YES",
        "The document does not support the answer.\nVerdict: NO",
    ),
    "relevance_score": (
        "It answers the question directly.\nScore: 2",
        "It does not answer the question.\nScore: 0",
    ),
}

# Lead-ins for generated knowledge questions: a seed question asked "about the passage"
# is a new, well-formed question (not a copy the pipeline's dedupe would reject).
KNOWLEDGE_LEADS = ("", "", "", "According to the passage, ")


def _target_for(field_names: list[str], sample: dict, example, wrong, negative: bool) -> tuple[str, dict]:
    """(target text, parsed values) for one LLM block given the seed ``example`` it should
    reproduce (``wrong``: a seed of another leaf for mismatched judge pairs)."""
    first = field_names[0]
    if first in JUDGE_TARGETS:
        return JUDGE_TARGETS[first][1 if negative else 0], {}
    if field_names == ["question", "answer"]:  # knowledge_qa: the prompt ends with "[QUESTION]\n"
        lead = sample["_lead"]
        question = f"{lead}{example.question[:1].lower()}{example.question[1:]}" if lead else example.question
        return f"{question}\n[ANSWER]\n{example.answer}\n[END]", {"question": question, "answer": example.answer}
    if first == "question":
        return f"[Start of Question]\n{example.question}\n[End of Question]", {"question": example.question}
    if first == "answer":
        return f"[Start of Response]\n{example.answer}\n[End of Response]", {"answer": example.answer}
    if first == "context":
        return f"[Start of Context]\n{example.context}\n[End of Context]", {"context": example.context}
    raise ValueError(f"no target rule for fields {field_names}")


def pipeline_samples(rounds: int | dict[str, int], seed: int) -> list[tuple[str, str, list, str]]:
    """(pipeline, block, conversation, target): every LLM block of every built-in pipeline, prompted
    exactly as ``lab_ci.sdg`` prompts it, for ``rounds`` seeded candidates per leaf
    (a number, or pipeline name -> number).

    Generation blocks get another seed example of the same leaf (local-leaf sampling)
    as target; knowledge Q/A generation gets a document chunk (``lab_ci.sdg``'s
    chunker) and the leaf's seed Q/A that best matches it; judges get a passing
    verdict, or (a fraction) a failing one on a deliberately mismatched pair.
    """
    from lab_ci.sdg.blocks import BLOCK_TYPES, RunContext
    from lab_ci.sdg.pipeline import BUILTIN_PIPELINES, load_pipeline_file
    from lab_ci.sdg.text import render
    from lab_ci.teacher.base import Message

    rng = random.Random(seed)
    all_seeds = _leaf_seeds()
    out = []
    for seeds in all_seeds:
        pipe = load_pipeline_file(BUILTIN_PIPELINES / f"{seeds.default_pipeline}.yaml")
        others = [e for s in all_seeds if s is not seeds for e in s.examples]
        n = rounds if isinstance(rounds, int) else rounds[pipe.name]
        ctx = RunContext(teacher=None, seeds=seeds, samples=n, seed=seed, documents=_leaf_documents(seeds))
        ctx.prompts = pipe.prompts
        samples: list[dict] = []
        llm_specs = []
        for b in pipe.blocks:  # the source blocks run as in a real pipeline
            if b.type in ("sample_seeds", "chunk_documents"):
                # a fresh draw of examples for every candidate: the most varied prompts
                config = {**b.config, "samples_per_set": 1} if b.type == "sample_seeds" else b.config
                samples = BLOCK_TYPES[b.type](b.name, config, ctx).generate(samples)
            elif b.type == "llm":
                llm_specs.append(b)
        for s in samples:
            used = set(s["seed_ids"])
            fresh = [e for e in seeds.examples if e.id not in used] or list(seeds.examples[1:] or seeds.examples)
            if "document" in s:  # knowledge: the seed Q/A the chunk supports best
                example = max(seeds.examples, key=lambda e: (_overlap(e.answer, s["document"]), rng.random()))
            else:
                example = rng.choice(fresh)
            wrong = rng.choice(others)
            row = dict(s)
            row["_lead"] = rng.choice(KNOWLEDGE_LEADS)
            for b in llm_specs:
                cfg = b.config
                names = list(cfg["fields"])
                negative = names[0] in JUDGE_TARGETS and rng.random() < JUDGE_NEGATIVE_FRACTION
                view = dict(row)
                if negative:  # a mismatched pair: another leaf's question/answer
                    view.update(
                        {"question": wrong.question} if names[0] == "question_score" else {"answer": wrong.answer}
                    )
                user = render(pipe.prompts[cfg["prompt"]], view)
                system = cfg.get("system")
                system = pipe.prompts.get(system, system) if system else None
                conv = ([Message("system", system)] if system else []) + [Message("user", user)]
                target, values = _target_for(names, row, example, wrong, negative)
                out.append((pipe.name, b.name, conv, target))
                row.update(values)
    return out


def prompt_texts() -> list[str]:
    """The built-in pipeline prompt files (tokenizer training text: the teacher reads them)."""
    from lab_ci.sdg.pipeline import BUILTIN_PROMPTS

    return [p.read_text(encoding="utf-8") for p in sorted(BUILTIN_PROMPTS.glob("*.txt"))]


def render_chat(conv) -> str:
    """A conversation rendered as the llama.cpp teacher renders it: the GGUF's chat
    template (``tokenizer.chat_template`` = ``LAB_CHAT_TEMPLATE``), generation prompt on."""
    from lab_ci.teacher.templates import ChatFormat, format_chat
    from lab_ci.train.tokenizer import ENDOFTEXT, LAB_CHAT_TEMPLATE

    return format_chat(
        conv, ChatFormat(template=LAB_CHAT_TEMPLATE, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT, stop=(ENDOFTEXT,))
    )


# --------------------------------------------------------------------------- training


def encode_samples(tokenizer, samples: list[tuple[str, str]], max_len: int) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) for (prompt, completion) pairs: the loss covers only the
    completion (labels -100 on the prompt); truncated to ``max_len`` tokens."""
    out = []
    for prompt, completion in samples:
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        c = tokenizer(completion, add_special_tokens=False)["input_ids"]
        ids = (p + c)[:max_len]
        labels = ([-100] * len(p) + c)[:max_len]
        if any(label != -100 for label in labels):  # else nothing to learn from
            out.append((ids, labels))
    return out


def train(
    model, sequences: list[tuple[list[int], list[int]]], *, steps: int, config: dict, seed: int, pad_id: int, log
) -> float:
    """Plain AdamW next-token training on padded random batches of (ids, labels);
    returns the last loss."""
    import torch

    device = next(model.parameters()).device
    gen = random.Random(seed)
    # length-grouped batches (a random window of the length-sorted sequences): the
    # rendered pipeline prompts run from ~100 to ~750 tokens, so this saves the padding
    by_length = sorted(sequences, key=lambda s: len(s[0]))
    size = min(config["batch_size"], len(by_length))
    opt = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"], weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / steps))
    model.train()
    loss_value = float("nan")
    for step in range(steps):
        start = gen.randrange(len(by_length) - size + 1)
        batch = by_length[start : start + size]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (seq, lab) in enumerate(batch):
            ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, : len(lab)] = torch.tensor(lab)
            mask[row, : len(seq)] = 1
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = out.loss.detach().item()
        if step % 40 == 0 or step == steps - 1:
            log(f"  step {step + 1}/{steps} loss {loss_value:.3f}")
    model.eval()
    return loss_value


def greedy_sample(model, tokenizer, prompt: str, max_new_tokens: int = 40) -> str:
    import torch

    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(
            ids,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def build(out: Path, config: dict, digest: str, log) -> dict:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    sys.path.insert(0, str(REPO_ROOT))
    from lab_ci.train.gguf_export import export_gguf
    from lab_ci.train.tokenizer import format_lab, save_tokenizer, train_tokenizer, yaml_strings

    hf_logging.disable_progress_bar()
    started = time.monotonic()
    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["torch_threads"])
    torch.use_deterministic_algorithms(True)
    rng = random.Random(config["seed"])

    leaves = load_leaves()
    documents = load_documents()
    corpus = [s for _, leaf in leaves for s in yaml_strings(leaf)] + documents + prompt_texts()
    tokenizer = train_tokenizer(corpus, vocab_size=config["vocab_size"])
    log(f"tokenizer: byte-level BPE, {len(tokenizer)} tokens, trained on {len(corpus)} texts")

    eos = tokenizer.eos_token
    sections = [("", f"{s}{eos}") for d in documents for s in document_sections(d)]
    phase1 = [(format_lab(sy, u), f"{a}{eos}") for sy, u, a in chat_samples(leaves, rng)] + sections
    pipe_data = pipeline_samples(config["pipeline_rounds"], config["seed"])
    distill = [(render_chat(conv), f"{target}{eos}") for _, _, conv, target in pipe_data]
    phase2 = phase1[::3] + distill  # a little of phase 1 so chat answers stay
    seq1 = encode_samples(tokenizer, phase1, config["max_seq_len"])
    seq2 = encode_samples(tokenizer, phase2, config["max_seq_len"])
    log(
        f"data: {len(seq1)} student sequences, {len(seq2)} teacher sequences "
        f"({sum(len(i) for i, _ in seq2)} tokens, longest {max(len(i) for i, _ in seq2)})"
    )

    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config["hidden_size"],
        intermediate_size=config["intermediate_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        num_key_value_heads=config["num_key_value_heads"],
        max_position_embeddings=config["max_position_embeddings"],
        rope_theta=config["rope_theta"],
        rms_norm_eps=config["rms_norm_eps"],
        tie_word_embeddings=config["tie_word_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: llama, {n_params:,} parameters")
    generation = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=256,
    )
    model.generation_config = generation

    def save(dirname: str) -> None:
        model.save_pretrained(out / dirname, safe_serialization=True)
        save_tokenizer(tokenizer, out / dirname)

    log("training student (seed examples + documents)")
    t = time.monotonic()
    loss1 = train(
        model,
        seq1,
        steps=config["student_steps"],
        config=config,
        seed=config["seed"],
        pad_id=tokenizer.pad_token_id,
        log=log,
    )
    student_seconds = time.monotonic() - t
    save("student")
    log("training teacher further (adds SDG-style tasks)")
    t = time.monotonic()
    loss2 = train(
        model,
        seq2,
        steps=config["teacher_steps"],
        config=config,
        seed=config["seed"] + 1,
        pad_id=tokenizer.pad_token_id,
        log=log,
    )
    teacher_seconds = time.monotonic() - t
    save("teacher-hf")
    export_gguf(out / "teacher-hf", out / "teacher.gguf", quant=config["teacher_quant"], name="lab-ci tiny teacher")

    # a real pipeline prompt (the first rendered pair judge) answered greedily
    prompt = next(render_chat(conv) for _, block, conv, _ in pipe_data if block == "judge_pairs")
    sample = greedy_sample(model, tokenizer, prompt)
    log(f"teacher sample: {prompt!r} -> {sample!r}")

    files = {name: file_sha256(out / name) for name in OUTPUTS}
    sizes = {
        name: sum(p.stat().st_size for p in ([out / name] if (out / name).is_file() else (out / name).rglob("*")))
        for name in OUTPUTS
    }
    return {
        "inputs_sha256": digest,
        "config": config,
        "versions": _library_versions(),
        "parameters": n_params,
        "tokenizer_vocab": len(tokenizer),
        "final_loss": {"student": round(loss1, 4), "teacher": round(loss2, 4)},
        "train_seconds": {"student": round(student_seconds, 1), "teacher": round(teacher_seconds, 1)},
        "build_seconds": round(time.monotonic() - started, 1),
        "files": files,
        "sizes": sizes,
        "sample": {"prompt": prompt, "greedy": sample},
    }


# --------------------------------------------------------------------------- main


def ensure_models(out: Path, *, force: bool = False, config: dict = CONFIG, log=print) -> dict:
    """Build the models into ``out`` unless they are already there; return the manifest."""
    out = out.resolve()
    digest = inputs_digest(config)
    if not force and (manifest := up_to_date(out, digest)):
        log(f"tiny models in {out} are up to date (inputs {digest[:12]})")
        return manifest
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(f".{out.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per folder; others wait, then reuse it
        if not force and (manifest := up_to_date(out, digest)):
            log(f"tiny models in {out} were built meanwhile (inputs {digest[:12]})")
            return manifest
        return _build_into(out, digest, config, log)


def _build_into(out: Path, digest: str, config: dict, log) -> dict:
    tmp = out.with_name(f".{out.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        log(f"building tiny models into {out} (inputs {digest[:12]})")
        manifest = build(tmp, config, digest, log)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(
        f"built in {manifest['build_seconds']} s: "
        + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in manifest["sizes"].items())
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; replaced when stale)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the manifest says up to date")
    args = parser.parse_args(argv)
    try:
        os.nice(10)
    except OSError:
        pass
    ensure_models(args.out, force=args.force, log=lambda msg: print(msg, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
