"""``python -m lab_ci.train.run --config FILE``: phased training from a YAML file,
alone or under ``torchrun`` (DDP or FSDP).

The file::

    student: models/student          # HF model dir (paths relative to this file)
    out: runs/build-1                # phase-N/ folders go here
    train:                           # TrainConfig overrides (README, training section)
      effective_batch_size: 64
      max_tokens_per_batch: 8192
    phases:
      - name: knowledge
        data: [knowledge.jsonl]
        epochs: 2
      - name: skills
        data: [skills.jsonl, replay.jsonl]
        learning_rate: 1.0e-5

Examples::

    python -m lab_ci.train.run --config train.yaml
    torchrun --nproc_per_node=8 -m lab_ci.train.run --config train.yaml --strategy fsdp

Every rank reads the same config and data; only rank 0 writes. Exit 0 when every
phase finished, 3 when stopped early by ``max_steps``, 2 on a user error (a bad file,
a full disk, an unwritable folder: one ``lab-ci: error: PATH: ...`` line, or with
``--error-file FILE`` that line written to FILE for the caller to report).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import yaml

from lab_ci.errors import LabCIError
from lab_ci.train import distributed as D
from lab_ci.train.config import TrainConfig
from lab_ci.train.files import os_error, write_text_atomic
from lab_ci.train.phases import PhaseSpec, train_phases


def load_run_config(path: Path, overrides: dict | None = None):
    """(student_dir, out_dir, phases, TrainConfig) from a run YAML file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabCIError(f"{path}: cannot read run config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise LabCIError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict):
        raise LabCIError(f"{path}: run config must be a mapping")
    for key in ("student", "out", "phases"):
        if key not in doc:
            raise LabCIError(f"{path}: missing required key {key!r}")
    unknown = set(doc) - {"student", "out", "phases", "train"}
    if unknown:
        raise LabCIError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    base = path.parent
    train_values = dict(doc.get("train") or {})
    train_values.update(overrides or {})
    try:
        config = TrainConfig.from_dict(train_values)
    except LabCIError as exc:
        raise LabCIError(f"{path}: {exc}") from None
    if not isinstance(doc["phases"], list) or not doc["phases"]:
        raise LabCIError(f"{path}: 'phases' must be a non-empty list")
    phases = [PhaseSpec.from_dict(p, base) for p in doc["phases"]]
    return base / str(doc["student"]), base / str(doc["out"]), phases, config


def parse_set(items: list[str]) -> dict:
    """``--set key=value`` pairs; values are parsed as YAML scalars (numbers, booleans)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise LabCIError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m lab_ci.train.run`` (also read by the docs' CLI reference)."""
    parser = argparse.ArgumentParser(prog="python -m lab_ci.train.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="run YAML (student, out, train, phases)")
    parser.add_argument("--strategy", choices=("ddp", "fsdp"), help="multi-process strategy (overrides train.strategy)")
    parser.add_argument("--out", type=Path, help="output dir (overrides the file's 'out')")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a train option")
    parser.add_argument("--result-json", type=Path, help="write the TrainResult as JSON here (rank 0)")
    parser.add_argument(
        "--error-file",
        type=Path,
        help="on a user error, write its one-line message here instead of stderr (for a caller that reports it)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    result = None
    try:
        overrides = parse_set(args.set)
        if args.strategy:
            overrides["strategy"] = args.strategy
        student, out, phases, config = load_run_config(args.config, overrides)
        if args.out:
            out = args.out
        result = train_phases(student, phases, out, config)
        info = D.init_distributed(config.device)
        if args.result_json and info.is_main:
            write_text_atomic(args.result_json, json.dumps(_jsonable(result), indent=2) + "\n")
        # the ranks leave together: a rank that tears the gloo group down while its peer
        # still finishes its last collective makes the peer abort ("terminate called
        # without an active exception", seen once in an FSDP run under load)
        D.barrier(info)
    except LabCIError as exc:
        return _user_error(str(exc), args.error_file)
    except OSError as exc:  # a file or folder the run reads or writes: the user's to fix
        return _user_error(str(os_error(exc)), args.error_file)
    finally:
        D.cleanup_distributed()
    return 0 if result.completed else 3


def _user_error(message: str, error_file: Path | None) -> int:
    if error_file is not None:
        try:
            write_text_atomic(error_file, message + "\n")
            return 2
        except LabCIError:
            pass  # no room even for that: say it here
    print(f"lab-ci: error: {message}", file=sys.stderr)
    return 2


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


if __name__ == "__main__":
    sys.exit(main())
