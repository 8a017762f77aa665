"""Multiple-choice scoring throughput: lab-ci's batched log-likelihoods vs one question
at a time, on the same questions, in the same run.

Questions are real: seed questions contributors wrote in the taxonomy history
(``../shared/corpus/taxonomy-history.bundle``), each with its own answer and three
other answers from the same file as options (MMLU-Branch's shape: a question, four
answer-length options). Every option is scored as lab-ci scores it
(:func:`lab_ci.eval.mcq.option_requests`: the chat template, option + end-of-text).

Three paths, all through :class:`lab_ci.eval.hf.HFModel`:

* ``batched``: what ``lab-ci eval`` runs (:meth:`~lab_ci.eval.hf.HFModel.score_choices`):
  every (question, option) pair of all questions, sorted by length and packed into
  forward passes of at most ``--max-batch-tokens`` padded tokens;
* ``per question``: one forward pass per question (its four options together);
* ``per option``: one forward pass per option (``max_batch_tokens=1``).

Every path runs ``--rounds`` times (default 3), the order rotating from round to round so
a change in the machine's load hits each path alike; the fastest wall time and the
smallest CPU time of each are kept. Printed per model: questions/s and wall and CPU
seconds of each path, how many times faster ``batched`` is, whether every path makes the same choice on every question as
``per option``, and the largest relative difference of a log-likelihood.
Models: the tiny student (``.cache/models/student``, when built) and random llama
shapes (``--shapes``) with a BPE tokenizer trained on the questions. CUDA when present.

    .venv/bin/python benchmarks/eval_throughput.py [--questions 64] [--shapes student,small,medium]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from packing import corpus_qna_blobs  # noqa: E402

from lab_ci.eval.mcq import MCQ, choose, option_groups  # noqa: E402

#: random llama shapes: hidden, layers, heads, kv heads, intermediate
SHAPES = {
    "small": (256, 4, 4, 4, 688),
    "medium": (768, 8, 12, 4, 2048),
}
MAX_OPTION_CHARS = 400
BUNDLE = Path(os.environ.get("LAB_CI_SHARED", REPO_ROOT.parent / "shared")) / "corpus" / "taxonomy-history.bundle"


def corpus_mcqs(n: int, seed: int = 0, bundle: Path = BUNDLE) -> list[MCQ]:
    """``n`` questions from real qna.yaml files: a seed question, its answer and three
    other answers of the same file, shuffled (seeded)."""
    rng = random.Random(seed)
    pool = []
    for blob in corpus_qna_blobs(bundle):
        try:
            doc = yaml.safe_load(blob)
        except yaml.YAMLError:
            continue
        if not isinstance(doc, dict):
            continue
        qas = []
        for ex in doc.get("seed_examples") or []:
            if not isinstance(ex, dict):
                continue
            for qa in ex.get("questions_and_answers") or [ex]:
                if isinstance(qa, dict) and isinstance(qa.get("question"), str) and isinstance(qa.get("answer"), str):
                    q, a = qa["question"].strip(), qa["answer"].strip()
                    if q and a and len(a) <= MAX_OPTION_CHARS and len(q) <= 2 * MAX_OPTION_CHARS:
                        qas.append((q, a))
        answers = list(dict.fromkeys(a for _, a in qas))
        if len(answers) >= 4:
            pool.append((qas, answers))
    rng.shuffle(pool)
    out = []
    for qas, answers in pool:
        q, right = rng.choice(qas)
        wrong = rng.sample([a for a in answers if a != right], 3)
        options = [right, *wrong]
        order = list(range(4))
        rng.shuffle(order)
        out.append(MCQ(f"q{len(out)}", "corpus", q, tuple(options[i] for i in order), order.index(0)))
        if len(out) == n:
            break
    return out


def random_model(shape: str, texts: list[str], root: Path) -> Path:
    from lab_ci.train.tiny import make_tiny_llama, train_bpe_tokenizer

    hidden, layers, heads, kv, inter = SHAPES[shape]
    tok = train_bpe_tokenizer(texts, vocab_size=8192)
    return make_tiny_llama(
        root / shape,
        tok,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv,
        intermediate=inter,
        max_positions=2048,
    )


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def measure(name: str, model_dir: Path, mcqs: list[MCQ], max_batch_tokens: int, device: str, rounds: int) -> dict:
    from lab_ci.eval.hf import HFModel

    model = HFModel(model_dir, device=device, max_batch_tokens=max_batch_tokens)
    groups = option_groups(model, mcqs)
    pairs = [(ctx, c) for ctx, conts in groups for c in conts]
    params = sum(p.numel() for p in model.model.parameters())
    model.score_choices(groups[:2])  # warm-up (allocator, kernels)
    runs = {
        "batched": lambda: [ll for lls in model.score_choices(groups) for ll in lls],
        "per question": lambda: [ll for ctx, conts in groups for ll in model.loglikelihoods([(ctx, c) for c in conts])],
        "per option": lambda: model.loglikelihoods(pairs, max_batch_tokens=1),
    }
    res: dict[str, dict] = {}
    names = list(runs)
    for r in range(rounds):  # each round in another order, so load changes hit every path alike
        for path in names[r % len(names) :] + names[: r % len(names)]:
            lls, wall, cpu = timed(runs[path])
            best = res.setdefault(path, {"lls": lls, "wall_s": wall, "cpu_s": cpu, "walls": [], "cpus": []})
            best["walls"].append(wall)
            best["cpus"].append(cpu)
            best["wall_s"], best["cpu_s"] = min(best["walls"]), min(best["cpus"])
            best["choices"] = [x.choice for x in choose(mcqs, lls)]
    ref = res["per option"]  # the plainest path: one forward pass per option
    row = {
        "model": name,
        "parameters": params,
        "device": model.device.type,
        "dtype": model.dtype,
        "questions": len(mcqs),
        "options": len(pairs),
        "context_tokens": sum(len(ctx) for ctx, _ in groups),
        "option_tokens": sum(len(c) for _, c in pairs),
        "paths": {},
    }
    for path, r in res.items():
        diff = max(abs(a.total - b.total) / max(1.0, abs(b.total)) for a, b in zip(r["lls"], ref["lls"]))
        row["paths"][path] = {
            "questions_per_s": round(len(mcqs) / r["wall_s"], 2),
            "wall_s": round(r["wall_s"], 3),
            "cpu_s": round(r["cpu_s"], 3),
            "same_choices": r["choices"] == ref["choices"],
            "max_rel_diff": float(f"{diff:.3g}"),
            "batched_speedup": round(r["wall_s"] / res["batched"]["wall_s"], 2),
            "batched_cpu_speedup": round(r["cpu_s"] / res["batched"]["cpu_s"], 2),
        }
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--corpus", type=Path, default=BUNDLE, help=f"taxonomy history bundle (default {BUNDLE})")
    ap.add_argument("--shapes", default="student,small,medium", help="student and/or " + ",".join(SHAPES))
    ap.add_argument("--max-batch-tokens", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=3, help="runs of every path, in rotating order; the fastest is kept")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.corpus.is_file():
        print(f"no corpus bundle at {args.corpus} (--corpus FILE or $LAB_CI_SHARED)", file=sys.stderr)
        return 2
    mcqs = corpus_mcqs(args.questions, bundle=args.corpus)
    texts = [t for m in mcqs for t in (m.question, *m.options)]
    print(
        f"{len(mcqs)} questions from {args.corpus.name} (4 options each), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, --max-batch-tokens {args.max_batch_tokens}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
            if shape == "student":
                path = REPO_ROOT / ".cache" / "models" / "student"
                if not (path / "config.json").is_file():
                    print("student: not built (python scripts/build_tiny_models.py --out .cache/models); skipped")
                    continue
            else:
                path = random_model(shape, texts, Path(tmp))
            row = measure(shape, path, mcqs, args.max_batch_tokens, args.device, args.rounds)
            rows.append(row)
            print(
                f"\n{shape}: {row['parameters'] / 1e6:.1f}M parameters, {row['device']} {row['dtype']}, "
                f"{row['options']} options; tokens: {row['context_tokens']} in contexts, {row['option_tokens']} in options"
            )
            for p, r in row["paths"].items():
                print(
                    f"  {p:<13} {r['questions_per_s']:8.2f} questions/s  wall {r['wall_s']:7.2f} s  "
                    f"cpu {r['cpu_s']:7.2f} s  batched is {r['batched_speedup']:5.2f}x (cpu {r['batched_cpu_speedup']:5.2f}x)  "
                    f"same choices: {'yes' if r['same_choices'] else 'NO'}  max rel. diff {r['max_rel_diff']:.1e}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    ok = all(r["same_choices"] for row in rows for r in row["paths"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
