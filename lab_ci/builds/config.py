"""Build configuration: a recipe file (YAML) with type-checked fields.

The packaged ``recipes/default.yaml`` is the default; ``--config FILE`` overrides any
of its keys (a shallow merge per top-level section).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import LabCIError

LEAF_KINDS = ("knowledge", "grounded_skill", "freeform_skill")


@dataclass(frozen=True)
class DataSource:
    source: str  # one of LEAF_KINDS
    weight: float = 1.0
    replay: bool = False  # data already seen in an earlier phase


@dataclass(frozen=True)
class PhaseRecipe:
    name: str
    data: tuple[DataSource, ...]
    epochs: int = 1


@dataclass(frozen=True)
class BuildConfig:
    samples_per_leaf: dict[str, int]
    round_size: int = 8
    max_rounds: int = 6
    seed: int = 42
    phases: tuple[PhaseRecipe, ...] = ()
    train: dict[str, Any] = field(default_factory=dict)
    postcheck_max_new_tokens: int = 48
    export_gguf: bool = True
    gguf_quant: str = "q8_0"
    #: leaf kind -> SDG pipeline name or .yaml file (default: the leaf's built-in pipeline)
    pipelines: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "samples_per_leaf": dict(self.samples_per_leaf),
            "round_size": self.round_size,
            "max_rounds": self.max_rounds,
            "seed": self.seed,
            "phases": [{"name": p.name, "epochs": p.epochs, "data": [vars(d) for d in p.data]} for p in self.phases],
            "train": dict(self.train),
            "postcheck_max_new_tokens": self.postcheck_max_new_tokens,
            "export_gguf": self.export_gguf,
            "gguf_quant": self.gguf_quant,
            "pipelines": dict(self.pipelines),
        }


def _default_recipe() -> dict:
    text = resources.files(__package__).joinpath("recipes/default.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _expect(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise LabCIError(f"{where}: {what}")


def parse_config(raw: dict, where: str = "build config") -> BuildConfig:
    """Turn a recipe mapping into a BuildConfig, naming the bad key on error."""
    _expect(isinstance(raw, dict), where, "the top level must be a mapping")
    known = {"generate", "phases", "train", "postcheck", "export_gguf", "gguf_quant"}
    unknown = set(raw) - known
    _expect(not unknown, where, f"unknown key(s): {', '.join(sorted(unknown))}")
    gen = raw.get("generate") or {}
    _expect(isinstance(gen, dict), where, "'generate' must be a mapping")
    spl = gen.get("samples_per_leaf") or {}
    _expect(isinstance(spl, dict), where, "'generate.samples_per_leaf' must be a mapping")
    for k, v in spl.items():
        _expect(k in LEAF_KINDS, where, f"generate.samples_per_leaf: unknown leaf kind {k!r}")
        _expect(isinstance(v, int) and v >= 0, where, f"generate.samples_per_leaf.{k} must be an integer >= 0")
    pipes = gen.get("pipelines") or {}
    _expect(isinstance(pipes, dict), where, "'generate.pipelines' must be a mapping of leaf kind to pipeline")
    for k, v in pipes.items():
        _expect(k in LEAF_KINDS, where, f"generate.pipelines: unknown leaf kind {k!r}")
        _expect(isinstance(v, str) and v, where, f"generate.pipelines.{k} must be a pipeline name or .yaml file")
    ints = {}
    for key, lo in (("round_size", 1), ("max_rounds", 1), ("seed", 0)):
        if key in gen:
            _expect(isinstance(gen[key], int) and gen[key] >= lo, where, f"generate.{key} must be an integer >= {lo}")
            ints[key] = gen[key]
    phases = []
    raw_phases = raw.get("phases") or []
    _expect(isinstance(raw_phases, list) and raw_phases, where, "'phases' must be a non-empty list")
    for i, p in enumerate(raw_phases):
        pw = f"{where}: phases[{i}]"
        _expect(isinstance(p, dict) and isinstance(p.get("name"), str), pw, "needs a 'name'")
        data = p.get("data") or []
        _expect(isinstance(data, list) and data, pw, "needs a non-empty 'data' list")
        sources = []
        for j, d in enumerate(data):
            _expect(
                isinstance(d, dict) and d.get("source") in LEAF_KINDS,
                f"{pw}.data[{j}]",
                f"'source' must be one of {', '.join(LEAF_KINDS)}",
            )
            w = d.get("weight", 1.0)
            _expect(isinstance(w, (int, float)) and w >= 0, f"{pw}.data[{j}]", "'weight' must be a number >= 0")
            sources.append(DataSource(d["source"], float(w), bool(d.get("replay", False))))
        epochs = p.get("epochs", 1)
        _expect(isinstance(epochs, int) and epochs >= 1, pw, "'epochs' must be an integer >= 1")
        phases.append(PhaseRecipe(p["name"], tuple(sources), epochs))
    train = raw.get("train") or {}
    _expect(isinstance(train, dict), where, "'train' must be a mapping")
    post = raw.get("postcheck") or {}
    _expect(isinstance(post, dict), where, "'postcheck' must be a mapping")
    mnt = post.get("max_new_tokens", 48)
    _expect(isinstance(mnt, int) and mnt >= 1, where, "postcheck.max_new_tokens must be an integer >= 1")
    quant = raw.get("gguf_quant", "q8_0")
    _expect(quant in ("f32", "f16", "q8_0"), where, "'gguf_quant' must be one of f32, f16, q8_0")
    return BuildConfig(
        samples_per_leaf={k: int(v) for k, v in spl.items()},
        phases=tuple(phases),
        train=dict(train),
        postcheck_max_new_tokens=mnt,
        export_gguf=bool(raw.get("export_gguf", True)),
        gguf_quant=quant,
        pipelines=dict(pipes),
        **ints,
    )


def load_config(path: Path | None = None, overrides: dict | None = None) -> BuildConfig:
    """The default recipe, updated by a YAML file and then by ``overrides`` (per section)."""
    raw = _default_recipe()
    where = "default recipe"
    if path is not None:
        try:
            user = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise LabCIError(f"{path}: cannot read build config: {e.strerror}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            pos = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise LabCIError(f"{path}{pos}: invalid YAML: {getattr(e, 'problem', e)}") from None
        _expect(isinstance(user, dict), str(path), "the top level must be a mapping")
        user = _resolve_pipeline_files(user, Path(path).parent)
        raw = _merge(raw, user)
        where = str(path)
    if overrides:
        raw = _merge(raw, overrides)
    return parse_config(raw, where)


def _resolve_pipeline_files(user: dict, base: Path) -> dict:
    """Pipeline files named in a recipe are relative to the recipe's folder."""
    gen = user.get("generate")
    if not isinstance(gen, dict) or not isinstance(gen.get("pipelines"), dict):
        return user
    pipes = {
        k: (str((base / v).resolve()) if isinstance(v, str) and v.endswith((".yaml", ".yml")) else v)
        for k, v in gen["pipelines"].items()
    }
    return {**user, "generate": {**gen, "pipelines": pipes}}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out
