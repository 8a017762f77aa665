"""JSON Schema validation of a parsed qna.yaml against our schemas (``schemas/vN``).

Errors are reported as the reference reports them (keyword, ``yaml_path`` in the
reference's notation, message), but at the real line and column of the offending node.

``uniqueItems`` is checked in linear time: jsonschema compares every pair of items
that are not sortable (seed examples are mappings), so 25,000 seed examples cost it
minutes. :func:`first_duplicate` groups items by a canonical key first and confirms
with jsonschema's own ``equal``; the verdict and message are jsonschema's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

import yaml
from jsonschema import ValidationError
from jsonschema._utils import equal as _json_equal
from jsonschema.validators import extend, validator_for
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT202012

from lab_ci.check.diagnostics import Diagnostic
from lab_ci.taxonomy import yamlsrc

SCHEMA_NAMES = ("compositional_skills", "knowledge")


def schema_root():
    """The folder holding ``v1/``, ``v2/``, ``v3/`` (shipped inside the package)."""
    return files("lab_ci") / "schemas"


@functools.cache
def _resource(path: str) -> Resource:
    try:
        contents = json.loads((schema_root() / path).read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001
        raise NoSuchResource(path) from e
    return Resource.from_contents(contents, default_specification=DRAFT202012)


def _retrieve(version: str, uri: str) -> Resource:
    parts = [p for p in uri.split("/") if p not in ("", ".")]
    return _resource("/".join([version, *parts]))


def schema_exists(version: Any, name: str) -> bool:
    try:
        _resource(f"v{version}/{name}.json")
        return True
    except NoSuchResource:
        return False


@functools.cache
def schema(version: int, name: str) -> Mapping:
    return _resource(f"v{version}/{name}.json").contents


def _canonical(x: Any) -> Any:
    """A hashable key with ``equal(a, b)`` implying ``_canonical(a) == _canonical(b)``
    (jsonschema's equality: ``True`` is not ``1``, lists equal tuples of the same
    items, mapping keys compare as Python compares them)."""
    if x is None:
        return (0,)
    if isinstance(x, bool):
        return (1, x)
    if isinstance(x, (int, float)):
        return (2, x)
    if isinstance(x, str):
        return (3, x)
    if isinstance(x, Mapping):
        return (4, frozenset((k, _canonical(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple, bytes, bytearray)):
        return (5, tuple(_canonical(v) for v in x))
    if isinstance(x, (set, frozenset)):
        return (6, frozenset(x))
    try:
        hash(x)
    except TypeError:
        return (7, id(x))
    return (8, x)


def first_duplicate(items: list) -> tuple[int, int] | None:
    """The indexes ``(i, j)``, ``i < j``, of the first item equal to an earlier one
    (jsonschema's equality), or None: linear time in the size of ``items``."""
    seen: dict[Any, list[int]] = {}
    for j, item in enumerate(items):
        bucket = seen.setdefault(_canonical(item), [])
        for i in bucket:
            if _json_equal(items[i], item):
                return i, j
        bucket.append(j)
    return None


def _unique_items(validator, unique, instance, schema):
    """jsonschema's ``uniqueItems`` keyword (same verdict, same message), linear."""
    if unique and validator.is_type(instance, "array"):
        pair = first_duplicate(instance)
        if pair is not None:
            error = ValidationError(f"{instance!r} has non-unique elements")
            error.duplicate = pair  # read by the message writer
            yield error


@functools.cache
def validator(version: int, name: str):
    """A ready validator for ``schemas/v<version>/<name>.json`` (built once per process)."""
    s = schema(version, name)
    cls = extend(validator_for(s), {"uniqueItems": _unique_items})
    registry = Registry(retrieve=functools.partial(_retrieve, f"v{version}"))
    # Resolve and crawl the referenced files once, not on every validation.
    for ref in _refs(s):
        registry = registry.with_resource(ref, _retrieve(f"v{version}", ref))
    return cls(s, registry=registry.crawl())


def _refs(node) -> set[str]:
    """Every relative ``$ref`` file name in a schema."""
    found: set[str] = set()
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            found.add(ref.split("#", 1)[0])
        for v in node.values():
            found |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _refs(v)
    return found


def _unexpected_key_node(error, node: yaml.Node | None) -> yaml.Node | None:
    """For ``unevaluatedProperties``: the first key not named in the schema."""
    if not isinstance(node, yaml.MappingNode) or not isinstance(error.instance, Mapping):
        return node
    known = set(error.schema.get("properties", {}))
    if error.schema.get("$ref", "").endswith("version.json"):
        known.add("version")
    for k, _v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value not in known:
            return k
    return node


def yaml_path(error) -> str:
    """The reference's notation: ``json_path`` without the ``$``; ``.`` for the root."""
    path = error.json_path[1:]
    return path or "."


def diagnostic(error, root: yaml.Node | None, name: str = "compositional_skills") -> Diagnostic:
    """A jsonschema error at the line and column of its node, in plain words
    (:mod:`lab_ci.check.messages`), with the reference's words as ``reference_message``."""
    from lab_ci.check.messages import schema_words

    node = yamlsrc.node_at(root, error.absolute_path)
    if error.validator == "unevaluatedProperties":
        node = _unexpected_key_node(error, node)
    related: tuple = ()
    if error.validator == "uniqueItems" and hasattr(error, "duplicate"):
        i, j = error.duplicate
        first = yamlsrc.node_at(root, [*error.absolute_path, i])
        node = yamlsrc.node_at(root, [*error.absolute_path, j])
        related = (yamlsrc.Related(*yamlsrc.position(first), "the first of the two"),)
    line, col = yamlsrc.position(node)
    if error.validator == "minItems":
        reference = f"Value must have at least {error.validator_value} items"
    else:
        reference = error.message[-200:]
    message, hint = schema_words(error, name)
    return Diagnostic(
        "error",
        "schema",
        str(error.validator),
        message,
        line,
        col,
        yaml_path(error),
        hint=hint,
        reference_message=reference,
        related=related,
    )


def validate(data: Mapping, root: yaml.Node | None, version: int, name: str) -> list[Diagnostic]:
    """Every schema error of ``data`` (a mapping), at the position of its node."""
    return [diagnostic(e, root, name) for e in validator(version, name).iter_errors(data)]
