"""The build recipe: a YAML file checked against ``recipe.schema.json``.

The schema, shipped in the package, gives every key's type, range, default and meaning
(the reference docs are generated from it); its defaults are the default recipe. A
``--config FILE`` changes only the keys it sets: mappings are merged key by key into
the defaults, a list (``phases``) replaces the default list. The ``train`` section is
the training options' own schema (``lab_ci/train/config.schema.json``).

A bad recipe is a user error located the way ``lab-ci check`` locates a leaf's:
``recipe.yaml:12:7: phases[1].data[0].source: 'skils' is not one of [...]``, one line
per problem, from the same YAML reader (the node tree keeps every position).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..errors import LabCIError
from ..sdg.pipeline import load_pipeline
from ..taxonomy import yamlsrc
from ..train import config as train_config
from ..train.files import describe

LEAF_KINDS = ("knowledge", "grounded_skill", "freeform_skill")
SCHEMA_FILE = "recipe.schema.json"


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
    #: leaf kind -> SDG pipeline name or .yaml file
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


# ------------------------------------------------------------------------------ schema
@functools.cache
def schema() -> dict:
    """The recipe's JSON Schema (``lab_ci/builds/recipe.schema.json``)."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


#: where the two schemas sit for the validator: their places in the package, so the
#: recipe's relative ``$ref`` to ``../train/config.schema.json`` resolves (as it does
#: for a reader of the files, and for the docs' reference generator)
_BASE = "https://lab-ci.invalid/lab_ci/"


@functools.cache
def _validator() -> Draft202012Validator:
    registry = Registry().with_resources(
        [
            (_BASE + "builds/" + SCHEMA_FILE, Resource.from_contents(schema(), default_specification=DRAFT202012)),
            (
                _BASE + "train/" + train_config.SCHEMA_FILE,
                Resource.from_contents(train_config.schema(), default_specification=DRAFT202012),
            ),
        ]
    )
    resolver_schema = {"$ref": _BASE + "builds/" + SCHEMA_FILE}
    return Draft202012Validator(resolver_schema, registry=registry)


def defaults() -> dict:
    """The default recipe: every section's default in the schema."""
    return {key: copy.deepcopy(prop["default"]) for key, prop in schema()["properties"].items()}


def merge(base: Mapping, over: Mapping) -> dict:
    """``over`` on top of ``base``: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------ errors
def _json_path(error: ValidationError) -> str:
    return error.json_path[2:] or "(top level)"


def _node(error: ValidationError, root):
    """The YAML node to point at: the unexpected key itself for an unknown key."""
    node = yamlsrc.node_at(root, error.absolute_path)
    for key in train_config.unexpected_keys(error):
        found = yamlsrc.find_key(node, key)
        if found:
            return found[0]
    return node


def _recipe_error(problems: list[tuple[tuple[int, int], str]], where: str) -> LabCIError:
    """One line per problem, in file order; a count first when there are several."""
    lines = [text for _pos, text in sorted(problems)]
    if len(lines) == 1:
        return LabCIError(lines[0])
    return LabCIError(f"{where}: {len(lines)} problems in the build recipe:\n  " + "\n  ".join(lines))


def check_recipe(data: Any, where: str, root=None) -> None:
    """Raise a LabCIError listing every schema problem of ``data``, at ``where:line:col``
    when the YAML node tree ``root`` is given."""
    problems = []
    for e in _validator().iter_errors(data):
        if root is not None:
            line, col = yamlsrc.position(_node(e, root))
            problems.append(((line, col), f"{where}:{line}:{col}: {_json_path(e)}: {train_config.error_message(e)}"))
        else:
            problems.append(((0, 0), f"{where}: {_json_path(e)}: {train_config.error_message(e)}"))
    if problems:
        raise _recipe_error(problems, where)


# ------------------------------------------------------------------------------ loading
def _read(path: Path) -> tuple[dict, Any]:
    """(mapping, YAML node tree) of a recipe file; an empty file is an empty recipe."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise LabCIError(f"{path}: cannot read the build recipe: {describe(e)}") from None
    src = yamlsrc.parse(data)
    errors = [d for d in src.diagnostics if d.severity == "error"]
    if errors:
        d = errors[0]
        raise LabCIError(f"{path}:{d.line}:{d.column}: {d.message}")
    user = {} if src.data is None else src.data
    if isinstance(user, dict) and isinstance(user.get("train"), dict):
        user = {**user, "train": train_config.coerce(user["train"])}  # YAML 1.1 reads 2e-5 as a string
    check_recipe(user, str(path), src.node)
    return user, src.node


def _resolve_pipeline_files(user: dict, base: Path) -> dict:
    """Pipeline files named in a recipe are relative to the recipe's folder."""
    pipes = (user.get("generate") or {}).get("pipelines")
    if not pipes:
        return user
    resolved = {k: str((base / v).resolve()) if v.endswith((".yaml", ".yml")) else v for k, v in pipes.items()}
    return merge(user, {"generate": {"pipelines": resolved}})


def load_config(path: Path | None = None, overrides: Mapping | None = None) -> BuildConfig:
    """The build configuration of :func:`effective_recipe`."""
    raw = effective_recipe(path, overrides)
    gen = raw["generate"]
    return BuildConfig(
        samples_per_leaf=dict(gen["samples_per_leaf"]),
        round_size=gen["round_size"],
        max_rounds=gen["max_rounds"],
        seed=gen["seed"],
        phases=tuple(
            PhaseRecipe(
                p["name"],
                tuple(DataSource(d["source"], float(d.get("weight", 1.0)), d.get("replay", False)) for d in p["data"]),
                p.get("epochs", 1),
            )
            for p in raw["phases"]
        ),
        train=dict(raw["train"]),
        postcheck_max_new_tokens=raw["postcheck"]["max_new_tokens"],
        export_gguf=raw["export_gguf"],
        gguf_quant=raw["gguf_quant"],
        pipelines=dict(gen["pipelines"]),
    )


def effective_recipe(path: Path | None = None, overrides: Mapping | None = None) -> dict:
    """The default recipe, updated by the YAML file ``path`` and then by ``overrides``,
    checked: the schema, the pipelines it names (loaded), the training options together."""
    raw, where, root = defaults(), "default build recipe", None
    if path is not None:
        user, root = _read(Path(path))
        raw = merge(raw, _resolve_pipeline_files(user, Path(path).parent))
        where = str(path)
    if overrides:
        raw = merge(raw, overrides)
        check_recipe(raw, "build recipe (with overrides)")
    gen = raw["generate"]
    for kind, name in gen["pipelines"].items():
        try:
            load_pipeline(name)
        except LabCIError as e:
            raise LabCIError(_at(where, root, ("generate", "pipelines", kind), str(e))) from None
    try:
        train_config.TrainConfig.from_dict({"seed": gen["seed"], **raw["train"]})
    except LabCIError as e:
        raise LabCIError(_at(where, root, ("train",), str(e))) from None
    return raw


def _at(where: str, root, path: tuple, message: str) -> str:
    """``where:line:col: a.b.c: message`` (the deepest node of ``path`` the file has)."""
    dotted = ".".join(path)
    if root is None:
        return f"{where}: {dotted}: {message}"
    line, col = yamlsrc.position(yamlsrc.node_at(root, path))
    return f"{where}:{line}:{col}: {dotted}: {message}"
