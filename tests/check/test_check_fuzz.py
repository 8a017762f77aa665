"""Fuzzing the leaf reader and the checker: whatever the bytes, ``check_leaf`` answers.

Properties, for every input: no exception escapes (and no ``internal`` diagnostic, the
engine's last-resort catch), the check takes under 1 s of CPU, and every diagnostic
has a line and column inside the file (a line past the last one is allowed: the end of
the file) and a message.

Two fuzzers: a seeded byte-level mutator of valid leaves (fast, many cases), and
hypothesis strategies that build YAML from a grammar with anchors, aliases, merge
keys, flow and block styles and deep nesting, then mutate it. The example counts are
sized for about 20 s of the suite (10 s of CPU) on the 2-core development machine.
"""

from __future__ import annotations

import random
import time

from checkleaf_samples import KNOWLEDGE, SKILL, leaf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab_ci.check import CheckOptions, check_leaf

CPU_LIMIT_S = 1.0
OPTIONS = [CheckOptions(), CheckOptions(schema_version="declared"), CheckOptions(strict=True)]
PATHS = ["knowledge/k/qna.yaml", "compositional_skills/s/qna.yaml", "qna.yaml"]
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ALPHABET = list(b"\t\n\r -:[]{}#&*!|>'\"%@`,?~\\") + [0, 0x85, 0xA0, 0xC3, 0xA9, 0xEF, 0xBB, 0xBF, 0xFF]


def check_answers(data: bytes, path: str, options: CheckOptions):
    """Check ``data``; assert the properties; return the result."""
    t0 = time.process_time()
    result = check_leaf(leaf(data, path), options)
    cpu = time.process_time() - t0
    assert cpu < CPU_LIMIT_S, (cpu, data[:300])
    assert result.path == path
    last_line = data.count(b"\n") + data.count(b"\r") + 2
    for d in result.diagnostics:
        assert d.rule != "internal", (data[:300], d)
        assert 1 <= d.line <= last_line and d.column >= 1 and d.message, (data[:300], d)
        for r in d.related:
            assert 1 <= r.line <= last_line and r.column >= 1 and r.message, (data[:300], d)
    return result


# --- seeded byte mutations of valid leaves ----------------------------------------------


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        pos = rng.randrange(len(b) + 1)
        if op < 0.4:
            b[pos:pos] = bytes([rng.choice(ALPHABET)])
        elif op < 0.7 and b:
            del b[min(pos, len(b) - 1)]
        elif op < 0.85:
            b[pos:pos] = rng.choice(
                [b"\t", b"\n  - ", b": ", b"*a", b"&a ", b"!!binary ", b"<<: *a\n", b"2024-13-45", b".inf"]
            )
        else:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(b)


def test_check_leaf_never_raises_on_mutated_leaves():
    rng = random.Random(20241125)
    seen_rules = set()
    for i in range(600):
        if i % 5 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        else:
            data = _mutate(rng, (SKILL if i % 2 else KNOWLEDGE).encode())
        result = check_answers(data, PATHS[i % 2], OPTIONS[i % 3])
        seen_rules.update(d.rule for d in result.diagnostics)
    assert {"syntax", "encoding"} <= seen_rules


# --- grammar-built YAML with anchors, aliases, merge keys and nesting ------------------------

_COMMON = st.sampled_from(
    ["x", "a b c", "''", '""', "'it''s'", '"tab\\there"', "1", "-2.5e3", ".inf", ".nan", "true", "~"]
    + ["2024-01-31", "!!binary aGVsbG8=", "!!str 3", "café ✓", "'x: y'", '"- z"', "'@at'"]
)
#: Plain scalars YAML refuses or cannot build: one scalar in ten.
_ODD = st.sampled_from(["2024-13-45", "!custom x", "@at", "`tick`", "x: y", "- z", "%x", "!!int x"])
_SCALARS = st.integers(0, 9).flatmap(lambda i: _ODD if i == 0 else _COMMON)
_KEYS = st.sampled_from(
    ["version", "created_by", "task_description", "domain", "seed_examples", "question", "answer", "context"]
    + ["questions_and_answers", "document", "repo", "commit", "patterns", "document_outline", "k", "<<", "? q"]
)


@st.composite
def yaml_documents(draw) -> str:
    """A YAML document (often a qna.yaml look-alike) with anchors defined before
    their aliases, merge keys, flow and block collections, and sometimes very deep
    nesting or an alias bomb. Mostly well-formed: the mutations break it."""
    anchors: list[str] = []
    map_anchors: list[str] = []  # anchors of mappings: what a merge key may name

    def merge_key() -> str | None:
        if map_anchors and draw(st.integers(0, 2)) == 0:
            names = draw(st.lists(st.sampled_from(map_anchors), min_size=1, max_size=3))
            return "<<: " + (f"*{names[0]}" if len(names) == 1 else "[" + ", ".join(f"*{n}" for n in names) + "]")
        return None

    def anchored(body: str, is_map: bool) -> str:
        if draw(st.integers(0, 3)):
            return body
        name = f"a{len(anchors)}"
        anchors.append(name)  # aliases may follow once this node is written
        if is_map:
            map_anchors.append(name)
        return f"&{name} {body}"

    def value(depth: int, indent: int, flow: bool) -> str:
        kinds = ["scalar", "alias", "flow_seq", "flow_map"] + ([] if flow else ["block_seq", "block_map", "literal"])
        kind = draw(st.sampled_from(kinds if depth < 6 else ["scalar", "alias"]))
        if kind == "alias" and anchors:
            return "*" + draw(st.sampled_from(anchors))
        if kind in ("scalar", "alias"):
            return draw(_SCALARS)
        if kind == "literal":
            pad = " " * (indent + 2)
            return draw(st.sampled_from(["|", "|-", ">", "|+"])) + f"\n{pad}{draw(_SCALARS)}\n{pad}more"
        n = draw(st.integers(0, 4))
        pad = " " * (indent + 2)
        if kind == "flow_seq":
            return anchored("[" + ", ".join(value(depth + 1, indent, True) for _ in range(n)) + "]", False)
        if kind == "flow_map":
            items = [f"{draw(_KEYS)}: {value(depth + 1, indent, True)}" for _ in range(n)]
            items += [m] if (m := merge_key()) else []
            return anchored("{" + ", ".join(items) + "}", True)
        if kind == "block_seq":
            return "".join(f"\n{pad}- {value(depth + 1, indent + 4, False)}" for _ in range(max(n, 1)))
        items = [f"\n{pad}{draw(_KEYS)}: {value(depth + 1, indent + 2, False)}" for _ in range(max(n, 1))]
        items += [f"\n{pad}{m}"] if (m := merge_key()) else []
        return "".join(items)

    lines = [f"{draw(_KEYS)}: {value(1, 0, False)}" for _ in range(draw(st.integers(1, 6)))]
    if draw(st.integers(0, 5)) == 0:  # deep nesting, mostly closed
        depth = draw(st.integers(1, 3000))
        closed = depth if draw(st.integers(0, 3)) else draw(st.integers(0, depth))
        lines.append("seed_examples: " + "[" * depth + "]" * closed)
    if draw(st.integers(0, 5)) == 0:  # an alias bomb of random shape
        width, levels = draw(st.integers(2, 12)), draw(st.integers(2, 10))
        lines.append("b0: &b0 {question: x, answer: y}")
        for i in range(1, levels):
            shape = draw(st.sampled_from(["seq", "map", "merge"]))
            if shape == "seq":
                lines.append(f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * width) + "]")
            elif shape == "map":
                lines.append(f"b{i}: &b{i} {{" + ", ".join(f"k{j}: *b{i - 1}" for j in range(width)) + "}")
            else:
                lines.append(f"b{i}: &b{i} {{<<: [" + ", ".join([f"*b{i - 1}"] * width) + f"], m{i}: v}}")
        lines.append(f"seed_examples: [*b{levels - 1}]")
    return "\n".join(lines) + "\n"


_EDITS = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.sampled_from(
            ["\t", "\r\n", "\r", " ", "\n", "- ", ": ", "#", "&a ", "*a", "|", "'", '"', "", "\ufeff", "\x00"]
        ),
        st.integers(0, 3),
    ),
    max_size=4,
)


def _apply(text: str, edits) -> str:
    for pos, insert, delete in edits:
        pos = pos % (len(text) + 1)
        text = text[:pos] + insert + text[pos + delete :]
    return text


@settings(FUZZ, max_examples=900)
@given(yaml_documents(), _EDITS, st.sampled_from(PATHS), st.sampled_from(OPTIONS))
def test_check_leaf_answers_grammar_built_yaml(text, edits, path, options):
    check_answers(_apply(text, edits).encode("utf-8", "surrogatepass"), path, options)


@settings(FUZZ, max_examples=400)
@given(st.binary(max_size=400), st.sampled_from(PATHS), st.sampled_from(OPTIONS))
def test_check_leaf_answers_arbitrary_bytes(data, path, options):
    check_answers(data, path, options)


@settings(FUZZ, max_examples=80)
@given(
    st.integers(1, 120_000),
    st.sampled_from(["[", "{a: ", "- ", "a:\n  ", "&x [", "*x, ", "? ", "'", "#\n", "\n", "x" * 7]),
    st.sampled_from(["", "]", "}", "\n"]),
    st.sampled_from(OPTIONS),
)
def test_check_leaf_answers_huge_repetitions(count, unit, tail, options):
    """Runs of one construct up to the size limit: nesting, values, lines, aliases."""
    data = ("version: 3\nseed_examples: " + unit * count + tail * count)[: options.max_file_bytes].encode()
    check_answers(data, PATHS[1], options)
