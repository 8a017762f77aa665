"""Full generation: every leaf's synthetic data, cached and resumable.

Each leaf's data lives in a cache entry keyed by (leaf blob id, pipeline version,
teacher id, seed), so a build after one merged pull request only generates the
leaves that changed. Within an entry, generation runs in rounds of ``round_size``
samples (round r uses seed + r); each round's accepted samples are appended with
fsync, then ``rounds.json`` records the round as done. A kill between the two leaves
lines tagged with an unfinished round, which are dropped on resume: no finished
sample is lost and none is counted twice. An entry is filled under a lock
(``.lock`` in it), so builds that share a cache folder never write one entry at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..taxonomy.leaf import LeafFile
from ..taxonomy.yamlsrc import load as load_leaf_yaml
from .store import append_jsonl, file_lock, read_json, read_jsonl, stable_hash, write_json_atomic, write_jsonl_atomic


def leaf_kind(leaf: LeafFile) -> str:
    """knowledge | grounded_skill | freeform_skill, from the leaf's path and content."""
    data = load_leaf_yaml(leaf.data or b"") or {}  # bounded: aliases, depth, size
    if leaf.path.startswith("knowledge/") or (isinstance(data, dict) and "document" in data):
        return "knowledge"
    seeds = data.get("seed_examples") if isinstance(data, dict) else None
    if isinstance(seeds, list) and any(isinstance(s, dict) and s.get("context") for s in seeds):
        return "grounded_skill"
    return "freeform_skill"


@dataclass
class LeafData:
    leaf: str
    kind: str
    cache_key: str
    samples: list[dict]
    rounds: int
    generated_now: int  # samples generated in this run (0 when fully cached)
    rejected: int
    rounds_now: int = 0  # rounds run in this run (0 when fully cached)


class GenerationCache:
    def __init__(self, root: Path):
        self.root = root

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key


def cache_key(leaf: LeafFile, pipeline_version: str, teacher_id: str, seed: int, round_size: int) -> str:
    return stable_hash(
        {
            "leaf_blob": leaf.blob_id,
            "attribution": None,  # attribution does not change generation
            "pipeline": pipeline_version,
            "teacher": teacher_id,
            "seed": seed,
            "round_size": round_size,
        }
    )


def generate_leaf_cached(
    leaf: LeafFile,
    *,
    kind: str,
    target: int,
    cache: GenerationCache,
    key: str,
    round_size: int,
    max_rounds: int,
    seed: int,
    run_round: Callable[[int, int], tuple[list[dict], int]],
    on_round: Callable[[int], None] | None = None,
) -> LeafData:
    """Bring the cache entry for ``leaf`` up to ``target`` accepted samples.

    ``run_round(samples, seed)`` generates one round and returns (accepted records,
    number rejected). Records are tagged with their round in ``metadata``.
    """
    d = cache.entry(key)
    # one writer per entry: another build sharing the cache waits, then finds it done
    with file_lock(d / ".lock"):
        return _fill_entry(leaf, d, kind, target, key, round_size, max_rounds, seed, run_round, on_round)


def _fill_entry(leaf, d, kind, target, key, round_size, max_rounds, seed, run_round, on_round) -> LeafData:
    state = read_json(d / "rounds.json", {}) or {}
    done_rounds = int(state.get("rounds", 0))
    rejected = int(state.get("rejected", 0))
    samples_path = d / "samples.jsonl"
    samples = [r for r in read_jsonl(samples_path) if r.get("metadata", {}).get("round", 0) < done_rounds]
    on_disk = sum(1 for _ in read_jsonl(samples_path))
    if on_disk != len(samples):  # lines of an unfinished round: rewrite without them
        write_jsonl_atomic(samples_path, samples)
    generated_now = rounds_now = 0
    while len(samples) < target and done_rounds < max_rounds:
        want = min(round_size, target - len(samples))
        t0 = time.monotonic()
        accepted, n_rejected = run_round(want, seed + done_rounds)
        for r in accepted:
            r.setdefault("metadata", {})["round"] = done_rounds
        accepted = accepted[: target - len(samples)]
        append_jsonl(samples_path, accepted)
        samples.extend(accepted)
        generated_now += len(accepted)
        rejected += n_rejected
        done_rounds += 1
        rounds_now += 1
        write_json_atomic(
            d / "rounds.json",
            {
                "rounds": done_rounds,
                "rejected": rejected,
                "leaf": leaf.path,
                "key": key,
                "last_round_seconds": round(time.monotonic() - t0, 3),
            },
        )
        if on_round:
            on_round(len(accepted))
    return LeafData(leaf.path, kind, key, samples, done_rounds, generated_now, rejected, rounds_now)
