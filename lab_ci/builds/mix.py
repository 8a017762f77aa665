"""Phase data mixing as LAB does: knowledge first, then skills with replay.

A recipe phase lists sources (leaf kinds) with weights. A weight scales the number
of samples taken from that source's pool: 1.0 takes every sample once, 0.3 a seeded
30% subset (replay), 2.0 every sample twice. The result is deterministic given the
seed, and the statistics go into the release card.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from .config import PhaseRecipe


@dataclass
class PhaseMix:
    name: str
    records: list[dict]
    stats: dict = field(default_factory=dict)


def take(pool: list[dict], weight: float, rng: random.Random) -> list[dict]:
    if weight <= 0 or not pool:
        return []
    whole, frac = divmod(weight, 1.0)
    out = [r for _ in range(int(whole)) for r in pool]
    k = round(frac * len(pool))
    if k:
        out.extend(rng.sample(pool, k))
    return out


def mix_phases(pools: dict[str, list[dict]], phases: tuple[PhaseRecipe, ...], seed: int) -> list[PhaseMix]:
    result = []
    for i, phase in enumerate(phases):
        rng = random.Random(f"{seed}:{i}:{phase.name}")
        records: list[dict] = []
        by_source: dict[str, int] = {}
        for src in phase.data:
            chosen = take(sorted(pools.get(src.source, []), key=_record_id), src.weight, rng)
            label = f"{src.source} (replay)" if src.replay else src.source
            by_source[label] = by_source.get(label, 0) + len(chosen)
            records.extend(chosen)
        rng.shuffle(records)
        leaves = Counter(r.get("metadata", {}).get("leaf", "?") for r in records)
        result.append(
            PhaseMix(
                phase.name,
                records,
                {
                    "samples": len(records),
                    "by_source": by_source,
                    "by_leaf": dict(sorted(leaves.items())),
                    "chars": sum(len(m.get("content", "")) for r in records for m in r.get("messages", [])),
                },
            )
        )
    return result


def _record_id(r: dict) -> str:
    md = r.get("metadata", {})
    return f"{md.get('leaf', '')}:{md.get('round', 0)}:{md.get('index', '')}:{r.get('messages', [{}])[-1].get('content', '')}"
