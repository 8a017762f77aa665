"""Token efficiency of lab-ci's padding-free packing vs naive padded batching.

Data: the seed examples of every real qna.yaml in the corpus history, turned into
messages records (a proxy for generated data), tokenized with the LAB template.
Efficiency = real tokens / tokens computed:

* ours: samples packed first-fit-decreasing per step into micro-batches of at most
  ``--max-tokens`` tokens. Padding-free, so no pad token is ever computed (token
  efficiency 100%); the figure that matters is the *budget fill* (real tokens /
  (micro-batches x budget)): how full each forward is, i.e. how few forwards run;
* padded, same samples per batch: random batches of the same mean sample count as
  our micro-batches, each padded to its longest sample;
* padded, same token budget: random order, as many samples per batch as fit
  ``--max-tokens`` once padded to the longest.

    .venv/bin/python benchmarks/packing.py [--max-tokens 4096] [--batch 128]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lab_ci.train.data import parse_record, tokenize_records  # noqa: E402
from lab_ci.train.packing import MultipackPlanner  # noqa: E402

# ---- corpus records and tokenizer (also used by benchmarks/train_throughput.py)
BUNDLE = REPO_ROOT.parent / "shared" / "corpus" / "taxonomy-history.bundle"
SYSTEM = "I am a Red Hat Instruct Model, an AI language model developed by Red Hat and IBM Research."


def _git(*args: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True).stdout


def corpus_qna_blobs(bundle: Path = BUNDLE) -> list[bytes]:
    """The distinct qna.yaml blobs reachable from any branch of the bundle."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "corpus.git"
        _git("clone", "--quiet", "--mirror", str(bundle), str(repo), cwd=Path(tmp))
        listing = _git("rev-list", "--all", "--objects", cwd=repo).decode()
        blobs = sorted({line.split(" ", 1)[0] for line in listing.splitlines() if line.endswith("qna.yaml")})
        raw = _git("cat-file", "--batch", cwd=repo, stdin=("\n".join(blobs) + "\n").encode())
    out, pos = [], 0
    while pos < len(raw):
        header_end = raw.index(b"\n", pos)
        _, kind, size = raw[pos:header_end].split(b" ")
        start = header_end + 1
        if kind == b"blob":
            out.append(raw[start : start + int(size)])
        pos = start + int(size) + 1
    return out


def _s(v) -> str:
    return v.strip() if isinstance(v, str) else ""


def records_from_qna(doc: dict) -> list[dict]:
    """Seed examples as messages records: (context +) question -> answer."""
    recs = []
    for ex in doc.get("seed_examples") or []:
        if not isinstance(ex, dict):
            continue
        context = _s(ex.get("context"))
        pairs = ex.get("questions_and_answers") or [{"question": ex.get("question"), "answer": ex.get("answer")}]
        for qa in pairs:
            if not isinstance(qa, dict):
                continue
            q, a = _s(qa.get("question")), _s(qa.get("answer"))
            if not q or not a:
                continue
            user = f"{context}\n\n{q}" if context else q
            recs.append(
                {
                    "messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": user},
                        {"role": "assistant", "content": a},
                    ]
                }
            )
    return recs


def corpus_records() -> list[dict]:
    recs = []
    for blob in corpus_qna_blobs():
        try:
            doc = yaml.safe_load(blob.decode("utf-8", "replace"))
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict):
            recs.extend(records_from_qna(doc))
    return recs


def benchmark_tokenizer(records: list[dict]):
    """The tiny student's tokenizer when scripts/build_tiny_models.py has built it, else a fresh BPE."""
    student = REPO_ROOT / ".cache" / "models" / "student"
    if (student / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(student), f"tiny student tokenizer ({student})"
    from lab_ci.train.tiny import train_bpe_tokenizer

    texts = [m["content"] for r in records[:3000] for m in r["messages"]]
    return train_bpe_tokenizer(texts, vocab_size=4096), "BPE (4096) trained on the corpus records"


# ---- the benchmark


def padded_fixed_count(lengths: list[int], order: list[int], per_batch: int) -> tuple[int, int]:
    computed, batches = 0, 0
    for i in range(0, len(order), per_batch):
        batch = [lengths[j] for j in order[i : i + per_batch]]
        computed += len(batch) * max(batch)
        batches += 1
    return computed, batches


def padded_token_budget(lengths: list[int], order: list[int], budget: int) -> tuple[int, int]:
    computed, batches, cur = 0, 0, []
    for j in order:
        if cur and (len(cur) + 1) * max(max(cur), lengths[j]) > budget:
            computed += len(cur) * max(cur)
            batches += 1
            cur = []
        cur.append(lengths[j])
    if cur:
        computed += len(cur) * max(cur)
        batches += 1
    return computed, batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-tokens", type=int, default=4096, help="micro-batch token budget")
    ap.add_argument("--batch", type=int, default=128, help="effective batch size (samples per step)")
    ap.add_argument("--max-seq-len", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    raw = corpus_records()
    tokenizer, tok_name = benchmark_tokenizer(raw)
    records = [parse_record(r, f"corpus#{i}") for i, r in enumerate(raw)]
    data = tokenize_records(records, tokenizer, args.max_seq_len, "skip")
    lengths = data.lengths
    real = sum(lengths)
    print(
        f"data: {len(raw)} records from the corpus seed examples, {len(data)} kept "
        f"({data.n_skipped_too_long} over {args.max_seq_len} tokens skipped); {real} tokens; "
        f"lengths min/median/max {min(lengths)}/{sorted(lengths)[len(lengths) // 2]}/{max(lengths)}; "
        f"tokenizer: {tok_name}; prep {time.perf_counter() - t0:.1f}s"
    )

    planner = MultipackPlanner(lengths, data.loss_tokens, args.batch, args.max_tokens, seed=args.seed)
    steps = planner.epoch(0)
    n_micro = sum(len(s.micro_batches[0]) for s in steps)
    ours = planner.efficiency(0)
    per_batch = max(1, round(len(lengths) / n_micro))
    order = planner.order(0)
    fixed_computed, fixed_batches = padded_fixed_count(lengths, order, per_batch)
    budget_computed, budget_batches = padded_token_budget(lengths, order, args.max_tokens)

    print(f"budget {args.max_tokens} tokens/micro-batch, {args.batch} samples/step, {len(steps)} steps")
    print(
        f"ours (packed, FFD per step):          efficiency {1:6.1%}  forwards {n_micro}  "
        f"(0 pad tokens; budget fill {ours:.1%})"
    )
    print(
        f"{f'padded, {per_batch} samples/batch (same):':38}efficiency {real / fixed_computed:6.1%}  "
        f"forwards {fixed_batches}"
    )
    print(f"padded, same token budget:            efficiency {real / budget_computed:6.1%}  forwards {budget_batches}")
    print(
        f"ratio ours / padded same samples:     {1 / (real / fixed_computed):.2f}x tokens computed, "
        f"{ours / (real / fixed_computed):.2f}x counting our budget fill"
    )
    print(
        f"ratio ours / padded same budget:      {1 / (real / budget_computed):.2f}x tokens computed, "
        f"{ours / (real / budget_computed):.2f}x counting our budget fill"
    )


if __name__ == "__main__":
    main()
