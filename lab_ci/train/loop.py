"""The training loop: one model directory + messages JSONL in, one trained HF model out.

Reads straight down like nanoGPT's ``train.py``: config, data, model, optimizer,
resume, loop, save. Works alone (CPU or one GPU) and under ``torchrun`` (DDP or
FSDP, see :mod:`lab_ci.train.distributed`).

Batching and loss normalisation (the choice, documented):

* an optimizer step covers ``effective_batch_size`` *samples* (not micro-steps);
  those samples are packed padding-free into as many micro-batches of at most
  ``max_tokens_per_batch`` tokens per rank as needed (gradient accumulation);
* the step's loss is the sum of token cross-entropies over every assistant token
  in the step (all micro-batches, all ranks) divided by the number of those
  tokens. Each token weighs the same whatever the sample length or how the
  samples fell into micro-batches or ranks, so 1 rank x 4 micro-batches and
  2 ranks x 2 micro-batches compute the same gradient (up to float rounding).

Outputs in ``out_dir``: ``metrics.jsonl`` (one line per step, rank 0 only),
``checkpoints/latest.pt`` (every epoch and every ``save_every_steps``), and
``final/`` (safetensors + tokenizer + ``lab-ci-train.json``) once all epochs ran.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lab_ci.errors import LabCIError
from lab_ci.train import distributed as D
from lab_ci.train.attention import NAME, register
from lab_ci.train.checkpoint import LATEST, atomic_save, capture_rng, load_checkpoint, restore_rng
from lab_ci.train.config import RESUME_KEYS, TrainConfig
from lab_ci.train.data import load_dataset
from lab_ci.train.files import append_line, atomic_dir, write_text_atomic
from lab_ci.train.packing import MultipackPlanner, collate_packed


def lr_lambda(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """LR multiplier per step: linear warmup, then cosine/linear decay to min_lr_ratio."""

    def f(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_schedule == "constant":
            return 1.0
        span = max(1, total_steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        decay = 0.5 * (1 + math.cos(math.pi * progress)) if config.lr_schedule == "cosine" else 1 - progress
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * decay

    return f


# ----------------------------------------------------------------------------- results
@dataclass
class LoopResult:
    out_dir: Path
    final_dir: Path | None  # None when stopped early by max_steps
    global_step: int
    completed: bool
    last_loss: float | None
    metrics_path: Path
    data_stats: dict = field(default_factory=dict)
    resumed_from_step: int = 0


class StopTraining(Exception):
    """Raised by an ``on_step`` hook to stop a run (tests use it to simulate a kill)."""


# ----------------------------------------------------------------------------- helpers
log = logging.getLogger("lab_ci.train")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_attn(config: TrainConfig, device: torch.device) -> str:
    """``auto``: flash-attn varlen on GPU when installed, else our per-sample sdpa (same result)."""
    register()
    if config.attn_implementation == "varlen_sdpa":
        return NAME
    if config.attn_implementation != "auto":
        return config.attn_implementation
    if device.type == "cuda":
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return NAME


def autocast_for(config: TrainConfig, device: torch.device):
    use_bf16 = config.dtype == "bf16" or (config.dtype == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_model(model_dir: Path, config: TrainConfig, device: torch.device):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation=resolve_attn(config, device)
    )
    model.config.use_cache = False
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.to(device)


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise LabCIError(f"{model_dir}: cannot load the student tokenizer: {exc}") from None


def packed_loss_sum(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of cross-entropies over a packed row's labelled positions (labels pre-shifted)."""
    logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=-100, reduction="sum"
    )


def save_hf_model(model, info, config: TrainConfig, tokenizer, dest: Path, summary: dict) -> None:
    """Gather the full weights on rank 0 and write an HF dir atomically (tmp dir + rename)."""
    state = D.full_model_state(model)  # collective
    if not info.is_main:
        return
    inner = D.unwrap(model)
    if info.distributed and config.strategy == "fsdp":  # parameters are DTensors: save from a plain copy
        from transformers import AutoModelForCausalLM

        inner = AutoModelForCausalLM.from_config(inner.config)
        inner.load_state_dict(state)
    with atomic_dir(dest) as tmp:
        inner.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "lab-ci-train.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


# ----------------------------------------------------------------------------- the loop
def train(
    model_dir: Path,
    data_files: Sequence[Path],
    out_dir: Path,
    config: TrainConfig,
    on_step: Callable[[int, dict], None] | None = None,
) -> LoopResult:
    """Train the HF causal LM in ``model_dir`` on ``data_files``; resume from ``out_dir`` if a checkpoint is there."""

    config.validate()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    info = D.init_distributed(config.device)
    device = info.device
    seed_everything(config.seed)

    # data: every rank tokenizes the same files and plans the same steps
    tokenizer = load_tokenizer(model_dir)
    data = load_dataset(data_files, tokenizer, config.max_seq_len, config.overlong)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    planner = MultipackPlanner(
        data.lengths,
        data.loss_tokens,
        config.effective_batch_size,
        config.max_tokens_per_batch,
        world_size=info.world_size,
        seed=config.seed,
        shuffle=config.shuffle,
    )
    steps_per_epoch = planner.steps_per_epoch()
    total_steps = steps_per_epoch * config.epochs
    fingerprint = data.fingerprint()

    # model, optimizer, schedule
    model = D.wrap_model(load_model(model_dir, config, device), info, config.strategy)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_eps,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, total_steps))

    # resume
    ckpt_path = out_dir / "checkpoints" / LATEST
    metrics_path = out_dir / "metrics.jsonl"
    ckpt = load_checkpoint(ckpt_path) if info.is_main and ckpt_path.is_file() else None
    ckpt = D.broadcast_object(ckpt, info)
    epoch, step_in_epoch, global_step, metrics = 0, 0, 0, []
    if ckpt is not None:
        if ckpt["data_fingerprint"] != fingerprint:
            raise LabCIError(f"{ckpt_path}: checkpoint was made on different training data; use a new output dir")
        changed = [k for k in RESUME_KEYS if ckpt["config"].get(k) != getattr(config, k)]
        if changed:
            raise LabCIError(f"{ckpt_path}: cannot resume, options changed since the checkpoint: {', '.join(changed)}")
        D.load_full_state(model, optimizer, ckpt["model"], ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        epoch, step_in_epoch, global_step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]
        metrics = list(ckpt["metrics"])
        if info.is_main:
            restore_rng(ckpt["rng"])
        else:  # other ranks: a deterministic stream of their own
            seed_everything(config.seed + 7919 * info.rank + global_step)
        log.info("resumed from %s at step %d (epoch %d, step %d)", ckpt_path, global_step, epoch, step_in_epoch)
    resumed_from = global_step
    del ckpt
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(metrics_path, "".join(json.dumps(m) + "\n" for m in metrics))

    def save_checkpoint(epoch: int, step_in_epoch: int) -> None:
        model_state = D.full_model_state(model)  # collectives: every rank takes part
        optim_state = D.full_optimizer_state(model, optimizer)
        if info.is_main:
            atomic_save(
                {
                    "model": model_state,
                    "optimizer": optim_state,
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch,
                    "step_in_epoch": step_in_epoch,
                    "global_step": global_step,
                    "rng": capture_rng(),
                    "metrics": metrics,
                    "config": config.to_dict(),
                    "data_fingerprint": fingerprint,
                    "world_size": info.world_size,
                },
                ckpt_path,
            )
        D.barrier(info)

    autocast = autocast_for(config, device)
    model.train()
    stopped = False
    t_run = time.perf_counter()
    while epoch < config.epochs and not stopped:
        steps = planner.epoch(epoch)
        while step_in_epoch < len(steps):
            step = steps[step_in_epoch]
            t0 = time.perf_counter()
            micro = step.micro_batches[info.rank]
            loss_sum = torch.zeros((), device=device)
            for k, indices in enumerate(micro):
                batch = {
                    n: t.to(device) for n, t in collate_packed(data.input_ids, data.labels, indices, pad_id).items()
                }
                with D.no_grad_sync(model, sync=k == len(micro) - 1):
                    with autocast:
                        micro_loss = packed_loss_sum(model, batch)
                    # DDP/FSDP average gradients over ranks: scale by world size to get the global sum
                    (micro_loss * (info.world_size / step.n_loss_tokens)).backward()
                loss_sum += micro_loss.detach()
            if info.distributed:
                torch.distributed.all_reduce(loss_sum)
            if config.grad_clip > 0:
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            else:
                grad_norm = torch.zeros(())
            grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            step_in_epoch += 1
            seconds = time.perf_counter() - t0
            entry = {
                "step": global_step,
                "epoch": epoch,
                "loss": loss_sum.item() / step.n_loss_tokens,
                "lr": lr,
                "grad_norm": float(grad_norm),
                "samples": step.n_samples,
                "tokens": step.n_tokens,
                "loss_tokens": step.n_loss_tokens,
                "micro_batches": len(micro),
                "seconds": round(seconds, 4),
                "tokens_per_s": round(step.n_tokens / seconds, 1) if seconds > 0 else None,
            }
            metrics.append(entry)
            if info.is_main:
                append_line(metrics_path, json.dumps(entry))
                log.info("step %d/%d epoch %d loss %.4f lr %.2e", global_step, total_steps, epoch, entry["loss"], lr)
            end_of_epoch = step_in_epoch == len(steps)
            if end_of_epoch:
                epoch, step_in_epoch = epoch + 1, 0
            if end_of_epoch or (config.save_every_steps and global_step % config.save_every_steps == 0):
                save_checkpoint(epoch, step_in_epoch)
            if on_step is not None:
                on_step(global_step, entry)  # may raise StopTraining (simulated kill)
            if config.max_steps and global_step >= config.max_steps:
                if not end_of_epoch:
                    save_checkpoint(epoch, step_in_epoch)
                stopped = True
                break
            if end_of_epoch:
                break

    completed = epoch >= config.epochs
    final_dir = None
    if completed:
        final_dir = out_dir / "final"
        summary = {
            "global_step": global_step,
            "epochs": config.epochs,
            "data": data.stats(),
            "config": config.to_dict(),
            "world_size": info.world_size,
            "seconds": round(time.perf_counter() - t_run, 2),
            "last_loss": metrics[-1]["loss"] if metrics else None,
            "base_model": str(model_dir),
        }
        save_hf_model(model, info, config, tokenizer, final_dir, summary)
        D.barrier(info)
    return LoopResult(
        out_dir=out_dir,
        final_dir=final_dir,
        global_step=global_step,
        completed=completed,
        last_loss=metrics[-1]["loss"] if metrics else None,
        metrics_path=metrics_path,
        data_stats=data.stats(),
        resumed_from_step=resumed_from,
    )
