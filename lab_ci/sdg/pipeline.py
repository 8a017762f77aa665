"""Load, validate and run pipeline files.

A pipeline file (``<name>.yaml``) holds ``version``, ``name``, ``description`` and a
list of ``blocks`` (``name``, ``type``, ``config``). It is validated at load time
against ``pipeline.schema.json`` (errors name the file and the block), then every
prompt file a block names is read (``prompts/`` beside the file, then the built-in
``lab_ci/sdg/prompts/``). ``version_hash`` covers the YAML and every prompt it reads,
so a change to either changes ``PIPELINE_VERSION`` (BUILD's cache key).

Lookup order for a pipeline name: each ``--pipeline-dir`` (or ``LAB_CI_PIPELINE_DIR``,
``os.pathsep``-separated), then the built-in ``lab_ci/sdg/pipelines/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .blocks import BLOCK_TYPES, Block, RunContext, timed
from .errors import PipelineError
from .text import prompt_tags

if TYPE_CHECKING:
    import jsonschema

PACKAGE_DIR = Path(__file__).resolve().parent
BUILTIN_PIPELINES = PACKAGE_DIR / "pipelines"
BUILTIN_PROMPTS = PACKAGE_DIR / "prompts"
SCHEMA_PATH = PACKAGE_DIR / "pipeline.schema.json"
PIPELINE_DIR_ENV = "LAB_CI_PIPELINE_DIR"
BUILTIN_NAMES = ("freeform_skills", "grounded_skills", "knowledge")


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema  # heavy (~0.1 s): only when a pipeline file is loaded

    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@dataclass(frozen=True)
class BlockSpec:
    name: str
    type: str
    config: dict


@dataclass(frozen=True)
class Pipeline:
    name: str
    path: Path
    declared_version: str
    description: str
    blocks: tuple[BlockSpec, ...]
    prompts: dict[str, str] = field(default_factory=dict, compare=False)
    version_hash: str = ""
    #: every tag the pipeline shows the teacher (its prompts, example formats and field
    #: markers): boundaries when parsing output, never part of a training record
    tags: frozenset[str] = field(default_factory=frozenset, compare=False)

    @property
    def version(self) -> str:
        """``<declared version>+<12 hex of the hash of YAML and prompts>``."""
        return f"{self.declared_version}+{self.version_hash}"

    def run(self, ctx: RunContext, progress=None) -> list[dict]:
        ctx.prompts = self.prompts
        ctx.tags = self.tags
        blocks: list[Block] = [BLOCK_TYPES[b.type](b.name, b.config, ctx) for b in self.blocks]
        samples: list[dict] = []
        for block in blocks:
            if progress:
                progress(block.name)
            samples = timed(block, samples)
        return samples


def _where(doc, error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    if len(path) >= 2 and path[0] == "blocks" and isinstance(path[1], int):
        i = path[1]
        name = None
        try:
            name = doc["blocks"][i].get("name")
        except (AttributeError, IndexError, KeyError, TypeError):
            pass
        rest = ".".join(str(p) for p in path[2:])
        label = f"block {name!r} (blocks[{i}])" if name else f"blocks[{i}]"
        return f"{label}{': ' + rest if rest else ''}"
    return ".".join(str(p) for p in path) or "top level"


def _prompt_dirs(path: Path) -> list[Path]:
    return [path.parent / "prompts", path.parent, BUILTIN_PROMPTS]


def load_pipeline_file(path: str | Path) -> Pipeline:
    """Read and validate one pipeline file; :class:`PipelineError` names file and block."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        doc = yaml.safe_load(raw.decode("utf-8"))
    except OSError as e:
        raise PipelineError(f"{path}: cannot read pipeline file: {e.strerror}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise PipelineError(f"{path}: not valid YAML: {e}") from None
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        # the deepest error is the most specific one (if/then wraps block config errors)
        e = max(errors, key=lambda e: len(list(e.absolute_path)))
        raise PipelineError(f"{path}: {_where(doc, e)}: {e.message}")
    names = [b["name"] for b in doc["blocks"]]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise PipelineError(f"{path}: block {dup!r}: block names must be unique")
    if not any(b["type"] == "to_messages" for b in doc["blocks"]):
        raise PipelineError(f"{path}: blocks: a pipeline needs a to_messages block to produce training records")
    prompts: dict[str, str] = {}
    digest = hashlib.sha256(raw)
    for b in doc["blocks"]:
        cfg = b["config"]
        wanted = [cfg["prompt"]] if b["type"] == "llm" else []
        if b["type"] == "llm" and cfg.get("system", "").endswith((".txt", ".md")):
            wanted.append(cfg["system"])
        for name in wanted:
            if name in prompts:
                continue
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise PipelineError(f"{path}: block {b['name']!r}: prompt {name!r} must be a file name in prompts/")
            found = next((d / name for d in _prompt_dirs(path) if (d / name).is_file()), None)
            if found is None:
                raise PipelineError(
                    f"{path}: block {b['name']!r}: prompt file {name!r} not found "
                    f"(looked in {', '.join(str(d) for d in _prompt_dirs(path))})"
                )
            text = found.read_text("utf-8")
            prompts[name] = text
            digest.update(b"\0" + name.encode() + b"\0" + text.encode())
    tags: set[str] = set()
    for text in prompts.values():
        tags |= prompt_tags(text)
    for b in doc["blocks"]:
        cfg = b["config"]
        if b["type"] == "sample_seeds":
            tags |= prompt_tags(cfg.get("example_format", ""))
        if b["type"] == "llm":
            for f in cfg["fields"].values():
                f = f or {}
                ends = f.get("end") or []
                tags |= {m for m in [f.get("start"), *([ends] if isinstance(ends, str) else ends)] if m}
    return Pipeline(
        name=doc["name"],
        path=path,
        declared_version=doc["version"],
        description=doc.get("description", ""),
        blocks=tuple(BlockSpec(b["name"], b["type"], b["config"]) for b in doc["blocks"]),
        prompts=prompts,
        version_hash=digest.hexdigest()[:12],
        tags=frozenset(tags),
    )


def pipeline_dirs(extra=None) -> list[Path]:
    dirs: list[Path] = []
    for d in [extra] if isinstance(extra, (str, Path)) else list(extra or []):
        dirs.append(Path(d))
    env = os.environ.get(PIPELINE_DIR_ENV)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    return dirs + [BUILTIN_PIPELINES]


def find_pipeline(name: str, pipeline_dirs_=None) -> Path:
    """The file for a pipeline name (or an explicit ``.yaml`` path)."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return Path(name)
    dirs = pipeline_dirs(pipeline_dirs_)
    for d in dirs:
        for ext in (".yaml", ".yml"):
            if (d / f"{name}{ext}").is_file():
                return d / f"{name}{ext}"
    raise PipelineError(f"no pipeline named {name!r} (looked in {', '.join(map(str, dirs))})")


def load_pipeline(name: str, pipeline_dirs_=None) -> Pipeline:
    return load_pipeline_file(find_pipeline(name, pipeline_dirs_))


@cache
def builtin_versions() -> dict[str, str]:
    """Built-in pipeline name -> version; read once, on first use."""
    return {n: load_pipeline_file(BUILTIN_PIPELINES / f"{n}.yaml").version for n in BUILTIN_NAMES}
