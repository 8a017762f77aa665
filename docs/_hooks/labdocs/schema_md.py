"""JSON Schema -> Markdown tables: one row per key, nested keys flattened.

Generic over the parts of JSON Schema (draft 2020-12) that configuration files use:
``properties``/``required``, nested objects and arrays of objects (``items``), maps
(``additionalProperties`` with a schema, ``patternProperties``), ``$ref`` (to ``$defs`` or to other files, also
beside other keywords), ``allOf``, ``oneOf``/``anyOf`` (as alternative types),
``enum``/``const``, ``default``, ``examples``, ``deprecated``, and the usual bounds. ``if``/``then``
branches are not flattened: :func:`conditional_branches` lists them for the caller.

``$ref`` resolution is done by ``referencing`` (the library ``jsonschema`` validates
with), so a table documents exactly the schema the code validates against.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

MISSING = object()
MAX_DEPTH = 8


@dataclass
class Row:
    """One documented key."""

    key: str  # dotted path: ``document.repo``, ``seed_examples[].question``, ``fields.<name>``
    type: str
    required: bool
    default: Any = MISSING
    description: str = ""
    rules: list[str] = field(default_factory=list)


@dataclass
class _View:
    """A schema node with ``$ref`` and ``allOf`` merged in, and where its refs resolve."""

    node: dict
    props: dict[str, tuple[Any, Any]]  # name -> (schema, resolver)
    required: set[str]
    closed: bool
    additional: tuple[Any, Any] | None  # map values: (schema, resolver)
    items: tuple[Any, Any] | None


def load(path: str | Path):
    """``(schema, resolver)`` for a schema file; relative ``$ref``s resolve to its siblings."""
    path = Path(path).resolve()
    schema = json.loads(path.read_text(encoding="utf-8"))

    def retrieve(uri: str) -> Resource:
        if not uri.startswith("file://"):
            raise LookupError(f"{path}: only local $refs are documented, not {uri!r}")
        contents = json.loads(Path(uri[len("file://") :]).read_text(encoding="utf-8"))
        return Resource.from_contents(contents, default_specification=DRAFT202012)

    uri = path.as_uri()
    registry = Registry(retrieve=retrieve).with_resource(
        uri, Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    return schema, registry.resolver(base_uri=uri)


def resolver_for(schema: Mapping) -> Any:
    """A resolver for a schema held in memory (only ``#...`` refs inside it resolve)."""
    uri = "urn:lab-ci:schema"
    registry = Registry().with_resource(uri, Resource.from_contents(schema, default_specification=DRAFT202012))
    return registry.resolver(base_uri=uri)


def _view(node: Any, resolver: Any, depth: int = 0) -> _View:
    if not isinstance(node, Mapping):
        node = {}
    parts: list[_View] = []
    if "$ref" in node and depth < MAX_DEPTH:
        resolved = resolver.lookup(node["$ref"])
        parts.append(_view(resolved.contents, resolved.resolver, depth + 1))
    for sub in node.get("allOf", ()):
        if isinstance(sub, Mapping) and "if" not in sub and depth < MAX_DEPTH:
            parts.append(_view(sub, resolver, depth + 1))
    merged: dict = {}
    props: dict[str, tuple[Any, Any]] = {}
    required: set[str] = set()
    closed = False
    additional = items = None
    for part in parts:
        merged.update(part.node)
        props.update(part.props)
        required |= part.required
        closed = closed or part.closed
        additional = part.additional or additional
        items = part.items or items
    merged.update({k: v for k, v in node.items() if k not in ("$ref", "allOf")})
    for name, sub in (node.get("properties") or {}).items():
        props[name] = (sub, resolver)
    required |= set(node.get("required") or ())
    if node.get("additionalProperties") is False or node.get("unevaluatedProperties") is False:
        closed = True
    if isinstance(node.get("additionalProperties"), Mapping):
        additional = (node["additionalProperties"], resolver)
    for pattern, sub in (node.get("patternProperties") or {}).items():
        props[f"<name matching {pattern}>"] = (sub, resolver)
    if isinstance(node.get("items"), Mapping):
        items = (node["items"], resolver)
    return _View(merged, props, required, closed, additional, items)


def _type_name(node: Any, resolver: Any, depth: int = 0) -> str:
    if depth > MAX_DEPTH:
        return "any"
    view = _view(node, resolver, depth)
    n = view.node
    for key in ("oneOf", "anyOf"):
        if key in n:
            names = [_type_name(s, resolver, depth + 1) for s in n[key]]
            return " or ".join(dict.fromkeys(names))
    t = n.get("type")
    if t is None:
        if "const" in n:
            t = _json_type(n["const"])
        elif "enum" in n:
            t = list(dict.fromkeys(_json_type(v) for v in n["enum"]))
        elif view.props or view.additional:
            t = "object"
        elif view.items:
            t = "array"
    if isinstance(t, list):
        return " or ".join(t)
    if t == "array" and view.items:
        return f"array of {_type_name(*view.items, depth + 1)}"
    if t == "object" and view.additional and not view.props:
        return f"mapping of names to {_type_name(*view.additional, depth + 1)}"
    return t or "any"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def literal(value: Any) -> str:
    """A value as YAML would spell it (JSON flow style is valid YAML), in a code span."""
    text = value if isinstance(value, str) and value else json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _rules(node: Mapping, view: _View) -> list[str]:
    out = []
    if node.get("deprecated"):
        out.append("Deprecated.")
    if "const" in node:
        out.append(f"Must be {literal(node['const'])}.")
    if "enum" in node:
        out.append("One of " + ", ".join(literal(v) for v in node["enum"]) + ".")
    if "pattern" in node:
        out.append(f"Matches `{node['pattern']}`.")
    lo, hi = node.get("minLength"), node.get("maxLength")
    if lo == 1:
        out.append("Not empty.")
    elif lo:
        out.append(f"At least {lo} characters.")
    if hi is not None:
        out.append(f"At most {hi} characters.")
    if "minimum" in node and "maximum" in node:
        out.append(f"From {node['minimum']} to {node['maximum']}.")
    else:
        for key, sign in (("minimum", "≥"), ("maximum", "≤")):
            if key in node:
                out.append(f"{sign} {node[key]}.")
    for key, sign in (("exclusiveMinimum", ">"), ("exclusiveMaximum", "<")):
        if key in node:
            out.append(f"{sign} {node[key]}.")
    lo, hi = node.get("minItems"), node.get("maxItems")
    if lo:
        out.append("At least one item." if lo == 1 else f"At least {lo} items.")
    if hi is not None:
        out.append(f"At most {hi} items.")
    if node.get("uniqueItems"):
        out.append("No duplicate items.")
    if node.get("minProperties"):
        n = node["minProperties"]
        out.append("At least one key." if n == 1 else f"At least {n} keys.")
    if view.closed and (view.props or view.node.get("type") == "object"):
        out.append("No other keys.")
    if node.get("examples"):
        out.append("Example: " + ", ".join(literal(v) for v in node["examples"]) + ".")
    return out


def rows(schema: Any, resolver: Any = None, prefix: str = "", depth: int = 0) -> list[Row]:
    """Every key of an object schema, depth first, nested keys after their parent."""
    if resolver is None:
        resolver = resolver_for(schema)
    if depth > MAX_DEPTH:
        return []
    view = _view(schema, resolver, depth)
    out: list[Row] = []
    for name, (sub, sub_resolver) in view.props.items():
        out += _rows_for(f"{prefix}{name}", sub, sub_resolver, name in view.required, depth)
    if view.additional is not None and view.props:
        out += _rows_for(f"{prefix}<name>", *view.additional, False, depth)
    return out


def _rows_for(key: str, sub: Any, resolver: Any, required: bool, depth: int) -> list[Row]:
    view = _view(sub, resolver, depth + 1)
    n = view.node
    row = Row(
        key=key,
        type=_type_name(sub, resolver, depth + 1),
        required=required,
        default=n.get("default", MISSING),
        description=" ".join(str(n.get("description") or n.get("title") or "").split()),
        rules=_rules(n, view),
    )
    out = [row]
    if view.props:
        out += rows(sub, resolver, f"{key}.", depth + 1)
    elif view.additional is not None:
        out += _nested(f"{key}.<name>", *view.additional, depth)
    if view.items is not None:
        out += _nested(f"{key}[]", *view.items, depth)
    return out


def _nested(key: str, sub: Any, resolver: Any, depth: int) -> list[Row]:
    """Keys inside array items or map values (only when those are objects with keys)."""
    view = _view(sub, resolver, depth + 1)
    if not (view.props or view.additional):
        return []
    return rows(sub, resolver, f"{key}.", depth + 1)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown_table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A Markdown table of ready cells (code spans, links and escapes kept as given)."""
    lines = ["| " + " | ".join(header) + " |", align or "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table(row_list: list[Row]) -> str:
    """The rows as one Markdown table (Key, Type, Required, Default, Description)."""
    cells = []
    for r in row_list:
        default = "" if r.default is MISSING else literal(r.default)
        text = " ".join(p for p in (r.description.rstrip(".") + "." if r.description else "", *r.rules) if p)
        cells.append([f"`{_cell(r.key)}`", _cell(r.type), "yes" if r.required else "no", _cell(default), _cell(text)])
    return markdown_table(["Key", "Type", "Required", "Default", "Description"], cells)


def to_markdown(schema: Any, resolver: Any = None) -> str:
    """The schema's description, a note if it is deprecated, and the table of its keys."""
    if resolver is None:
        resolver = resolver_for(schema)
    view = _view(schema, resolver)
    parts = []
    description = " ".join(str(view.node.get("description") or "").split())
    if view.node.get("deprecated"):
        parts.append('!!! warning "Retired"\n    ' + (description or "This format is no longer accepted."))
    elif description:
        parts.append(description)
    row_list = rows(schema, resolver)
    if row_list:
        parts.append(table(row_list))
        if view.closed:
            parts.append("Keys not listed here are an error.")
    return "\n\n".join(parts) + "\n"


def conditional_branches(schema: Any, resolver: Any = None) -> Iterator[tuple[Mapping, Any, Any]]:
    """``(if, then, resolver)`` of every ``allOf`` member with an ``if`` (a lone ``$ref`` followed)."""
    if resolver is None:
        resolver = resolver_for(schema)
    node = schema
    for _ in range(MAX_DEPTH):
        if not (isinstance(node, Mapping) and "$ref" in node and "allOf" not in node):
            break
        resolved = resolver.lookup(node["$ref"])
        node, resolver = resolved.contents, resolved.resolver
    for sub in node.get("allOf", ()) if isinstance(node, Mapping) else ():
        if isinstance(sub, Mapping) and "if" in sub:
            yield sub["if"], sub.get("then", {}), resolver
