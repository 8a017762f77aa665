"""lab_ci's import graph follows the data flow (no upward or sideways import between
stages, no import cycle), and the data-flow diagram of the architecture page and the
README draws exactly those imports."""

from __future__ import annotations

import textwrap
from pathlib import Path

import importgraph as g
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "lab_ci"
ARCHITECTURE = REPO / "docs" / "developers" / "architecture.md"
README = REPO / "README.md"

#: Known violations, being fixed on other branches: this list must be emptied at merge.
#: A listed import that no longer exists fails the test too, so the list stays true.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}
KNOWN_CYCLES: dict[frozenset[str], str] = {}


@pytest.fixture(scope="module")
def found() -> list[g.Import]:
    return g.imports(PACKAGE)


def test_the_graph_sees_imports_of_every_kind(found):
    pairs = {(i.importer, i.imported) for i in found}
    assert ("lab_ci.check.engine", "lab_ci.check.options") in pairs  # absolute, at the top
    assert ("lab_ci.preview.cli", "lab_ci.preview.api") in pairs  # relative, inside a function
    assert ("lab_ci.cli", "lab_ci.check.cli") in pairs  # a module name handed to importlib


def test_no_import_goes_up_or_sideways(found):
    bad = {(i.importer, i.imported): i for i in g.layering_violations(found)}
    new = [str(i) for key, i in bad.items() if key not in KNOWN_UPWARD]
    fixed = [f"{a} -> {b}" for a, b in KNOWN_UPWARD if (a, b) not in bad]
    assert not new, "imports against the data flow (stage order: " + ", ".join(g.RANKS) + "):\n" + "\n".join(new)
    assert not fixed, "fixed, remove from KNOWN_UPWARD: " + ", ".join(fixed)


def test_no_import_cycles(found):
    cycles = set(g.cycles(found))
    new = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    fixed = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert not new, f"modules importing each other: {new}"
    assert not fixed, f"fixed, remove from KNOWN_CYCLES: {fixed}"


def test_every_module_has_a_place_in_the_order():
    unplaced = sorted({g.stage(m) for m in g.modules(PACKAGE)} - set(g.RANKS))
    assert not unplaced, f"subpackages with no place in the stage order (importgraph.RANKS): {unplaced}"


def _drawn(markdown: str):
    blocks = g.mermaid_blocks(markdown)
    assert len(blocks) == 1, f"expected one data-flow diagram, found {len(blocks)}"
    return blocks[0], g.diagram(blocks[0])


def test_the_diagram_draws_exactly_the_imports(found):
    _, (nodes, solid, dashed) = _drawn(ARCHITECTURE.read_text(encoding="utf-8"))
    stages = {g.stage(m) for m in g.modules(PACKAGE)} - {"lab_ci"}
    known = {(g.stage(b), g.stage(a)) for a, b in KNOWN_UPWARD}
    imports = {(a, b) for a, b in g.stage_edges(found) if a != "lab_ci"} - known
    assert stages <= nodes, f"stages missing from the diagram: {sorted(stages - nodes)}"
    assert not (nodes & set(g.RANKS)) - stages, f"boxes for stages that do not exist: {sorted(nodes - stages)}"
    missing = sorted(imports - solid)
    extra = sorted(e for e in solid if e not in imports)
    assert not missing, "imports not drawn (add 'A --> B' for B importing A): " + ", ".join(
        f"{a} --> {b}" for a, b in missing
    )
    assert not extra, "solid arrows with no import behind them: " + ", ".join(f"{a} --> {b}" for a, b in extra)
    upward = [(a, b) for a, b in solid | dashed if a in g.RANKS and b in g.RANKS and g.RANKS[a] >= g.RANKS[b]]
    assert not upward, f"arrows going up or sideways: {upward}"


def test_the_readme_shows_the_same_diagram():
    block, _ = _drawn(ARCHITECTURE.read_text(encoding="utf-8"))
    readme_block, _ = _drawn(README.read_text(encoding="utf-8"))
    assert readme_block == block, "README.md and docs/developers/architecture.md must show the same diagram"


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "lab_ci" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path / "lab_ci"


def test_the_checker_reports_upward_sideways_and_cyclic_imports(tmp_path):
    pkg = _package(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "taxonomy/__init__.py": "",
            "taxonomy/leaf.py": "def f():\n    from ..bot import app  # upward, inside a function\n",
            "check/__init__.py": "",
            "check/a.py": "from lab_ci.teacher import base  # sideways: a peer\nfrom . import b\n",
            "check/b.py": "import lab_ci.check.a\nimport lab_ci.errors\n",
            "teacher/__init__.py": "",
            "teacher/base.py": "import logging\nlog = logging.getLogger('lab_ci.bot')  # a logger, not an import\n",
            "bot/__init__.py": "",
            "bot/app.py": "MODULES = ('lab_ci.check.a',)  # handed to importlib\n",
        },
    )
    found = g.imports(pkg)
    assert sorted(str(i) for i in g.layering_violations(found)) == [
        "lab_ci.check.a (line 1) imports lab_ci.teacher.base",
        "lab_ci.taxonomy.leaf (line 2) imports lab_ci.bot.app",
    ]
    assert g.cycles(found) == [frozenset({"lab_ci.check.a", "lab_ci.check.b"})]
    assert ("check", "bot") in g.stage_edges(found)


def test_the_diagram_parser_reads_solid_and_dashed_arrows():
    nodes, solid, dashed = g.diagram(
        'flowchart TD\n    a["A: x"]\n    b[("B")]\n    a --> b\n    b -.-> c\n    %% a --> c is a comment\n'
    )
    assert nodes == {"a", "b", "c"}
    assert solid == {("a", "b")}
    assert dashed == {("b", "c")}
