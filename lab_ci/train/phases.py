"""Phased LAB training: knowledge first, then skills (with replay), each phase
starting from the previous phase's final model.

``out_dir/phase-N/`` holds phase N's run (``metrics.jsonl``, ``checkpoints/``) and,
once it finished, ``final/`` (an HF model dir with ``lab-ci-train.json``). Running
:func:`train_phases` again skips finished phases and resumes a partial one from its
last checkpoint. Which records go in which phase (mixing, replay weights) is the
caller's choice; :func:`replay_sample` is a small helper for the usual "add a
fraction of phase-1 data to phase 2".
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab_ci.errors import LabCIError
from lab_ci.train.loop import TrainConfig, train

DONE_MARKER = "lab-ci-train.json"


@dataclass(frozen=True)
class PhaseSpec:
    """One phase: its data files and the options that differ from the run's config."""

    name: str
    data: tuple[Path, ...]
    epochs: int | None = None
    learning_rate: float | None = None
    overrides: dict = field(default_factory=dict)  # any other TrainConfig keys for this phase

    def config(self, base: TrainConfig) -> TrainConfig:
        values = dict(self.overrides)
        if self.epochs is not None:
            values["epochs"] = self.epochs
        if self.learning_rate is not None:
            values["learning_rate"] = self.learning_rate
        return TrainConfig.from_dict(values, base=base)

    @classmethod
    def from_dict(cls, values: dict, base_dir: Path = Path(".")) -> PhaseSpec:
        """From a config-file mapping: name, data (list of paths, relative to base_dir), epochs, learning_rate, rest as overrides."""
        if not isinstance(values, dict) or not isinstance(values.get("name"), str):
            raise LabCIError("each phase needs a 'name' (string)")
        data = values.get("data")
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or not data or not all(isinstance(d, str) for d in data):
            raise LabCIError(f"phase {values['name']!r}: 'data' must be a non-empty list of JSONL paths")
        rest = {k: v for k, v in values.items() if k not in ("name", "data", "epochs", "learning_rate")}
        spec = cls(
            name=values["name"],
            data=tuple((base_dir / d) for d in data),
            epochs=values.get("epochs"),
            learning_rate=values.get("learning_rate"),
            overrides=rest,
        )
        spec.config(TrainConfig())  # type-check the overrides now
        return spec


@dataclass
class PhaseResult:
    name: str
    index: int  # 1-based
    out_dir: Path
    final_dir: Path | None
    global_step: int
    last_loss: float | None
    skipped: bool  # already finished by an earlier run
    data_stats: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    phases: list[PhaseResult]
    final_dir: Path | None  # the last phase's model; None if a phase stopped early (max_steps)
    completed: bool


def phase_dir(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / f"phase-{index}"


def train_phases(
    student_dir: Path,
    phases: Sequence[PhaseSpec],
    out_dir: Path,
    config: TrainConfig,
    on_step: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train ``phases`` in order from ``student_dir``; resumable at phase and step granularity."""
    if not phases:
        raise LabCIError("no training phases given")
    if not (Path(student_dir) / "config.json").is_file():
        raise LabCIError(f"{student_dir}: not a Hugging Face model directory (no config.json)")
    results: list[PhaseResult] = []
    model_dir = Path(student_dir)
    for index, spec in enumerate(phases, start=1):
        pdir = phase_dir(out_dir, index)
        final = pdir / "final"
        marker = final / DONE_MARKER
        if marker.is_file():
            summary = json.loads(marker.read_text())
            results.append(
                PhaseResult(
                    spec.name,
                    index,
                    pdir,
                    final,
                    summary.get("global_step", 0),
                    summary.get("last_loss"),
                    True,
                    summary.get("data", {}),
                )
            )
            model_dir = final
            continue
        res = train(model_dir, spec.data, pdir, spec.config(config), on_step=on_step)
        results.append(
            PhaseResult(spec.name, index, pdir, res.final_dir, res.global_step, res.last_loss, False, res.data_stats)
        )
        if not res.completed:
            return TrainResult(results, None, completed=False)
        model_dir = res.final_dir
    return TrainResult(results, model_dir, completed=True)


def replay_sample(path: Path, fraction: float, seed: int = 0) -> list[str]:
    """A seeded ``fraction`` of the lines of a JSONL file (for replaying phase-1 data in phase 2)."""
    if not 0 <= fraction <= 1:
        raise LabCIError(f"replay fraction must be within [0, 1], got {fraction}")
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    k = round(len(lines) * fraction)
    picked = sorted(random.Random(seed).sample(range(len(lines)), k))
    return [lines[i] for i in picked]


__all__ = ["PhaseSpec", "PhaseResult", "TrainResult", "train_phases", "replay_sample", "phase_dir", "TrainConfig"]
