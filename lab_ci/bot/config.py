"""Repository configuration: ``.github/lab-ci.yaml``, read from the DEFAULT branch only.

The format is a JSON Schema shipped in the package (``repo-config.schema.json``: every
key with its description and default), validated with ``jsonschema``. The file is read
with the checker's YAML reader (:mod:`lab_ci.taxonomy.yamlsrc`), so errors carry the same
``file:line:column`` positions as ``lab-ci check``. A broken file is not a crash:
:func:`parse` raises :class:`ConfigError` listing every problem, one per line, and the
bot shows that message in its check runs.

The parse is bounded like every read of untrusted YAML: at most :data:`MAX_BYTES`, and a
document whose aliases expand to more than :data:`MAX_NODES` nodes is refused before it
is validated (the schema validator walks the expanded graph).

Example (all defaults shown)::

    version: 1
    check:
      strict: false            # warnings fail the check too
      schema_version: latest   # latest | declared | 1 | 2 | 3
      paths: []                # glob patterns of leaves to check (default: all qna.yaml)
    preview:
      enabled: true
      teacher: null            # NAME of a teacher the bot offers (a key of the server's
                               # LAB_CI_TEACHERS); never a path or URL (default: the server's)
      samples: 3               # samples per leaf for automatic previews
      max_samples: 10          # upper bound for `/lab preview samples=N`
    build:
      enabled: true
      approvers:
        permission: maintain   # minimum repository role: triage|write|maintain|admin
        teams: []              # org team slugs whose members may also approve
      executor: actions        # actions | local
      workflow: lab-ci-build-dispatch.yml
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from lab_ci.errors import LabCIError
from lab_ci.taxonomy import yamlsrc

CONFIG_PATH = ".github/lab-ci.yaml"
SCHEMA_FILE = "repo-config.schema.json"
ROLES = ("read", "triage", "write", "maintain", "admin")
EXECUTORS = ("actions", "local")
HARD_MAX_SAMPLES = 20
#: What ``preview.teacher`` may be: a short name the server maps to a model (the
#: schema's pattern; a test keeps the two equal).
TEACHER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Bounds of the parse: bytes of the file, and nodes once every alias is expanded.
MAX_BYTES = 64 * 1024
MAX_NODES = 20_000


class ConfigError(LabCIError):
    """``.github/lab-ci.yaml`` is not valid; the message names the file, line, column and key."""


@dataclass(frozen=True, slots=True)
class Approvers:
    permission: str = "maintain"
    teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RepoConfig:
    version: int = 1
    strict: bool = False
    schema_version: int | str | None = None  # None = latest
    paths: tuple[str, ...] = ()
    preview_enabled: bool = True
    teacher: str | None = None
    samples: int = 3
    max_samples: int = 10
    build_enabled: bool = True
    approvers: Approvers = field(default_factory=Approvers)
    executor: str = "actions"
    workflow: str = "lab-ci-build-dispatch.yml"

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "check": {"strict": self.strict, "schema_version": self.schema_version, "paths": list(self.paths)},
            "preview": {
                "enabled": self.preview_enabled,
                "teacher": self.teacher,
                "samples": self.samples,
                "max_samples": self.max_samples,
            },
            "build": {
                "enabled": self.build_enabled,
                "approvers": {"permission": self.approvers.permission, "teams": list(self.approvers.teams)},
                "executor": self.executor,
                "workflow": self.workflow,
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> RepoConfig:
        return parse_mapping(d)


DEFAULT = RepoConfig()


@functools.cache
def schema() -> dict:
    """The JSON Schema of the file (shipped in the package)."""
    return json.loads((files("lab_ci.bot") / SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def parse(text: str, *, path: str = CONFIG_PATH) -> RepoConfig:
    """Parse and validate the file's text. Empty text gives the defaults."""
    raw = text.encode("utf-8", errors="replace") if isinstance(text, str) else bytes(text)
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}:1:1: the file is {len(raw)} bytes; the most lab-ci reads is {MAX_BYTES}")
    if not raw.strip():
        return DEFAULT
    src = yamlsrc.parse(raw)
    errors = [d for d in src.diagnostics if d.severity == "error"]
    if errors or not src.ok:
        d = errors[0] if errors else None
        where = f"{path}:{d.line}:{d.column}" if d else path
        raise ConfigError(f"{where}: invalid YAML: {d.message if d else 'the file cannot be read'}")
    if src.node is None or src.data is None:
        return DEFAULT
    if not isinstance(src.data, dict):
        line, col = yamlsrc.position(src.node)
        raise ConfigError(f"{path}:{line}:{col}: the file must be a mapping of sections (check, preview, build)")
    nodes = expanded_size(src.node, MAX_NODES)
    if nodes > MAX_NODES:
        raise ConfigError(
            f"{path}:1:1: the file expands to more than {MAX_NODES} values (YAML anchors and aliases); "
            "lab-ci does not read it"
        )
    problems = [f"{path}:{line}:{col}: {key}: duplicate key" for line, col, key in _duplicates(src.node)]
    if problems:
        raise ConfigError("\n".join(problems))
    return parse_mapping(src.data, path=path, root=src.node)


def expanded_size(root: yaml.Node, cap: int) -> int:
    """How many nodes the document has once every alias is expanded, counted without
    expanding anything (each node once, bottom-up) and without recursion; stops counting
    past ``cap``."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        sizes[id(node)] = min(cap + 1, 1 + sum(sizes.get(id(c), 0) for c in children))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for kv in node.value for n in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _duplicates(root: yaml.Node) -> list[tuple[int, int, str]]:
    return [(*yamlsrc.position(k), key) for k, key in yamlsrc.duplicate_keys(root)]


# -- validation -------------------------------------------------------------------------
_TYPE_NAMES = {
    "boolean": "true/false",
    "integer": "a whole number",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _shown(value: Any) -> str:
    """A value as the file would write it (a string in quotes)."""
    return "null" if value is None else (json.dumps(value) if isinstance(value, str) else str(value))


def _choice(value: Any) -> str:
    """A value of a list of choices, as a word."""
    return "null" if value is None else str(value)


def _message(error: ValidationError) -> str:
    """One short message for one schema error (the schema's ``x-error`` when it has one)."""
    sub = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        return "unknown key (expected " + ", ".join(sub.get("properties", {})) + ")"
    got = "" if isinstance(error.instance, (dict, list)) else f", got {_shown(error.instance)}"
    if "x-error" in sub:
        return sub["x-error"] + got
    if error.validator == "type":
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return "must be " + " or ".join(_TYPE_NAMES.get(k, k) for k in kinds) + got
    if error.validator == "enum":
        return "must be one of " + ", ".join(_choice(v) for v in error.validator_value) + got
    if error.validator in ("minimum", "maximum"):
        return f"must be from {sub.get('minimum')} to {sub.get('maximum')}{got}"
    return error.message


def _errors(data: dict) -> list[tuple[list, str, bool]]:
    """(JSON path, message, whether it is about the key itself) of every schema error;
    an item of a list reports on its list."""
    out = []
    for error in _validator().iter_errors(data):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            props = error.schema.get("properties", {})
            extras = [k for k in error.instance if k not in props] if isinstance(error.instance, dict) else []
            out += [(path + [k], _message(error), True) for k in sorted(extras, key=str)]
            continue
        # an item of a list whose list declares x-error (paths, teams): report on the list
        parent_schema = _schema_at(path[:-1]) if path and isinstance(path[-1], int) else None
        if parent_schema and "x-error" in parent_schema:
            out.append((path[:-1], parent_schema["x-error"], False))
            continue
        out.append((path, _message(error), False))
    return out


def _schema_at(path: list) -> dict | None:
    node: Any = schema()
    for key in path:
        if isinstance(key, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(key)
        if not isinstance(node, dict):
            return None
    return node


def _locate(root: yaml.Node | None, path: list, *, key: bool = False) -> tuple[int, int]:
    """Line and column of the value at ``path``, or of its key (``key``: an unknown key)."""
    if root is None:
        return 1, 1
    if path:
        parent = yamlsrc.node_at(root, path[:-1])
        kv = yamlsrc.find_key(parent, path[-1]) if isinstance(parent, yaml.MappingNode) else None
        if kv is not None:
            return yamlsrc.position(kv[0] if key else kv[1])
    return yamlsrc.position(yamlsrc.node_at(root, path))


def parse_mapping(data: dict, *, path: str = CONFIG_PATH, root: yaml.Node | None = None) -> RepoConfig:
    """Validate a parsed file (``root``: its YAML nodes, for positions) and build it."""
    problems: list[tuple[int, int, str]] = []
    seen = set()
    for json_path, message, about_key in _errors(data):
        key = ".".join(str(p) for p in json_path) or "(the file)"
        if (key, message) in seen:
            continue
        seen.add((key, message))
        problems.append((*_locate(root, json_path, key=about_key), f"{key}: {message}"))
    if not problems:
        preview = data.get("preview") or {}
        samples = preview.get("samples", DEFAULT.samples)
        max_samples = preview.get("max_samples", DEFAULT.max_samples)
        if samples > max_samples:
            line, col = _locate(root, ["preview", "samples"])
            problems.append(
                (line, col, f"preview.samples: must be from 1 to max_samples ({max_samples}), got {samples}")
            )
    if problems:
        problems.sort()
        raise ConfigError("\n".join(f"{path}:{line}:{col}: {text}" for line, col, text in problems))
    return _build(data)


def _build(data: dict) -> RepoConfig:
    check = data.get("check") or {}
    preview = data.get("preview") or {}
    build = data.get("build") or {}
    approvers = build.get("approvers") or {}
    schema_version = check.get("schema_version", DEFAULT.schema_version)
    return RepoConfig(
        version=1,
        strict=check.get("strict", DEFAULT.strict),
        schema_version=schema_version,
        paths=tuple(check.get("paths", ())),
        preview_enabled=preview.get("enabled", DEFAULT.preview_enabled),
        teacher=preview.get("teacher"),
        samples=preview.get("samples", DEFAULT.samples),
        max_samples=preview.get("max_samples", DEFAULT.max_samples),
        build_enabled=build.get("enabled", DEFAULT.build_enabled),
        approvers=Approvers(
            permission=approvers.get("permission", DEFAULT.approvers.permission),
            teams=tuple(t.lower() for t in approvers.get("teams", ())),
        ),
        executor=build.get("executor", DEFAULT.executor),
        workflow=build.get("workflow", DEFAULT.workflow),
    )
