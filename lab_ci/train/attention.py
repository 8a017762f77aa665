"""Variable-length causal attention for packed rows, without flash-attn.

A packed row holds several samples; ``position_ids`` restart at 0 where each one
starts. Hugging Face's ``sdpa`` handles that with a block-diagonal ``T x T`` mask,
which computes (and, on CPU, materialises) attention across the whole row. This
implementation instead cuts the row at the restarts and runs
``scaled_dot_product_attention(is_causal=True)`` on each sample alone: the same
result, the cost of the samples' own lengths, and the fast mask-free kernels (on
CPU and GPU). It is registered with transformers under :data:`NAME` and is what
``attn_implementation: auto`` picks when flash-attn is not installed.

Only for training on packed rows (batch of rows, no padding mask, no KV cache).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "lab_varlen_sdpa"


def sample_bounds(position_ids: torch.Tensor | None, length: int) -> list[list[int]]:
    """Per row, the start index of each sample plus the row end."""
    if position_ids is None:
        return [[0, length]]
    out = []
    for row in position_ids.reshape(-1, position_ids.shape[-1]):
        starts = (row == 0).nonzero().flatten().tolist()
        if not starts or starts[0] != 0:
            starts = [0, *starts]
        out.append([*starts, length])
    return out


def varlen_sdpa_forward(
    module, query, key, value, attention_mask=None, dropout=0.0, scaling=None, position_ids=None, **kwargs
):
    """query ``[B, H, T, D]``, key/value ``[B, Hkv, T, D]`` -> ``([B, T, H, D], None)``."""
    if attention_mask is not None:  # a padded batch: not ours to handle
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    n_rep = query.shape[1] // key.shape[1]
    if n_rep > 1:
        key = key.repeat_interleave(n_rep, dim=1)
        value = value.repeat_interleave(n_rep, dim=1)
    bounds = sample_bounds(position_ids, query.shape[2])
    if len(bounds) == 1 and query.shape[0] > 1:
        bounds = bounds * query.shape[0]
    rows = []
    for b, cuts in enumerate(bounds):
        pieces = [
            F.scaled_dot_product_attention(
                query[b : b + 1, :, s:e],
                key[b : b + 1, :, s:e],
                value[b : b + 1, :, s:e],
                is_causal=True,
                scale=scaling,
                dropout_p=dropout if module.training else 0.0,
            )
            for s, e in zip(cuts, cuts[1:])
        ]
        rows.append(torch.cat(pieces, dim=2))
    return torch.cat(rows, dim=0).transpose(1, 2).contiguous(), None


def _no_mask(*args, **kwargs):
    return None


def register() -> str:
    """Register the attention and its (empty) mask with transformers; returns :data:`NAME`."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, varlen_sdpa_forward)
    AttentionMaskInterface.register(NAME, _no_mask)
    return NAME
