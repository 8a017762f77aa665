"""The bounded leaf reader (lab_ci.taxonomy.yamlsrc): exact limits, the expanded size
of an aliased document, the pure-Python fallback, and the layering rule that the
taxonomy layer imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lab_ci.taxonomy import yamlsrc
from lab_ci.taxonomy.yamlsrc import LeafYAMLError, ReadLimits
from labtest import REPO_ROOT, run_git

ICAL = "compositional_skills/extraction/information/named_entities/ical/qna.yaml"


def rules(src) -> list[str]:
    return [p.rule for p in src.problems]


def expanded_size(node: yaml.Node) -> int:
    """Values in the node tree with every alias written out (no memo: the oracle)."""
    if isinstance(node, yaml.MappingNode):
        return 1 + sum(expanded_size(k) + expanded_size(v) for k, v in node.value)
    if isinstance(node, yaml.SequenceNode):
        return 1 + sum(expanded_size(c) for c in node.value)
    return 1


def test_the_one_real_leaf_with_anchors_and_merge_keys_reads_as_pyyaml_reads_it(corpus_mirror: Path):
    data = run_git("show", f"pr/232:{ICAL}", cwd=corpus_mirror).encode() + b"\n"
    src = yamlsrc.parse(data)
    assert src.ok and src.problems == []
    assert src.data == yaml.safe_load(data.decode())
    assert expanded_size(yaml.compose(data.decode())) == 134  # 98 distinct nodes, aliases expanded
    assert yamlsrc.load(data) == src.data
    # 134 values is far inside the budget; a budget of 120 is exceeded at an alias.
    tight = yamlsrc.parse(data, ReadLimits(max_values=120))
    assert rules(tight) == ["alias-expansion"]
    line = data.decode().split("\n")[tight.problems[0].line - 1]
    assert line[tight.problems[0].column - 1 :].startswith("*meeting")


def test_values_budget_is_exact():
    text = "a: [1, 2, 3]\nb: {c: d}\n"  # map, a, seq, 1, 2, 3, b, map, c, d = 10 values
    assert yamlsrc.parse(text.encode(), ReadLimits(max_values=10)).ok
    src = yamlsrc.parse(text.encode(), ReadLimits(max_values=9))
    assert rules(src) == ["too-many-values"] and (src.problems[0].line, src.problems[0].column) == (2, 8)


def test_alias_budget_counts_the_expansion_at_the_alias():
    text = "a: &x [1, 2, 3, 4]\nb: [*x, *x]\n"  # 1 + 1 + 5 + 1 + 1 + 5 + 5 = 19
    assert yamlsrc.parse(text.encode(), ReadLimits(max_values=19)).ok
    src = yamlsrc.parse(text.encode(), ReadLimits(max_values=18))
    (p,) = src.problems
    assert p.rule == "alias-expansion" and (p.line, p.column) == (2, 9) and "*x stands for 5 values" in p.message
    assert p.hint and src.data is None


def test_recursive_alias_is_refused():
    src = yamlsrc.parse(b"a: &s [1, *s]\n")
    (p,) = src.problems
    assert p.rule == "alias-expansion" and (p.line, p.column) == (1, 11) and "without end" in p.message


def test_depth_limit_is_exact():
    ok = "a: " + "[" * 4 + "]" * 4 + "\n"  # the root mapping + 4 lists = 5 levels
    assert yamlsrc.parse(ok.encode(), ReadLimits(max_depth=5)).ok
    src = yamlsrc.parse(ok.encode(), ReadLimits(max_depth=4))
    assert rules(src) == ["nesting-depth"] and (src.problems[0].line, src.problems[0].column) == (1, 7)


def test_line_and_size_limits():
    assert yamlsrc.parse(b"a: 1\n" * 10, ReadLimits(max_lines=10)).ok
    src = yamlsrc.parse(b"a: 1\n" * 11, ReadLimits(max_lines=10))
    assert rules(src) == ["too-many-lines"] and src.problems[0].line == 11 and src.text is not None
    src = yamlsrc.parse(b"a: 1\n" * 11, ReadLimits(max_bytes=54))
    assert rules(src) == ["file-too-large"] and src.text is None


def test_pure_python_fallback_decides_what_libyaml_refuses():
    # pr/1147 has a tab at the start of a block scalar's line: libyaml refuses it, PyYAML
    # (the reference) accepts it.
    text = "- answer: |\n     \tHar Gobind Khorana was born in 1922.\n  question: Is he a laureate?\n"
    with pytest.raises(yaml.YAMLError):
        yaml.load(text, Loader=yaml.CSafeLoader)
    src = yamlsrc.parse(text.encode())
    assert src.ok and src.data == yaml.safe_load(text)
    # ... within its budget: past it, libyaml's verdict stands.
    big = "- " + "".join(f"k{i}: v\n  " for i in range(yamlsrc.PY_FALLBACK_MAX_EVENTS // 2)) + text[2:]
    assert yamlsrc.parse(big.replace("\t", " ").encode()).ok  # within the values budget
    src = yamlsrc.parse(big.encode())
    assert not src.ok and rules(src) == ["tabs"]


def test_load_raises_a_located_yaml_error():
    with pytest.raises(LeafYAMLError, match=r"line 2, column 4: .*alias \*a") as info:
        yamlsrc.load(b"a: &a [1, 2]\nb: *a\n", ReadLimits(max_values=6))
    assert isinstance(info.value, yaml.YAMLError) and info.value.problem.rule == "alias-expansion"
    with pytest.raises(LeafYAMLError, match="line 1, column 12: the file is not valid UTF-8"):
        yamlsrc.load(b"version: 3 \xff\n")
    assert yamlsrc.load(b"\xef\xbb\xbfa: 1\n") == {"a": 1}  # a BOM is only a warning


# A small YAML document generator with anchors, aliases and merge keys: the budget's
# running total must be the expanded size of the composed node graph, exactly.
_scalars = st.sampled_from(["x", "1", "''", "true", "~", "a b"])


@st.composite
def _documents(draw) -> str:
    anchors: list[str] = []
    counter = [0]

    def value(depth: int) -> str:
        kind = draw(st.sampled_from(["scalar", "alias", "seq", "map"] if depth < 4 else ["scalar", "alias"]))
        if kind == "alias" and anchors:
            return "*" + draw(st.sampled_from(anchors))
        if kind in ("scalar", "alias"):
            return draw(_scalars)
        n = draw(st.integers(0, 4))
        if kind == "seq":
            body = "[" + ", ".join(value(depth + 1) for _ in range(n)) + "]"
        else:
            items = [f"k{i}: {value(depth + 1)}" for i in range(n)]
            if anchors and draw(st.booleans()):
                items.append(f"<<: *{draw(st.sampled_from(anchors))}")
            body = "{" + ", ".join(items) + "}"
        if draw(st.booleans()):
            counter[0] += 1
            name = f"a{counter[0]}"
            anchors.append(name)  # usable after this node closes
            return f"&{name} {body}"
        return body

    return "\n".join(f"top{i}: {value(1)}" for i in range(draw(st.integers(1, 4)))) + "\n"


@settings(max_examples=150, deadline=None, database=None)
@given(_documents())
def test_budget_total_is_the_expanded_size_of_the_node_graph(text):
    try:
        node = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return  # e.g. a merge key pointing at a list: not our concern here
    size = expanded_size(node)
    budget_rules = {"alias-expansion", "too-many-values"}
    within = yamlsrc.parse(text.encode(), ReadLimits(max_values=size))
    assert not [p for p in within.problems if p.rule in budget_rules]
    over = yamlsrc.parse(text.encode(), ReadLimits(max_values=size - 1))
    assert [p.rule for p in over.problems] in (["alias-expansion"], ["too-many-values"])


def test_the_taxonomy_layer_imports_nothing_above_it():
    """taxonomy/ is the lowest layer: no module of it imports check, sdg, preview, ..."""
    above = ("check", "teacher", "sdg", "preview", "train", "build", "bot", "cli")
    offenders = []
    for path in sorted((REPO_ROOT / "lab_ci" / "taxonomy").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                names = [mod] if node.module else [f"{mod}{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.lstrip(".").split(".")
                top = parts[1] if parts[0] == "lab_ci" and len(parts) > 1 else parts[0]
                if (name.startswith("..") or name.startswith("lab_ci.")) and top in above:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_a_question_mark_inside_brackets_is_read_as_the_reference_reads_it():
    """libyaml reads `{question: Why?}`; PyYAML, the reference's parser, ends the value
    at `?` and fails. The verdict must be the reference's."""
    for text in ("a: {question: Why?, answer: x}\n", "a: [Why?]\n"):
        with pytest.raises(yaml.YAMLError):
            yaml.load(text, Loader=yaml.SafeLoader)
        assert yaml.load(text, Loader=yaml.CSafeLoader)  # libyaml takes it
        src = yamlsrc.parse(text.encode())
        (p,) = src.problems
        assert not src.ok and p.rule == "syntax" and "`?`" in p.message and "quotes" in p.hint
    for text in ("a: Why?\nb: [x]\n", "a: {q: 'Why?'}\n", "a: [x]\nb: {c: d}\n"):
        assert yamlsrc.parse(text.encode()).ok and yaml.safe_load(text) == yamlsrc.load(text.encode())


def test_the_old_import_path_still_reads():
    """lab_ci.check.yamlsrc (the reader's old place) re-exports the reader, and
    ``diagnostics`` is still the list of problems (the bot's config reader uses both)."""
    from lab_ci.check import yamlsrc as old

    src = old.parse(b"a: [1\n")
    (d,) = [d for d in src.diagnostics if d.severity == "error"]
    assert not src.ok and (d.line, d.column) > (1, 1) and d.message
    assert old.position is yamlsrc.position and old.parse is yamlsrc.parse
