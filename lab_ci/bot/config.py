"""Repository configuration: ``.github/lab-ci.yaml``, read from the DEFAULT branch only.

Every key is optional; with no file the defaults below apply. A broken file is not a
crash: :func:`parse` raises :class:`ConfigError` naming the file, line and key, and the
bot shows that message in its check runs.

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

import re
from dataclasses import dataclass, field

import yaml

from lab_ci.errors import LabCIError

CONFIG_PATH = ".github/lab-ci.yaml"
ROLES = ("read", "triage", "write", "maintain", "admin")
EXECUTORS = ("actions", "local")
HARD_MAX_SAMPLES = 20
#: What ``preview.teacher`` may be: a short name the server maps to a model.
TEACHER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(LabCIError):
    """``.github/lab-ci.yaml`` is not valid; the message names the file, line and key."""


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

_SCHEMA: dict[str, dict[str, type | tuple]] = {
    "check": {"strict": bool, "schema_version": (int, str, type(None)), "paths": list},
    "preview": {"enabled": bool, "teacher": (str, type(None)), "samples": int, "max_samples": int},
    "build": {"enabled": bool, "approvers": dict, "executor": str, "workflow": str},
}


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key (for messages)."""


def _construct_mapping(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    lines = {}
    for key_node, _ in node.value:
        lines[str(key_node.value)] = key_node.start_mark.line + 1
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str, *, path: str = CONFIG_PATH) -> RepoConfig:
    """Parse and validate the file's text. Empty text gives the defaults."""
    try:
        data = yaml.load(text, Loader=_LineLoader) if text and text.strip() else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return DEFAULT
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1:1: the file must be a mapping of sections (check, preview, build)")
    return parse_mapping(data, path=path)


def _err(path: str, lines: dict, key: object, msg: str) -> ConfigError:
    key = str(key)
    line = lines.get(key.split(".")[-1], 1) if lines else 1
    return ConfigError(f"{path}:{line}: {key}: {msg}")


def _typename(t) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    names = {
        bool: "true/false",
        int: "a whole number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }
    return " or ".join(names.get(x, x.__name__) for x in ts)


def _keys(d: dict) -> list[str]:
    """The keys of a YAML mapping as strings (YAML keys may be numbers, booleans, null)."""
    return sorted(str(k) for k in d)


def parse_mapping(data: dict, *, path: str = CONFIG_PATH) -> RepoConfig:
    lines = data.get("__lines__", {})
    top = {k: v for k, v in data.items() if k != "__lines__"}
    unknown = sorted(set(_keys(top)) - {"version", "check", "preview", "build"})
    if unknown:
        raise _err(path, lines, unknown[0], "unknown key (expected version, check, preview, build)")
    top = {str(k): v for k, v in top.items()}
    version = top.get("version", 1)
    if version != 1 or isinstance(version, bool):
        raise _err(path, lines, "version", f"unsupported config version {version!r} (expected 1)")
    sections: dict[str, dict] = {}
    for name, spec in _SCHEMA.items():
        sec = top.get(name) or {}
        if not isinstance(sec, dict):
            raise _err(path, lines, name, "must be a mapping")
        sl = sec.get("__lines__", {})
        sec = {k: v for k, v in sec.items() if k != "__lines__"}
        for k, v in sorted(sec.items(), key=lambda kv: str(kv[0])):
            if not isinstance(k, str) or k not in spec:
                raise _err(path, sl, f"{name}.{k}", f"unknown key (expected one of {', '.join(spec)})")
            t = spec[k]
            ok = isinstance(v, t) and not (isinstance(v, bool) and t in (int, (int, type(None))))
            if not ok:
                raise _err(path, sl, f"{name}.{k}", f"must be {_typename(t)}, got {v!r}")
        sections[name] = (sec, sl)

    check, cl = sections["check"]
    paths = check.get("paths", [])
    if not all(isinstance(p, str) and p for p in paths):
        raise _err(path, cl, "check.paths", "must be a list of glob strings")
    schema_version = check.get("schema_version")
    if schema_version is not None and schema_version not in (1, 2, 3, "latest", "declared"):
        raise _err(path, cl, "check.schema_version", "must be 1, 2, 3, latest or declared")

    preview, pl = sections["preview"]
    samples = preview.get("samples", DEFAULT.samples)
    max_samples = preview.get("max_samples", DEFAULT.max_samples)
    if not 1 <= max_samples <= HARD_MAX_SAMPLES:
        raise _err(path, pl, "preview.max_samples", f"must be from 1 to {HARD_MAX_SAMPLES}")
    if not 1 <= samples <= max_samples:
        raise _err(path, pl, "preview.samples", f"must be from 1 to max_samples ({max_samples})")

    build, bl = sections["build"]
    appr = build.get("approvers") or {}
    al = appr.get("__lines__", {})
    appr = {k: v for k, v in appr.items() if k != "__lines__"}
    if not isinstance(appr, dict):
        raise _err(path, bl, "build.approvers", "must be a mapping")
    extra = sorted(set(_keys(appr)) - {"permission", "teams"})
    if extra:
        raise _err(path, al, f"build.approvers.{extra[0]}", "unknown key (expected permission, teams)")
    permission = appr.get("permission", "maintain")
    if permission not in ROLES[1:]:
        raise _err(path, al, "build.approvers.permission", f"must be one of {', '.join(ROLES[1:])}, got {permission!r}")
    teams = appr.get("teams", [])
    if not isinstance(teams, list) or not all(isinstance(t, str) and t for t in teams):
        raise _err(path, al, "build.approvers.teams", "must be a list of team slugs")
    teacher = preview.get("teacher")
    if teacher is not None and not TEACHER_KEY.match(teacher):
        raise _err(
            path,
            pl,
            "preview.teacher",
            f"must be the name of a teacher this bot offers (a key of its LAB_CI_TEACHERS, e.g. tiny), not a path or URL; got {teacher!r}",
        )
    executor = build.get("executor", "actions")
    if executor not in EXECUTORS:
        raise _err(path, bl, "build.executor", f"must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    workflow = build.get("workflow", DEFAULT.workflow)
    if not workflow or "/" in workflow or not workflow.endswith((".yml", ".yaml")):
        raise _err(
            path,
            bl,
            "build.workflow",
            "must be a workflow file name in .github/workflows (e.g. lab-ci-build-dispatch.yml)",
        )

    return RepoConfig(
        version=1,
        strict=check.get("strict", False),
        schema_version=schema_version,
        paths=tuple(paths),
        preview_enabled=preview.get("enabled", True),
        teacher=teacher,
        samples=samples,
        max_samples=max_samples,
        build_enabled=build.get("enabled", True),
        approvers=Approvers(permission=permission, teams=tuple(t.lower() for t in teams)),
        executor=executor,
        workflow=workflow,
    )
