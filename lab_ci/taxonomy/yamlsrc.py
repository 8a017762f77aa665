"""Read a leaf's bytes, within bounds: text, a position-carrying node tree, Python data.

The one reader of contributors' ``qna.yaml`` bytes (check, preview, build and the bot
all come through here). A leaf comes from a stranger's pull request, so reading it is
bounded before anything is built from it (:class:`ReadLimits`):

* size: more than ``max_bytes`` is not parsed (``file-too-large``);
* lines: more than ``max_lines`` is not parsed (``too-many-lines``);
* structure: a first pass over libyaml's event stream, before any node or value is
  built, counts the values the document stands for *with every alias expanded*
  (the expanded size of the node graph, a DAG, computed with each anchor's size
  memoised) and the nesting depth. An alias that takes the count past
  ``max_values`` is ``alias-expansion`` (an alias to the collection that contains it
  expands without end: the same rule); plain values past it are ``too-many-values``;
  a collection deeper than ``max_depth`` is ``nesting-depth``. Each is an error at
  the offending alias or node. Everything later (schema validation, rules, the
  preview's seed reading) walks data whose expanded size is known to be bounded.

One parse per file: the C (libyaml) composer builds the node tree (every node knows
its start line and column); the Python data is constructed from that same tree. The
reference validator uses PyYAML's pure-Python ``safe_load``; where libyaml refuses a
document we ask the pure-Python parser before calling it broken, so we never reject a
file the reference accepts, but only for documents of up to
:data:`PY_FALLBACK_MAX_EVENTS` events (the pure-Python scanner costs about 20 us an
event): past that, libyaml's verdict stands.

Text is what the reference sees: UTF-8 decoded, with ``\\r\\n`` and lone ``\\r``
turned into ``\\n`` (``Path.read_text`` uses universal newlines).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

try:  # libyaml's parser, on its own (no composer or constructor)
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

_CLoader = getattr(yaml, "CSafeLoader", None)

from .limits import (  # noqa: E402 - re-exported: the reader's public names
    DEFAULT_LIMITS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_LINES,
    DEFAULT_MAX_VALUES,
    PY_FALLBACK_MAX_EVENTS,
    ReadLimits,
    ReadProblem,
    Related,
)
from .yamlerrors import describe  # noqa: E402

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_LINES",
    "DEFAULT_MAX_VALUES",
    "PY_FALLBACK_MAX_EVENTS",
    "LeafYAMLError",
    "ReadLimits",
    "ReadProblem",
    "Related",
    "YamlSource",
    "decode",
    "load",
    "parse",
]


@dataclass
class YamlSource:
    """The outcome of reading one file."""

    text: str | None = None  # normalised text, None when not decoded (bad UTF-8, too large)
    node: yaml.Node | None = None  # root node; None for an empty document or a failure
    data: Any = None
    ok: bool = False  # decoded and parsed within the limits
    problems: list[ReadProblem] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[ReadProblem]:
        """The reader's problems under their former name (``severity``, ``line``,
        ``column``, ``message`` as before)."""
        return self.problems


class LeafYAMLError(yaml.YAMLError):
    """A leaf that cannot be read: broken YAML, bad UTF-8 or over a limit.

    A ``yaml.YAMLError``, so callers that already catch those keep working; ``str()``
    names the line and column."""

    def __init__(self, problem: ReadProblem):
        super().__init__(problem.message)
        self.problem = problem

    def __str__(self) -> str:
        p = self.problem
        return f"line {p.line}, column {p.column}: {p.message}"


# --- decoding ---------------------------------------------------------------------------


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    # column in characters of the valid prefix of the line
    col = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return line, col


def decode(data: bytes) -> tuple[str | None, list[ReadProblem]]:
    """UTF-8 text with universal newlines, or None and an error naming the first bad byte."""
    problems: list[ReadProblem] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _byte_position(data, e.start)
        return None, [
            ReadProblem(
                "encoding",
                f"the file is not valid UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} ({e.reason})",
                line,
                col,
                hint="Save the file as UTF-8 (most editors offer it under 'Save with encoding').",
            )
        ]
    if text.startswith("\ufeff"):
        problems.append(
            ReadProblem(
                "bom",
                "the file starts with a byte order mark (BOM)",
                1,
                1,
                severity="warning",
                hint="Save the file as UTF-8 without BOM.",
            )
        )
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, problems


# --- bounds on the structure --------------------------------------------------------------


class _OverBudget(Exception):
    def __init__(self, problem: ReadProblem):
        self.problem = problem


class _GaveUp(Exception):
    """The pure-Python parser's event budget ran out."""


def _at(event) -> tuple[int, int]:
    m = event.start_mark
    return m.line + 1, m.column + 1


class _Budget:
    """Follows a YAML event stream and stops it when the expanded document grows past
    ``max_values`` values or nests deeper than ``max_depth``.

    ``total`` is the running size of the document with every alias expanded: each
    scalar or collection adds 1, each alias the expanded size of its anchor's node,
    known once that node closed (memoised in ``anchors``). Summed in document order
    this is exactly the expanded size of the node graph, so the first event that
    takes it past the budget is the one to blame."""

    __slots__ = ("max_depth", "max_values", "max_events", "events", "total", "stack", "anchors")

    def __init__(self, limits: ReadLimits, max_events: int | None = None):
        self.max_depth = limits.max_depth
        self.max_values = limits.max_values
        self.max_events = max_events
        self.events = 0
        self.total = 0
        self.stack: list[list] = []  # [expanded size so far, anchor] of each open collection
        self.anchors: dict[str, int | None] = {}  # None: the collection is still open

    def feed(self, ev) -> None:
        if self.max_events is not None:
            self.events += 1
            if self.events > self.max_events:
                raise _GaveUp
        t = type(ev)
        if t is ScalarEvent:
            n = 1
            if ev.anchor is not None:
                self.anchors[ev.anchor] = 1
        elif t is AliasEvent:
            n = self.anchors.get(ev.anchor, 1)  # an undefined alias: the composer says so
            if n is None:
                raise _OverBudget(_recursive_alias(ev))
            if self.total + n > self.max_values:
                raise _OverBudget(_alias_expansion(ev, n, self.total, self.max_values))
        elif t is SequenceStartEvent or t is MappingStartEvent:
            if len(self.stack) >= self.max_depth:
                raise _OverBudget(_too_deep(ev, self.max_depth))
            if ev.anchor is not None:
                self.anchors[ev.anchor] = None
            self.stack.append([1, ev.anchor])
            self.total += 1
            if self.total > self.max_values:
                raise _OverBudget(_too_many_values(ev, self.max_values))
            return
        elif t is SequenceEndEvent or t is MappingEndEvent:
            size, anchor = self.stack.pop()
            if anchor is not None:
                self.anchors[anchor] = size
            if self.stack:
                self.stack[-1][0] += size
            return
        else:  # stream and document start / end
            return
        self.total += n
        if self.stack:
            self.stack[-1][0] += n
        if self.total > self.max_values:
            raise _OverBudget(_too_many_values(ev, self.max_values))


def _alias_expansion(ev, n: int, total: int, limit: int) -> ReadProblem:
    line, col = _at(ev)
    return ReadProblem(
        "alias-expansion",
        f"the alias *{ev.anchor} stands for {n:,} values; with it the file would hold more than "
        f"{limit:,} values once its aliases are expanded ({total:,} before it)",
        line,
        col,
        hint="Write the values out instead of repeating them through anchors (&name) and aliases (*name); "
        "a qna.yaml rarely needs aliases.",
    )


def _recursive_alias(ev) -> ReadProblem:
    line, col = _at(ev)
    return ReadProblem(
        "alias-expansion",
        f"the alias *{ev.anchor} points at the list or mapping that contains it, so it expands without end",
        line,
        col,
        hint=f"Remove *{ev.anchor} here, or point it at an anchor defined before this list or mapping.",
    )


def _too_deep(ev, limit: int) -> ReadProblem:
    line, col = _at(ev)
    return ReadProblem(
        "nesting-depth",
        f"lists and mappings are nested more than {limit} levels deep here",
        line,
        col,
        hint="A qna.yaml needs about 6 levels (seed_examples, an example, questions_and_answers, a question); "
        "look for unclosed brackets or runaway indentation here.",
    )


def _too_many_values(ev, limit: int) -> ReadProblem:
    line, col = _at(ev)
    return ReadProblem(
        "too-many-values",
        f"the file holds more than {limit:,} values (keys, items and texts); this one is past the limit",
        line,
        col,
        hint="A leaf needs a few dozen seed examples, a few hundred values in all; split it into several leaves.",
    )


def _too_many_lines(count: int, limit: int) -> ReadProblem:
    return ReadProblem(
        "too-many-lines",
        f"the file has {count:,} lines; lab-ci reads at most {limit:,}",
        limit + 1,
        1,
        hint="Remove runs of empty or comment lines, or split the leaf into several leaves.",
    )


def _scan(text: str, limits: ReadLimits) -> None:
    """libyaml's events for ``text`` through a :class:`_Budget`; raises ``_OverBudget``
    or libyaml's ``yaml.YAMLError``. Nothing is built."""
    parser = _CParser(text)
    budget = _Budget(limits)
    feed, get = budget.feed, parser.get_event
    try:
        while True:
            ev = get()
            if ev is None or type(ev) is StreamEndEvent:
                return
            feed(ev)
    finally:
        parser.dispose()


class _BoundedPythonLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader (the reference's), every event through a budget."""

    def __init__(self, text: str, limits: ReadLimits, max_events: int | None):
        super().__init__(text)
        self._budget = _Budget(limits, max_events)

    def get_event(self):
        ev = super().get_event()
        self._budget.feed(ev)
        return ev


# --- composing ---------------------------------------------------------------------------


def _compose(loader, check=None) -> tuple[yaml.Node | None, Any]:
    try:
        node = loader.get_single_node()
        if check is not None and node is not None:
            check(node)
        data = loader.construct_document(node) if node is not None else None
        return node, data
    finally:
        loader.dispose()


def _precheck(text: str, limits: ReadLimits) -> tuple[bool, bool]:
    """``(scan, walk)``: whether ``text`` needs the event scan, or else a walk of its
    node tree for depth, to be read within ``limits``. Counting characters is enough
    for most files: every value but the first follows one of ``: - ? [ { ,`` (each
    at most two values: a key and an empty value), every list or mapping starts at
    one of ``: - ? [ {``, and aliases need an anchor (``&``) and a ``*``."""
    if "*" in text and "&" in text:
        return True, False  # aliases: their expansion is counted on the events
    starts = text.count(":") + text.count("-") + text.count("?") + text.count("[") + text.count("{")
    if 2 * (starts + text.count(",")) + 2 > limits.max_values:
        return True, False
    return False, starts >= limits.max_depth


def _question_in_flow(root: yaml.Node | None) -> bool:
    """Does a plain (unquoted) scalar inside ``[...]`` or ``{...}`` hold a ``?``?"""
    stack = [(root, False)] if root is not None else []
    seen: set[int] = set()
    while stack:
        node, flow = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if flow and not node.style and "?" in node.value:
                return True
            continue
        inner = flow or bool(node.flow_style)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.append((k, inner))
                stack.append((v, inner))
        else:
            stack.extend((c, inner) for c in node.value)
    return False


def _check_depth(root: yaml.Node, limits: ReadLimits) -> None:
    """Raise ``_OverBudget`` at the first collection nested deeper than the limit (a
    tree: no aliases when this runs)."""
    stack = [(root, 1)]
    limit = limits.max_depth
    while stack:
        node, depth = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        if depth > limit:
            raise _OverBudget(_too_deep(node, limit))
        if isinstance(node, yaml.MappingNode):  # children pushed last first: popped in document order
            for k, v in reversed(node.value):
                stack.append((v, depth + 1))
                stack.append((k, depth + 1))
        else:
            stack.extend((c, depth + 1) for c in reversed(node.value))


def syntax_problem(exc: BaseException, text: str) -> ReadProblem:
    """A parser's or constructor's exception as a located problem in plain words
    (:mod:`lab_ci.taxonomy.yamlerrors`)."""
    if isinstance(exc, RecursionError):
        return ReadProblem("nesting-depth", "lists and mappings are nested too deeply to read")
    return describe(exc, text)


def _line_count(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def parse(data: bytes, limits: ReadLimits = DEFAULT_LIMITS) -> YamlSource:
    """Decode and compose ``data`` within ``limits``; never raises."""
    src = YamlSource()
    if len(data) > limits.max_bytes:
        src.problems.append(
            ReadProblem(
                "file-too-large",
                f"the file is larger than the limit of {limits.max_bytes:,} bytes",
                hint="Split the leaf into several leaves; seed examples are short excerpts, not whole documents.",
            )
        )
        return src
    text, problems = decode(data)
    src.problems.extend(problems)
    if text is None:
        return src
    src.text = text
    lines = _line_count(text)
    if lines > limits.max_lines:
        src.problems.append(_too_many_lines(lines, limits.max_lines))
        return src
    try:
        if _CParser is None or _CLoader is None:
            src.node, src.data = _compose(_BoundedPythonLoader(text, limits, None))
        else:
            scan, walk = _precheck(text, limits)
            if scan:
                _scan(text, limits)
            src.node, src.data = _compose(_CLoader(text), (lambda n: _check_depth(n, limits)) if walk else None)
            if "?" in text and ("{" in text or "[" in text) and _question_in_flow(src.node):
                # libyaml reads `{question: Why?, answer: x}`; PyYAML (the reference's
                # parser) ends a plain scalar at `?` inside brackets and fails: its word.
                raise yaml.YAMLError("a plain scalar with '?' inside a flow collection")
    except _OverBudget as e:
        src.problems.append(e.problem)
        return src
    except Exception as c_exc:  # noqa: BLE001 - every failure becomes a problem
        if _CLoader is None:
            src.problems.append(syntax_problem(c_exc, text))
            return src
        # libyaml and PyYAML differ on a few corner cases: the pure-Python parser (the
        # reference's) has the last word, and gives the positions we report, within
        # its own budget.
        try:
            src.node, src.data = _compose(_BoundedPythonLoader(text, limits, PY_FALLBACK_MAX_EVENTS))
        except _OverBudget as e:
            src.problems.append(e.problem)
            return src
        except _GaveUp:
            src.problems.append(syntax_problem(c_exc, text))
            return src
        except Exception as py_exc:  # noqa: BLE001
            src.problems.append(syntax_problem(py_exc, text))
            return src
    src.ok = True
    return src


def load(data: bytes, limits: ReadLimits = DEFAULT_LIMITS) -> Any:
    """The Python data of a leaf's bytes, read within ``limits``.

    For the stages after the check (preview, build): raises :class:`LeafYAMLError`
    (a ``yaml.YAMLError``) naming the line and column when the bytes are not UTF-8,
    not YAML, or over a limit; warnings (a BOM) are ignored."""
    src = parse(data, limits)
    if not src.ok:
        raise LeafYAMLError(next(p for p in src.problems if p.severity == "error"))
    return src.data


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
