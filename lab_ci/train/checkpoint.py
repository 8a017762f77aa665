"""Resumable training checkpoints, written atomically.

A checkpoint is one ``torch.save`` file holding everything a run needs to go on
exactly where it stopped: the model and optimizer (full state dicts), the LR
scheduler, the position in the data (epoch and step within it), step counters,
the RNG states (python, numpy, torch CPU and every CUDA device), the metrics so
far, the config and a fingerprint of the data. It is written to ``NAME.tmp`` and
renamed over ``NAME``, so a run killed mid-write leaves the previous checkpoint
intact, and a failed write (a full disk) leaves no ``NAME.tmp`` behind.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from lab_ci.errors import LabCIError
from lab_ci.train.files import atomic_file

LATEST = "latest.pt"


def capture_rng() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: dict, path: Path) -> None:
    """``torch.save`` to ``path.tmp``, fsync, then rename over ``path``. A failed write
    (disk full) removes ``path.tmp`` and raises a LabCIError naming ``path`` and the cause."""
    with atomic_file(Path(path)) as fh:
        torch.save(obj, fh)


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint this code wrote (it holds RNG tuples, so not weights_only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a corrupt or foreign file
        raise LabCIError(f"{path}: cannot read training checkpoint: {exc}") from None
