"""Padding-free packing and the multipack step planner.

Training consumes *steps*. A step is one optimizer update over a group of
``effective_batch_size`` samples (the last step of an epoch may hold fewer). For
each epoch the sample order is a permutation drawn from ``seed + epoch``; it is cut
into consecutive step groups, so a step holds the same samples whatever the
number of ranks. Inside a step:

1. samples are dealt to ranks longest-first, each to the rank with the fewest
   tokens so far (balanced token counts per rank);
2. each rank's samples are packed first-fit-decreasing into micro-batches of at
   most ``max_tokens_per_batch`` tokens;
3. ranks with fewer micro-batches get empty ones (a dummy forward whose loss
   weight is zero) so every rank runs the same number of forwards (FSDP needs this).

A micro-batch is one row: the samples' token ids concatenated, ``position_ids``
restarting at 0 for each sample (Hugging Face attention turns that into a
block-diagonal causal mask for sdpa/eager and into varlen flash attention), and
labels already shifted per sample so no sample predicts its neighbour's first token.

Everything here is pure (no I/O) and deterministic given seed and epoch.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lab_ci.train.data import IGNORE_INDEX


def first_fit_decreasing(lengths: Sequence[int], indices: Sequence[int], capacity: int) -> list[list[int]]:
    """Pack ``indices`` (sizes ``lengths[i]``) into as few bins of ``capacity`` as FFD finds.

    Ties are broken by index so the result is deterministic. Bins keep insertion
    order (longest first).
    """
    order = sorted(indices, key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        if n > capacity:
            raise ValueError(f"sample {i} has {n} tokens, more than the bin capacity {capacity}")
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(capacity - n)
    return bins


def balance_across_ranks(lengths: Sequence[int], indices: Sequence[int], world_size: int) -> list[list[int]]:
    """Deal samples to ranks longest-first, each to the rank holding fewest tokens."""
    heap = [(0, r) for r in range(world_size)]
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for i in sorted(indices, key=lambda i: (-lengths[i], i)):
        tokens, r = heapq.heappop(heap)
        shares[r].append(i)
        heapq.heappush(heap, (tokens + lengths[i], r))
    return shares


@dataclass(frozen=True)
class Step:
    """One optimizer step: ``micro_batches[rank]`` is that rank's list of micro-batches
    (each a list of sample indices; ``[]`` is a zero-weight dummy)."""

    micro_batches: tuple[tuple[tuple[int, ...], ...], ...]
    n_samples: int
    n_tokens: int
    n_loss_tokens: int  # assistant tokens in the whole step, all ranks: the loss divisor


class MultipackPlanner:
    """Plans the steps of every epoch for every rank (see the module docstring)."""

    def __init__(
        self,
        lengths: Sequence[int],
        loss_tokens: Sequence[int],
        effective_batch_size: int,
        max_tokens_per_batch: int,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
    ):
        if effective_batch_size < 1:
            raise ValueError("effective_batch_size must be >= 1")
        if max(lengths, default=0) > max_tokens_per_batch:
            raise ValueError(
                f"a sample of {max(lengths)} tokens does not fit max_tokens_per_batch={max_tokens_per_batch}"
            )
        self.lengths = list(lengths)
        self.loss_tokens = list(loss_tokens)
        self.effective_batch_size = effective_batch_size
        self.max_tokens_per_batch = max_tokens_per_batch
        self.world_size = world_size
        self.seed = seed
        self.shuffle = shuffle

    def steps_per_epoch(self) -> int:
        return -(-len(self.lengths) // self.effective_batch_size)

    def order(self, epoch: int) -> list[int]:
        order = list(range(len(self.lengths)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def epoch(self, epoch: int) -> list[Step]:
        order = self.order(epoch)
        steps = []
        for start in range(0, len(order), self.effective_batch_size):
            group = order[start : start + self.effective_batch_size]
            shares = balance_across_ranks(self.lengths, group, self.world_size)
            per_rank = [first_fit_decreasing(self.lengths, share, self.max_tokens_per_batch) for share in shares]
            depth = max(1, max(len(b) for b in per_rank))
            micro = tuple(tuple(tuple(b) for b in bins) + ((),) * (depth - len(bins)) for bins in per_rank)
            steps.append(
                Step(
                    micro_batches=micro,
                    n_samples=len(group),
                    n_tokens=sum(self.lengths[i] for i in group),
                    n_loss_tokens=sum(self.loss_tokens[i] for i in group),
                )
            )
        return steps

    def efficiency(self, epoch: int = 0) -> float:
        """Real tokens / tokens computed if every micro-batch were padded to the budget."""
        steps = self.epoch(epoch)
        real = sum(s.n_tokens for s in steps)
        computed = sum(len(rank) * self.max_tokens_per_batch for s in steps for rank in s.micro_batches)
        return real / computed if computed else 0.0


def collate_packed(
    input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], indices: Sequence[int], pad_id: int = 0
) -> dict[str, torch.Tensor]:
    """One packed row for ``indices``: input_ids, position_ids and per-sample shifted labels.

    ``labels[t]`` is the target for the logits at position ``t`` (already shifted), so
    the loss is a plain cross entropy over the row. An empty ``indices`` gives a
    one-token dummy row whose labels are all ignored.
    """
    ids: list[int] = []
    pos: list[int] = []
    tgt: list[int] = []
    for i in indices:
        seq, lab = input_ids[i], labels[i]
        ids.extend(seq)
        pos.extend(range(len(seq)))
        tgt.extend(list(lab[1:]) + [IGNORE_INDEX])
    if not ids:
        ids, pos, tgt = [pad_id], [0], [IGNORE_INDEX]
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "position_ids": torch.tensor([pos], dtype=torch.long),
        "labels": torch.tensor([tgt], dtype=torch.long),
    }
