"""The options of a training run (:class:`TrainConfig`), checked against a JSON Schema.

``config.schema.json`` (shipped in the package) describes every option with its type,
range, default and meaning; the build recipe's ``train`` section refers to it, so the
reference docs and both validators come from one file. This module imports no torch:
``lab-ci build`` checks a recipe before it loads any model.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from lab_ci.errors import LabCIError

SCHEMA_FILE = "config.schema.json"


@functools.cache
def schema() -> dict:
    """The JSON Schema of the training options (``lab_ci/train/config.schema.json``)."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def unexpected_keys(error: ValidationError) -> list[str]:
    """For an ``additionalProperties: false`` error: the keys the schema does not name."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, Mapping):
        return []
    known = set(error.schema.get("properties", {}))
    return [str(k) for k in error.instance if k not in known]


def error_message(error: ValidationError) -> str:
    """One line for a schema error: unknown keys listed with the known ones; the
    validator's own words otherwise (``0 is less than the minimum of 1``)."""
    extra = unexpected_keys(error)
    if extra:
        known = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key {', '.join(map(repr, extra))} (known: {known})"
    if error.validator == "minItems" and error.validator_value == 1:
        return "must not be empty"
    return error.message if len(error.message) <= 300 else error.message[:297] + "..."


def sorted_errors(errors: Iterable[ValidationError]) -> list[ValidationError]:
    """Errors in document order (the deepest path first among equals)."""
    return sorted(errors, key=lambda e: ([str(p) for p in e.absolute_path], -len(e.absolute_path)))


# ----------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Every knob of a training run, with its default (``config.schema.json`` says what
    each one does; a test keeps the two in step)."""

    # data
    max_seq_len: int = 2048
    overlong: str = "skip"
    # batching
    effective_batch_size: int = 64
    max_tokens_per_batch: int = 8192
    shuffle: bool = True
    # optimisation
    epochs: int = 1
    learning_rate: float = 2e-5
    min_lr_ratio: float = 0.0
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    # runtime
    seed: int = 42
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "auto"
    gradient_checkpointing: bool = False
    strategy: str = "ddp"
    save_every_steps: int = 0
    max_steps: int = 0

    @classmethod
    def from_dict(cls, values: Mapping | None, base: TrainConfig | None = None) -> TrainConfig:
        """A config with ``values`` applied over ``base`` (or the defaults), checked
        against the schema (``LabCIError`` naming the option otherwise)."""
        values = coerce(values or {})
        for error in sorted_errors(_validator().iter_errors(values)):
            extra = unexpected_keys(error)
            if extra:
                known = ", ".join(sorted(schema()["properties"]))
                raise LabCIError(f"unknown training option {extra[0]!r} (known: {known})")
            key = error.absolute_path[0] if error.absolute_path else "?"
            raise LabCIError(f"training option {key!r}: {error_message(error)}")
        cfg = dataclasses.replace(base or cls(), **values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """What one option alone cannot say: how two of them relate."""
        if self.max_seq_len > self.max_tokens_per_batch:
            raise LabCIError("max_seq_len must not exceed max_tokens_per_batch (a sample must fit a micro-batch)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_FLOATS = frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.type in ("float", float))


def coerce(values: Mapping) -> dict:
    """Numbers as the dataclass wants them: ints for float options become floats, and
    YAML 1.1's ``2e-5`` (read as a string, for want of a dot) becomes a number."""
    out = dict(values)
    for key in _FLOATS & set(out):
        value = out[key]
        if isinstance(value, str):
            try:
                out[key] = float(value)
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = float(value)
    return out


#: Options a resumed run must share with the checkpoint (they change the math).
RESUME_KEYS = (
    "effective_batch_size",
    "shuffle",
    "epochs",
    "learning_rate",
    "min_lr_ratio",
    "lr_schedule",
    "warmup_steps",
    "seed",
    "weight_decay",
    "max_seq_len",
    "overlong",
)
