"""Turn a qna.yaml's bytes into text, a position-carrying node tree and Python data.

One parse per file: the C (libyaml) composer builds the node tree (every node knows
its start line and column); the Python data is constructed from that same tree. The
reference validator uses PyYAML's pure-Python ``safe_load``; where libyaml refuses a
document we ask the pure-Python composer before calling it broken, so we never reject a
file the reference accepts.

Text is what the reference sees: UTF-8 decoded, with ``\\r\\n`` and lone ``\\r``
turned into ``\\n`` (``Path.read_text`` uses universal newlines).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from lab_ci.check.diagnostics import Diagnostic

_CLoader = getattr(yaml, "CSafeLoader", None)


@dataclass
class YamlSource:
    """The outcome of reading one file."""

    text: str | None = None  # normalised text, None when the bytes are not UTF-8
    node: yaml.Node | None = None  # root node; None for an empty document or a failure
    data: Any = None
    ok: bool = False  # decoded and parsed
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    # column in characters of the valid prefix of the line
    col = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return line, col


def decode(data: bytes) -> tuple[str | None, list[Diagnostic]]:
    """UTF-8 text with universal newlines, or None and an error naming the first bad byte."""
    diags: list[Diagnostic] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _byte_position(data, e.start)
        return None, [
            Diagnostic(
                "error",
                "yaml",
                "encoding",
                f"the file is not valid UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} ({e.reason})",
                line,
                col,
            )
        ]
    if text.startswith("\ufeff"):
        diags.append(
            Diagnostic(
                "warning",
                "yaml",
                "bom",
                "the file starts with a byte order mark (BOM); save it as UTF-8 without BOM",
                1,
                1,
            )
        )
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, diags


def _compose(loader_cls, text: str):
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        return node, data
    finally:
        loader.dispose()


def _mark_position(exc: BaseException) -> tuple[int, int]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


def _syntax_diagnostic(exc: BaseException, text: str) -> Diagnostic:
    line, col = _mark_position(exc)
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        msg = "; ".join(parts) or str(exc)
        lines = text.split("\n")
        ch = lines[line - 1][col - 1 : col] if 0 < line <= len(lines) else ""
        if ch == "\t" or ("'\\t'" in msg):
            return Diagnostic(
                "error", "yaml", "tabs", f"a tab character where YAML allows only spaces ({msg})", line, col
            )
        rule = "syntax" if not isinstance(exc, yaml.constructor.ConstructorError) else "construct"
        return Diagnostic("error", "yaml", rule, f"YAML {rule} error: {msg}", line, col)
    if isinstance(exc, RecursionError):
        return Diagnostic("error", "yaml", "syntax", "YAML nesting is too deep", line, col)
    return Diagnostic(
        "error", "yaml", "construct", f"cannot build a value: {type(exc).__name__}: {exc}"[:300], line, col
    )


def parse(data: bytes) -> YamlSource:
    """Decode and compose ``data``; never raises."""
    src = YamlSource()
    text, diags = decode(data)
    src.diagnostics.extend(diags)
    if text is None:
        return src
    src.text = text
    try:
        src.node, src.data = _compose(_CLoader or yaml.SafeLoader, text)
    except Exception as c_exc:  # noqa: BLE001 - every failure becomes a diagnostic
        if _CLoader is None:
            src.diagnostics.append(_syntax_diagnostic(c_exc, text))
            return src
        # libyaml and PyYAML differ on a few corner cases: the pure-Python parser (the
        # reference's) has the last word, and gives the positions we report.
        try:
            src.node, src.data = _compose(yaml.SafeLoader, text)
        except Exception as py_exc:  # noqa: BLE001
            src.diagnostics.append(_syntax_diagnostic(py_exc, text))
            return src
    src.ok = True
    return src


# --- positions ----------------------------------------------------------------------


def position(node: yaml.Node | None) -> tuple[int, int]:
    if node is None:
        return 1, 1
    return node.start_mark.line + 1, node.start_mark.column + 1


def _key_matches(key_node: yaml.Node, key: Any) -> bool:
    return isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key)


def find_key(mapping: yaml.Node, key: Any) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key node, value node) pair for ``key``; the last one wins, as in PyYAML."""
    if not isinstance(mapping, yaml.MappingNode):
        return None
    found = None
    for k, v in mapping.value:
        if _key_matches(k, key):
            found = (k, v)
    return found


def node_at(root: yaml.Node | None, path) -> yaml.Node | None:
    """The node at a JSON path given as keys and indexes; the deepest one found."""
    node = root
    for elem in path:
        if isinstance(node, yaml.SequenceNode) and isinstance(elem, int) and 0 <= elem < len(node.value):
            node = node.value[elem]
        elif isinstance(node, yaml.MappingNode):
            kv = find_key(node, elem)
            if kv is None:
                return node
            node = kv[1]
        else:
            return node
    return node


def duplicate_keys(root: yaml.Node | None) -> Iterator[tuple[yaml.Node, str]]:
    """Every repeated scalar key of every mapping (merge keys excepted), at its repeat."""
    if root is None:
        return
    stack = [root]
    seen_ids: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen_ids:  # aliases share nodes
            continue
        seen_ids.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value != "<<":
                    if k.value in keys:
                        yield k, k.value
                    keys.add(k.value)
                stack.append(v)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
