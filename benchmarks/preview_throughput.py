#!/usr/bin/env python3
"""Preview throughput: our batched teacher path vs naive one-request-at-a-time generation.

For each model (random-weight llama GGUFs of realistic shapes, written by
``scripts/make_bench_gguf.py`` into ``.cache/bench/``), in the same run, on the same
prompts with the same sampling settings and thread count, the LLM calls of an
8-sample preview of an example skill leaf are made twice:

* ``ours``  -- the preview path: the freeform-skills pipeline's real ``LLMBlock``s
  calling ``LlamaCppTeacher.chat`` (all samples of a block in one batch: the prompt
  tree evaluated with every shared prefix once, all sequences decoded together);
* ``naive`` -- the same blocks calling a teacher that runs
  ``llama_cpp.Llama.create_completion`` once per sample in a loop (the high-level API;
  it reuses the KV cache of the previous call's prompt prefix).

Scenarios (prompts rendered by the pipeline's own blocks and prompt files from the
example leaf ``compositional_skills/linguistics/antonyms``; the later blocks' question
and answer fields are filled with other example leaves' seed Q/As, since a
random-weight model writes no parseable text):

* ``preview`` -- the pipeline as shipped (``samples_per_set: 4``: two draws of seed
  examples, four samples each): gen_questions, judge_questions, gen_answers, judge_pairs;
* ``mixed``   -- the same four calls with every sample its own draw of examples
  (``samples_per_set: 1``): prompts share only the system prompt and task, the worst case;
* ``same``    -- one prompt, 8 samples (gen_questions of one draw): batched decoding alone;
* ``grounded`` -- the grounded-skills pipeline's five calls (gen_contexts, gen_questions,
  judge_questions, gen_answers, judge_pairs) on ``extraction/commit_messages/summary``.

The models' tokenizer (``--tokenizer``): by default a 32000-token byte-level BPE trained
on real English (``--corpus``, the taxonomy history's ~1,600 contributed ``qna.yaml``
files), which splits the rendered prompts at ~3.9 characters per token as real 32k
tokenizers do; ``letters`` is make_bench_gguf's letter vocabulary (~2.3 characters per
token, so ~1.7x the prompt tokens of a real tokenizer). Each model line prints the
ratio measured on this run's prompts.

Random weights never stop early, so every call generates max_tokens: the block's own
``max_tokens`` capped by ``--max-tokens``. tok/s = generated tokens / wall seconds of
the whole call, prompt evaluation included. It also prints the machine's bounds:
memory read bandwidth with all cores / model bytes (the single-stream decode bound)
and the numpy matmul rate.

    python benchmarks/preview_throughput.py --quick
    python benchmarks/preview_throughput.py --shapes 0.5b,1.5b --quants q8_0,q4_0
    python benchmarks/preview_throughput.py --quick --tokenizer letters
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab_ci.teacher.base import Completion, SamplingParams  # noqa: E402
from lab_ci.teacher.templates import ChatFormat, format_chat, merge_stops  # noqa: E402

LEAF = "compositional_skills/linguistics/antonyms/qna.yaml"
GROUNDED_LEAF = "compositional_skills/extraction/commit_messages/summary/qna.yaml"
TAXONOMY = REPO / "taxonomy"


# --------------------------------------------------------------------------- machine bounds


def read_bandwidth(n_threads: int, mb: int = 512, repeats: int = 3) -> float:
    """Bytes/s read by n_threads summing disjoint slices of one large array."""
    a = np.ones(mb * (1 << 20) // 4, dtype=np.float32)
    parts = np.array_split(a, n_threads)
    best = 0.0
    for _ in range(repeats):
        threads = [threading.Thread(target=np.add.reduce, args=(p,)) for p in parts]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = max(best, a.nbytes / (time.perf_counter() - t0))
    return best


def matmul_gflops(n: int = 1024, repeats: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


# --------------------------------------------------------------------------- prompts


def _leaf(path: str):
    from lab_ci.taxonomy.leaf import LeafFile
    from lab_ci.taxonomy.seeds import parse_leaf

    p = TAXONOMY / path
    return parse_leaf(LeafFile(path=path, data=p.read_bytes()))


def _stand_ins(leaf: str) -> list[tuple[str, str, str]]:
    """Seed (question, answer, context) of the other example skill leaves: stand-ins for
    generated text (contexts from the grounded leaf's own seeds)."""
    out = []
    for p in sorted(TAXONOMY.glob("compositional_skills/**/qna.yaml")):
        rel = p.relative_to(TAXONOMY).as_posix()
        if rel != leaf:
            out += [(e.question, e.answer) for e in _leaf(rel).examples]
    contexts = [e.context for e in _leaf(GROUNDED_LEAF).examples if e.context]
    return [(q, a, contexts[i % len(contexts)]) for i, (q, a) in enumerate(out)]


def preview_calls(teacher, scenario: str, samples: int, cap: int):
    """(block name, LLMBlock, rows) for the LLM calls of one preview: the freeform-skills
    pipeline on the antonyms leaf, or (scenario ``grounded``) the grounded-skills
    pipeline on the commit-message leaf."""
    from lab_ci.sdg.blocks import BLOCK_TYPES, RunContext
    from lab_ci.sdg.pipeline import load_pipeline

    grounded = scenario == "grounded"
    leaf = GROUNDED_LEAF if grounded else LEAF
    pipe = load_pipeline("grounded_skills" if grounded else "freeform_skills")
    ctx = RunContext(
        teacher=teacher,
        seeds=_leaf(leaf),
        samples=samples,
        seed=1,
        params=SamplingParams(temperature=0.7, top_p=0.95, seed=1),
        max_tokens_cap=cap,
    )
    ctx.prompts = pipe.prompts
    rows: list[dict] = []
    calls = []
    fill = _stand_ins(leaf)
    for b in pipe.blocks:
        if b.type == "sample_seeds":
            config = dict(b.config)
            if scenario == "mixed":
                config["samples_per_set"] = 1
            if scenario == "same":
                config["samples_per_set"] = samples
            rows = BLOCK_TYPES[b.type](b.name, config, ctx).generate([])
            rows = [
                {
                    **r,
                    "question": fill[i % len(fill)][0],
                    "answer": fill[i % len(fill)][1],
                    "context": fill[i % len(fill)][2],
                }
                for i, r in enumerate(rows)
            ]
        elif b.type == "llm":
            calls.append((b.name, BLOCK_TYPES[b.type](b.name, b.config, ctx), rows))
            if scenario == "same":
                break  # gen_questions only: one prompt, 8 samples
    return calls


# --------------------------------------------------------------------------- the two teachers


class Metered:
    """Wraps a teacher's chat(): counts generated tokens and wall/CPU seconds."""

    def __init__(self, inner):
        self.inner, self.info = inner, inner.info
        self.tokens = self.prompt_tokens = 0
        self.wall = self.cpu = 0.0

    def chat(self, conversations, params, n=1):
        t0, c0 = time.perf_counter(), time.process_time()
        out = self.inner.chat(conversations, params, n)
        self.wall += time.perf_counter() - t0
        self.cpu += time.process_time() - c0
        self.tokens += sum(c.completion_tokens for comps in out for c in comps)
        self.prompt_tokens += sum(c.prompt_tokens for comps in out for c in comps)
        return out


class NaiveTeacher:
    """One request at a time through llama-cpp-python's high-level API, the same chat
    template, stops and per-sample seeds as ours."""

    def __init__(self, llm, chat_format: ChatFormat, info):
        self.llm, self.fmt, self.info = llm, chat_format, info

    def chat(self, conversations, params, n=1):
        stops = list(merge_stops(params.stop, self.fmt))
        out = []
        for i, conv in enumerate(conversations):
            prompt = format_chat(conv, self.fmt)
            comps = []
            for j in range(n):
                r = self.llm.create_completion(
                    prompt,
                    max_tokens=params.max_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    stop=stops,
                    seed=(params.seed or 0) + i * n + j,
                )
                u, c = r["usage"], r["choices"][0]
                comps.append(
                    Completion(c["text"], c["finish_reason"] or "stop", u["prompt_tokens"], u["completion_tokens"])
                )
            out.append(comps)
        return out


def ensure_gguf(shape: str, quant: str, cache: Path, corpus: Path | None) -> Path:
    """The bench model of a shape and quantization: with ``corpus``, a 32000-token
    byte-level BPE trained on it (real prompt lengths); without, the letter vocabulary."""
    path = cache / f"{shape}-{quant}{'-bpe' if corpus else ''}.gguf"
    if not path.exists():
        print(f"# writing {path} ...", flush=True)
        extra = ["--bpe-corpus", str(corpus)] if corpus else []
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "make_bench_gguf.py"),
                "--shape",
                shape,
                "--quant",
                quant,
                "--out",
                str(path),
                *extra,
            ],
            check=True,
        )
    return path


class Recorder:
    """A teacher that only records the conversations it is asked for."""

    info = None

    def __init__(self):
        self.conversations: list = []

    def chat(self, conversations, params, n=1):
        self.conversations += list(conversations)
        return [[Completion("", "stop", 0, 0) for _ in range(n)] for _ in conversations]


def chars_per_token(teacher, scenarios: list[str], samples: int) -> float:
    """Characters per token of the scenarios' rendered prompts under the teacher's tokenizer."""
    rec = Recorder()
    for scen in scenarios:
        for _name, block, rows in preview_calls(rec, scen, samples, 4):
            block.generate(rows)
    prompts = [format_chat(conv, teacher.chat_format) for conv in rec.conversations]
    return sum(map(len, prompts)) / sum(len(teacher.tokenize(p)) for p in prompts)


def run_calls(teacher, scenario: str, samples: int, cap: int) -> tuple[list[tuple[str, Metered]], Metered]:
    """Run one scenario's LLM calls through the real blocks; per-block and total meters."""
    per_block = []
    total = Metered(teacher)
    forget = getattr(teacher, "forget_prompts", None)
    if forget:
        forget()  # as generate_leaf does: a leaf's preview starts with no kept prompts
    for name, block, rows in preview_calls(total, scenario, samples, cap):
        before = (total.tokens, total.prompt_tokens, total.wall, total.cpu)
        block.generate(rows)
        m = Metered(teacher)
        m.tokens, m.prompt_tokens = total.tokens - before[0], total.prompt_tokens - before[1]
        m.wall, m.cpu = total.wall - before[2], total.cpu - before[3]
        per_block.append((name, m))
    return per_block, total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="preview throughput: batched teacher vs naive generation")
    ap.add_argument("--shapes", default="0.5b,1.5b")
    ap.add_argument("--quants", default="q8_0,q4_0")
    ap.add_argument("--scenarios", default="preview,mixed,same", help="preview,mixed,same,grounded")
    ap.add_argument("--no-prefix-cache", action="store_true", help="ours without prompt prefixes kept across calls")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64, help="cap on every block's max_tokens")
    ap.add_argument("--n-threads", type=int, default=os.cpu_count())
    ap.add_argument(
        "--flash-attn", choices=["on", "off"], default="on", help="flash attention, the same for both paths"
    )
    ap.add_argument(
        "--tokenizer",
        choices=["bpe", "letters"],
        default="bpe",
        help="bench models' tokenizer: bpe (32000 tokens trained on --corpus: real prompt lengths, "
        "~3.5 characters per token) or letters (pieces of up to 4 letters: ~2.3, prompts ~1.6x longer)",
    )
    ap.add_argument(
        "--corpus",
        type=Path,
        default=REPO.parent / "shared" / "corpus" / "taxonomy-history.bundle",
        help="English texts the bpe tokenizer is trained on: a git bundle/repository (its qna.yaml files) or a folder",
    )
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench")
    ap.add_argument("--quick", action="store_true", help="0.5b only (q8_0 and q4_0), max_tokens 32")
    args = ap.parse_args(argv)
    if args.tokenizer == "bpe" and not args.corpus.exists():
        ap.error(f"--corpus {args.corpus}: not found (needed by --tokenizer bpe; or use --tokenizer letters)")
    if args.quick:
        args.shapes, args.quants, args.max_tokens = "0.5b", "q8_0,q4_0", 32

    import llama_cpp
    from llama_cpp import Llama

    from lab_ci.teacher.llamacpp import LlamaCppTeacher

    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    n_gpu_layers = -1 if gpu else 0
    fa = args.flash_attn == "on"
    bw = read_bandwidth(args.n_threads)
    gf = matmul_gflops()
    print(
        f"# machine: {os.cpu_count()} cores, n_threads={args.n_threads}, gpu_offload={gpu}, "
        f"read bandwidth {bw / 1e9:.1f} GB/s, numpy matmul {gf:.0f} GFLOP/s (f32)"
    )
    print(
        f"# samples={args.samples} max_tokens cap={args.max_tokens} temperature as the pipeline sets, top_p=0.95, "
        f"top_k=40, min_p=0.05, flash_attn={args.flash_attn}"
    )

    rows = []
    for shape in args.shapes.split(","):
        for quant in args.quants.split(","):
            path = ensure_gguf(shape, quant, args.cache, args.corpus if args.tokenizer == "bpe" else None)
            size = path.stat().st_size
            bound = bw / size if not gpu else float("nan")
            ours = LlamaCppTeacher(
                path,
                n_ctx=2048,
                n_threads=args.n_threads,
                max_parallel=args.samples,
                n_gpu_layers=n_gpu_layers,
                flash_attn=fa,
                prefix_cache=not args.no_prefix_cache,
            )
            llm = Llama(
                str(path),
                n_ctx=2048,
                n_batch=512,
                n_threads=args.n_threads,
                n_threads_batch=args.n_threads,
                n_gpu_layers=n_gpu_layers,
                flash_attn=fa,
                verbose=False,
            )
            naive = NaiveTeacher(llm, ours.chat_format, ours.info)
            print(
                f"# {shape}/{quant}: tokenizer {args.tokenizer}, {chars_per_token(ours, args.scenarios.split(','), args.samples):.2f} "
                f"characters per prompt token",
                flush=True,
            )
            # warm up both (page in the weights; ours allocates its contexts outside the
            # timed region, as naive's is allocated by Llama() above)
            for scen in args.scenarios.split(","):
                run_calls(ours, scen, args.samples, 4)
            run_calls(naive, "same", 1, 4)
            for scen in args.scenarios.split(","):
                llm.reset()
                llm._ctx.kv_cache_clear()
                blocks_naive, tot_naive = run_calls(naive, scen, args.samples, args.max_tokens)
                blocks_ours, tot_ours = run_calls(ours, scen, args.samples, args.max_tokens)
                model = f"{shape}/{quant}"
                for (name, a), (_, b) in zip(blocks_naive, blocks_ours):
                    print(
                        f"{model:10s} {scen:7s} {name:16s} prompt {a.prompt_tokens:5d} tok, gen {a.tokens:4d}/{b.tokens:4d}: "
                        f"naive {a.wall:5.1f}s  ours {b.wall:5.1f}s  ratio {a.wall / b.wall * b.tokens / max(a.tokens, 1):.2f}x",
                        flush=True,
                    )
                r = dict(
                    model=model,
                    mb=size / 1e6,
                    scen=scen,
                    prompt=tot_naive.prompt_tokens,
                    naive=tot_naive.tokens / tot_naive.wall,
                    ours=tot_ours.tokens / tot_ours.wall,
                    bound=bound,
                    naive_cpu=tot_naive.tokens / tot_naive.cpu,
                    ours_cpu=tot_ours.tokens / tot_ours.cpu,
                )
                r["ratio"] = r["ours"] / r["naive"]
                r["ratio_cpu"] = r["ours_cpu"] / r["naive_cpu"]
                rows.append(r)
                print(
                    f"{model:10s} {scen:7s} {'ALL CALLS':16s} naive {r['naive']:6.1f} tok/s ({tot_naive.tokens} tok, "
                    f"{tot_naive.wall:.1f}s wall)  ours {r['ours']:6.1f} tok/s ({tot_ours.tokens} tok, {tot_ours.wall:.1f}s wall)  "
                    f"ratio {r['ratio']:.2f}x wall, {r['ratio_cpu']:.2f}x per cpu-second",
                    flush=True,
                )
            ours.close()
            llm.close()

    print()
    print(
        "| model | MB | scenario | prompt tok (all calls) | naive tok/s | ours tok/s | ratio (wall) | ratio (per CPU-s) | 1-stream bound tok/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['mb']:.0f} | {r['scen']} | {r['prompt']} | {r['naive']:.1f} | {r['ours']:.1f} | "
            f"{r['ratio']:.2f}x | {r['ratio_cpu']:.2f}x | {r['bound']:.0f} |"
        )
    print(
        f"\nwall ratio: worst {min(r['ratio'] for r in rows):.2f}x, best {max(r['ratio'] for r in rows):.2f}x; "
        f"per CPU-second: worst {min(r['ratio_cpu'] for r in rows):.2f}x, best {max(r['ratio_cpu'] for r in rows):.2f}x "
        f"(goal: >= 1.5x on CPU for the preview, never < 1.0x; >= 4x on a GPU)"
    )
    print("# tok/s = generated tokens / wall seconds of the scenario's LLM calls (prompt evaluation included);")
    print("# 'per CPU-s' divides by this process's CPU time instead, which holds up better on a shared machine.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
