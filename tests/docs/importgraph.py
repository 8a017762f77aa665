"""lab_ci's import graph, computed statically (``ast``), and the data-flow diagram's arrows.

An import is any ``import``/``from ... import`` of a lab_ci module, wherever it stands
(module top, inside a function, under ``TYPE_CHECKING``), and any string constant that
is exactly a lab_ci module's name (``importlib.import_module("lab_ci.check.cli")``,
``python -m lab_ci.train.run``), except a logger's name. Importing ``a.b.c`` also runs ``a/b/__init__.py``;
that implicit edge is not counted (it would make every package a cycle).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

#: stage -> rank, lowest first: data flows from lower to higher ranks only. ``lab_ci``
#: (the package root and ``errors.py``) is below every stage; ``cli`` is ``cli.py``
#: and ``__main__.py``. Stages of one rank are peers: neither may import the other.
RANKS = {
    "lab_ci": 0,
    "taxonomy": 1,
    "check": 2,
    "teacher": 2,
    "sdg": 3,
    "preview": 4,
    "train": 4,
    "builds": 5,
    "eval": 5,
    "bot": 6,
    "cli": 7,
}
ROOT_MODULES = {"errors": "lab_ci", "__init__": "lab_ci", "cli": "cli", "__main__": "cli"}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


def modules(package_dir: Path) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the package."""
    package_dir = Path(package_dir)
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(package_dir: Path) -> list[Import]:
    """Every import of one of the package's own modules, by one of its modules."""
    mods = modules(package_dir)
    root = Path(package_dir).name
    out = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        loggers = {id(a) for n in ast.walk(tree) if _is_get_logger(n) for a in n.args}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # ``from pkg import mod`` imports the module pkg.mod, else pkg itself
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module for a in node.names]
            elif isinstance(node, ast.Constant) and node.value in mods and id(node) not in loggers:
                targets = [node.value]
            for target in targets:
                if (target == root or target.startswith(root + ".")) and target != name:
                    out.append(Import(name, _existing(target, mods), node.lineno))
    return out


def _is_get_logger(node: ast.AST) -> bool:
    """``logging.getLogger("lab_ci.x")`` names a logger, not a module to import."""
    func = getattr(node, "func", None)
    return isinstance(node, ast.Call) and getattr(func, "attr", getattr(func, "id", None)) == "getLogger"


def _existing(target: str, mods: dict[str, Path]) -> str:
    """The module itself, or the nearest package holding it (``from m import function``)."""
    while target not in mods and "." in target:
        target = target.rpartition(".")[0]
    return target


def stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "lab_ci"
    return ROOT_MODULES.get(parts[1], parts[1])


def layering_violations(found: list[Import], ranks: dict[str, int] = RANKS) -> list[Import]:
    """Imports that do not go to a lower rank: upward, or sideways between peer stages."""
    out = []
    for i in found:
        a, b = stage(i.importer), stage(i.imported)
        if a != b and ranks[b] >= ranks[a]:
            out.append(i)
    return out


def cycles(found: list[Import]) -> list[frozenset[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for i in found:
        graph.setdefault(i.importer, set()).add(i.imported)
        graph.setdefault(i.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(frozenset(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def stage_edges(found: list[Import]) -> set[tuple[str, str]]:
    """``(imported stage, importer stage)``: the direction data flows, as the diagram draws it."""
    return {(stage(i.imported), stage(i.importer)) for i in found if stage(i.imported) != stage(i.importer)}


_MERMAID = re.compile(r"^```mermaid\n(.*?)^```", re.S | re.M)
_ARROW = re.compile(r"^\s*(\w+)\s*(-->|-\.->|==>)\s*(?:\|[^|]*\|\s*)?(\w+)\s*$")
_NODE = re.compile(r"^\s*(\w+)\s*[\[(\{>]")


def mermaid_blocks(markdown: str) -> list[str]:
    return [m.group(1) for m in _MERMAID.finditer(markdown)]


def diagram(block: str) -> tuple[set[str], set[tuple[str, str]], set[tuple[str, str]]]:
    """``(nodes, solid arrows, dashed arrows)`` of a Mermaid flowchart (one arrow a line)."""
    nodes: set[str] = set()
    solid: set[tuple[str, str]] = set()
    dashed: set[tuple[str, str]] = set()
    for line in block.splitlines():
        m = _ARROW.match(line)
        if m:
            a, kind, b = m.groups()
            (dashed if kind == "-.->" else solid).add((a, b))
            nodes |= {a, b}
        elif m := _NODE.match(line):
            nodes.add(m.group(1))
    return nodes, solid, dashed
