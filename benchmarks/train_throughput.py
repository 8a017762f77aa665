"""Training throughput: lab-ci's packed training step vs a plain Hugging Face Trainer.

Same model (a random llama, ~17M parameters by default), same initial weights, same
samples (messages records from the corpus seed examples, LAB template), same
samples per optimizer step, in the same run. The Trainer gets padded batches from
``DataCollatorForSeq2Seq``; lab-ci packs them padding-free into micro-batches of at
most ``--max-tokens`` tokens. Throughput = real (non-pad) tokens / second, measured
from the end of the first step to the end of the last (the first is warm-up).
CUDA is used when available (bf16 for both); else the CPU in fp32.

    .venv/bin/python benchmarks/train_throughput.py [--steps 6] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch
from packing import benchmark_tokenizer, corpus_records
from transformers.utils import logging as hf_logging

from lab_ci.train.data import parse_record, tokenize_records
from lab_ci.train.loop import TrainConfig, train
from lab_ci.train.tiny import make_tiny_llama


def run_ours(model_dir: Path, data_file: Path, out: Path, args, device: str) -> tuple[float, int]:
    marks: list[tuple[float, int]] = []
    cfg = TrainConfig.from_dict(
        dict(
            max_seq_len=args.max_len,
            max_tokens_per_batch=args.max_tokens,
            effective_batch_size=args.batch,
            max_steps=args.steps,
            learning_rate=1e-4,
            warmup_steps=0,
            grad_clip=1.0,
            shuffle=True,
            seed=0,
            device=device,
        )
    )
    train(model_dir, [data_file], out, cfg, on_step=lambda step, e: marks.append((time.perf_counter(), e["tokens"])))
    tokens = sum(t for _, t in marks[1:])
    return tokens / (marks[-1][0] - marks[0][0]), tokens


def run_trainer(model_dir: Path, samples: list[dict], out: Path, args, device: str) -> tuple[float, int]:
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    base = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    batch_tokens: list[int] = []

    def collate(features):
        batch = base(features)
        batch_tokens.append(int(batch["attention_mask"].sum()))
        return batch

    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if device == "cuda":
                torch.cuda.synchronize()
            marks.append(time.perf_counter())

    targs = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=1e-4,
        lr_scheduler_type="cosine",
        max_grad_norm=1.0,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        use_cpu=device == "cpu",
        bf16=device == "cuda",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        optim="adamw_torch",
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=samples, data_collator=collate, callbacks=[Clock()])
    trainer.train()
    tokens = sum(batch_tokens[1 : len(marks)])
    return tokens / (marks[-1] - marks[0]), tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per contender and round (first is warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per contender")
    ap.add_argument("--batch", type=int, default=16, help="samples per optimizer step")
    ap.add_argument("--max-len", type=int, default=512, help="longest sample kept (tokens)")
    ap.add_argument("--max-tokens", type=int, default=1024, help="lab-ci micro-batch token budget")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = ap.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    raw = corpus_records()
    tokenizer, tok_name = benchmark_tokenizer(raw)
    rng = random.Random(0)
    rng.shuffle(raw)
    picked, samples = [], []
    data = tokenize_records(
        [parse_record(r, f"corpus#{i}") for i, r in enumerate(raw[: 40 * args.batch * args.steps])],
        tokenizer,
        args.max_len,
    )
    need = args.batch * args.steps
    if len(data) < need:
        raise SystemExit(f"only {len(data)} samples of <= {args.max_len} tokens; lower --steps/--batch")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # the tokenized samples go back to JSONL records in the same order for lab-ci
        by_source = {f"corpus#{i}": r for i, r in enumerate(raw)}
        picked = [by_source[s] for s in data.sources[:need]]
        samples = [{"input_ids": ids, "labels": lab} for ids, lab in zip(data.input_ids[:need], data.labels[:need])]
        (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in picked))
        model_dir = make_tiny_llama(
            tmp / "model",
            tokenizer,
            hidden=args.hidden,
            layers=args.layers,
            heads=8,
            kv_heads=8,
            intermediate=int(args.hidden * 2.6875),
            max_positions=2048,
        )
        n_params = sum(
            p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_pretrained(model_dir).parameters()
        )
        real = sum(len(s["input_ids"]) for s in samples)
        print(
            f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else f'{torch.get_num_threads()} threads'}); "
            f"model llama {n_params / 1e6:.1f}M params (hidden {args.hidden}, {args.layers} layers, vocab {len(tokenizer)}); "
            f"tokenizer: {tok_name}"
        )
        print(
            f"data: {need} samples, {real} real tokens, {args.batch} samples/step, {args.steps} steps per round, {args.rounds} rounds"
        )
        # alternate the contenders (ABBA...) so a change in machine load hits both alike
        totals = {"hf": [0, 0.0], "ours": [0, 0.0]}
        for r in range(args.rounds):
            order = ("hf", "ours") if r % 2 == 0 else ("ours", "hf")
            for who in order:
                t = time.perf_counter()
                if who == "hf":
                    rate, tokens = run_trainer(model_dir, samples, tmp / f"hf{r}", args, device)
                else:
                    rate, tokens = run_ours(model_dir, tmp / "data.jsonl", tmp / f"ours{r}", args, device)
                totals[who][0] += tokens
                totals[who][1] += tokens / rate
                print(
                    f"  round {r + 1} {who:4}: {rate:9.1f} tokens/s ({tokens} tokens timed, "
                    f"{time.perf_counter() - t:.0f}s wall incl. setup)",
                    flush=True,
                )
        hf = totals["hf"][0] / totals["hf"][1]
        ours = totals["ours"][0] / totals["ours"][1]
        print(f"HF Trainer (padded, DataCollatorForSeq2Seq): {hf:9.1f} tokens/s")
        print(f"lab-ci (packed, budget {args.max_tokens}):        {ours:9.1f} tokens/s")
        print(f"ratio lab-ci / Trainer: {ours / hf:.2f}x")


if __name__ == "__main__":
    main()
