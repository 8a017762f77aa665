#!/usr/bin/env python3
"""Preview throughput: our batched teacher path vs naive one-request-at-a-time generation.

For each model (random-weight llama GGUFs of realistic shapes, written by
``scripts/make_bench_gguf.py`` into ``.cache/bench/``) and each scenario, in the same
run and on the same prompts with the same max_tokens and thread count:

* ``ours``  -- ``LlamaCppTeacher.complete(prompts)``: shared prompt prefix evaluated
  once, all samples decoded together in one llama.cpp context;
* ``naive`` -- ``llama_cpp.Llama.create_completion`` called once per sample in a loop
  (the high-level API; it reuses the KV cache of the previous call's prompt prefix).

Scenarios: ``same``  -- one prompt, 8 samples (``n=8``);
           ``mixed`` -- 8 prompts sharing the system prompt and task, each with the
           seed examples in a different order (what the preview's LLM blocks send).

The prompt is the SDG pipeline's freeform question prompt (``lab_ci/sdg/prompts``)
filled from an example taxonomy leaf's seed examples, in the LAB chat template.
It also prints the machine's bounds: memory read bandwidth with all cores / model
bytes (the single-stream decode bound) and the numpy matmul rate.

    python benchmarks/preview_throughput.py --quick
    python benchmarks/preview_throughput.py --shapes 0.5b,1.5b --quants q8_0,q4_0
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

from lab_ci.teacher.base import Message, SamplingParams  # noqa: E402
from lab_ci.teacher.templates import render_lab  # noqa: E402

LEAF = REPO / "taxonomy" / "compositional_skills" / "linguistics" / "antonyms" / "qna.yaml"
FALLBACK_QUESTION_PROMPT = (
    "Task: {{task_description}}\n\nHere are examples of this task:\n\n{{examples}}\n\n"
    "Write ONE new question for this task. Make it different from the examples in topic and wording, "
    "but of the same kind and difficulty. Write only the question, between [Start of Question] and "
    "[End of Question] tags."
)


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


def _examples_from_leaf(path: Path) -> tuple[str, list[tuple[str, str]]]:
    import yaml

    data = yaml.safe_load(path.read_text())
    ex = [(e["question"].strip(), e["answer"].strip()) for e in data["seed_examples"]]
    return data["task_description"].strip(), ex


def build_prompts(k: int, mixed: bool) -> list[str]:
    """k prompts in the LAB template; mixed=True rotates the seed examples per prompt."""
    prompts_dir = REPO / "lab_ci" / "sdg" / "prompts"
    qfile, sfile = prompts_dir / "freeform_question.txt", prompts_dir / "system.txt"
    template = qfile.read_text() if qfile.is_file() else FALLBACK_QUESTION_PROMPT
    system = sfile.read_text().strip() if sfile.is_file() else "You write training data for a small assistant model."
    if LEAF.is_file():
        task, ex = _examples_from_leaf(LEAF)
    else:
        task = "Give the antonym of an English word and use both words in one sentence."
        ex = [(f'What is the antonym of "{w}"?', f'The antonym of "{w}" is "{a}".') for w, a in
              [("hot", "cold"), ("early", "late"), ("narrow", "wide"), ("ancient", "modern"), ("arrive", "depart")]]
    out = []
    for i in range(k):
        order = ex[i % len(ex):] + ex[: i % len(ex)] if mixed else ex
        examples = "\n\n".join(f"[Start of Question]\n{q}\n[End of Question]\n[Start of Answer]\n{a}\n[End of Answer]" for q, a in order)
        user = template.replace("{{task_description}}", task).replace("{{examples}}", examples)
        out.append(render_lab([Message("system", system), Message("user", user)]))
    return out


# --------------------------------------------------------------------------- the runs


def ensure_gguf(shape: str, quant: str, cache: Path) -> Path:
    path = cache / f"{shape}-{quant}.gguf"
    if not path.exists():
        print(f"# writing {path} ...", flush=True)
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_bench_gguf.py"), "--shape", shape, "--quant", quant, "--out", str(path)], check=True)
    return path


def run_ours(teacher, prompts: list[str], n: int, params: SamplingParams) -> tuple[int, float, float]:
    """Generated tokens, wall seconds, CPU seconds (all threads of this process)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = teacher.complete(prompts, params, n=n)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return sum(c.completion_tokens for comps in out for c in comps), dt, dc


def run_naive(llm, token_lists: list[list[int]], params: SamplingParams) -> tuple[int, float, float]:
    ntok = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i, toks in enumerate(token_lists):
        r = llm.create_completion(toks, max_tokens=params.max_tokens, temperature=params.temperature,
                                  top_p=params.top_p, seed=(params.seed or 0) + i)
        ntok += r["usage"]["completion_tokens"]
    return ntok, time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="preview throughput: batched teacher vs naive generation")
    ap.add_argument("--shapes", default="0.5b,1.5b")
    ap.add_argument("--quants", default="q8_0,q4_0")
    ap.add_argument("--scenarios", default="same,mixed")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--n-threads", type=int, default=os.cpu_count())
    ap.add_argument("--flash-attn", choices=["on", "off"], default="on", help="flash attention, the same for both paths")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench")
    ap.add_argument("--quick", action="store_true", help="0.5b only (q8_0 and q4_0), max_tokens 32")
    args = ap.parse_args(argv)
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
    print(f"# machine: {os.cpu_count()} cores, n_threads={args.n_threads}, gpu_offload={gpu}, "
          f"read bandwidth {bw / 1e9:.1f} GB/s, numpy matmul {gf:.0f} GFLOP/s (f32)")
    print(f"# samples={args.samples} max_tokens={args.max_tokens} temperature=0.7 top_p=0.95 flash_attn={args.flash_attn}")

    rows = []
    for shape in args.shapes.split(","):
        for quant in args.quants.split(","):
            path = ensure_gguf(shape, quant, args.cache)
            size = path.stat().st_size
            bound = bw / size if not gpu else float("nan")
            teacher = LlamaCppTeacher(path, n_ctx=2048, n_threads=args.n_threads, max_parallel=args.samples,
                                      n_gpu_layers=n_gpu_layers, flash_attn=fa)
            llm = Llama(str(path), n_ctx=2048, n_batch=512, n_threads=args.n_threads, n_threads_batch=args.n_threads,
                        n_gpu_layers=n_gpu_layers, flash_attn=fa, verbose=False)
            params = SamplingParams(temperature=0.7, top_p=0.95, max_tokens=args.max_tokens, seed=1)
            # warm up both on a prompt of the real size (page in the weights; allocate ours's
            # context outside the timed region, as naive's is allocated by Llama() above)
            warm = build_prompts(1, False)[0]
            teacher.complete([warm], SamplingParams(temperature=0, max_tokens=args.max_tokens))
            llm.create_completion(warm, max_tokens=4, temperature=0)
            for scen in args.scenarios.split(","):
                mixed = scen == "mixed"
                prompts = build_prompts(args.samples if mixed else 1, mixed)
                n = 1 if mixed else args.samples
                token_lists = [teacher.tokenize(p) for p in prompts for _ in range(n)]
                llm.reset()
                llm._ctx.kv_cache_clear()
                nt_naive, dt_naive, cpu_naive = run_naive(llm, token_lists, params)
                nt_ours, dt_ours, cpu_ours = run_ours(teacher, prompts, n, params)
                r = dict(model=f"{shape}/{quant}", mb=size / 1e6, scen=scen, prompt=len(token_lists[0]),
                         naive=nt_naive / dt_naive, ours=nt_ours / dt_ours, bound=bound,
                         naive_cpu=nt_naive / cpu_naive, ours_cpu=nt_ours / cpu_ours)
                r["ratio"] = r["ours"] / r["naive"]
                r["ratio_cpu"] = r["ours_cpu"] / r["naive_cpu"]
                rows.append(r)
                print(f"{r['model']:10s} {scen:5s} prompt {r['prompt']:4d} tok: naive {r['naive']:6.1f} tok/s "
                      f"({nt_naive} tok, {dt_naive:.1f}s wall, {cpu_naive:.1f}s cpu)  ours {r['ours']:6.1f} tok/s "
                      f"({nt_ours} tok, {dt_ours:.1f}s wall, {cpu_ours:.1f}s cpu)  ratio {r['ratio']:.2f}x wall, "
                      f"{r['ratio_cpu']:.2f}x per cpu-second", flush=True)
            teacher.close()
            llm.close()

    print()
    print("| model | MB | scenario | prompt tok | naive tok/s | ours tok/s | ratio (wall) | ratio (per CPU-s) | 1-stream bound tok/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['mb']:.0f} | {r['scen']} | {r['prompt']} | {r['naive']:.1f} | {r['ours']:.1f} | "
              f"{r['ratio']:.2f}x | {r['ratio_cpu']:.2f}x | {r['bound']:.0f} |")
    print(f"\nwall ratio: worst {min(r['ratio'] for r in rows):.2f}x, best {max(r['ratio'] for r in rows):.2f}x; "
          f"per CPU-second: worst {min(r['ratio_cpu'] for r in rows):.2f}x, best {max(r['ratio_cpu'] for r in rows):.2f}x "
          f"(goal: >= 1.5x on CPU, never < 1.0x; >= 4x on a GPU)")
    print("# tok/s = generated tokens / wall seconds of the whole request (prompt evaluation included);")
    print("# 'per CPU-s' divides by this process's CPU time instead, which holds up better on a shared machine.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
