"""Hostile qna.yaml files: each small to send, each costly to a naive reader.

Every one fits under the default 1,000,000-byte file limit, so only the reader's other
bounds (alias expansion, nesting depth, values, lines, the pure-Python fallback's
budget) and linear-time checks stand between it and minutes of CPU or gigabytes of
memory.
"""

from __future__ import annotations

HEAD = "version: 3\ncreated_by: mallory\ntask_description: t\n"


def alias_bomb_sequences(levels: int = 9, width: int = 9) -> bytes:
    """Billion laughs: each anchored list holds ``width`` aliases of the previous one."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    prev = "a"
    for i in range(levels - 1):
        name = chr(ord("b") + i)
        lines.append(f"{name}: &{name} [" + ", ".join(f"*{prev}" for _ in range(width)) + "]")
        prev = name
    lines.append(f"seed_examples: [*{prev}]")
    return (HEAD + "\n".join(lines) + "\n").encode()


def alias_bomb_mappings(levels: int = 8, width: int = 9) -> bytes:
    """The issue's shape: ``b: &b {q: *a, r: *a, ...}`` eight levels deep, then
    ``seed_examples: [*h]`` (jsonschema's ``unevaluatedProperties`` walks it all)."""
    keys = "qrstuvwxyz"
    lines = ["a: &a {question: x, answer: y}"]
    prev = "a"
    for i in range(levels):
        name = chr(ord("b") + i)
        lines.append(f"{name}: &{name} {{" + ", ".join(f"{keys[j]}: *{prev}" for j in range(width)) + "}")
        prev = name
    lines.append(f"seed_examples: [*{prev}]")
    return (HEAD + "\n".join(lines) + "\n").encode()


def merge_key_bomb(levels: int = 8, width: int = 9) -> bytes:
    """Merge keys that merge the previous mapping ``width`` times, level after level."""
    lines = ["a: &a {question: x, answer: y, context: z}"]
    prev = "a"
    for i in range(levels):
        name = chr(ord("b") + i)
        lines.append(f"{name}: &{name} {{<<: [" + ", ".join(f"*{prev}" for _ in range(width)) + f"], k{i}: v}}")
        prev = name
    lines.append(f"seed_examples: [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    return (HEAD + "\n".join(lines) + "\n").encode()


def recursive_alias() -> bytes:
    """A list that contains itself: expands without end."""
    return (HEAD + "seed_examples: &s [*s, *s, *s, *s, *s]\n").encode()


def deep_flow(depth: int = 990) -> bytes:
    """Nested flow sequences just under libyaml's own limit of 1000 levels."""
    return (HEAD + "seed_examples: " + "[" * depth + "]" * depth + "\n").encode()


def deep_flow_unclosed(depth: int = 990_000) -> bytes:
    """A megabyte of ``[``: libyaml gives up at level 1000; a pure-Python re-parse
    would recurse and scan the whole megabyte."""
    return (HEAD + "seed_examples: " + "[" * depth + "\n").encode()


def deep_block(depth: int = 600) -> bytes:
    """Block sequences nested by indentation, one level per line."""
    return (HEAD + "seed_examples:\n" + "".join(" " * i + "-\n" for i in range(depth)) + " " * depth + "- x\n").encode()


def huge_scalar(size: int = 990_000) -> bytes:
    return (HEAD + "seed_examples:\n  - question: " + "x" * size + "\n    answer: a\n").encode()


def many_keys(n: int = 70_000) -> bytes:
    """One mapping with tens of thousands of keys (yamllint's key-duplicates rule keeps
    the keys in a list: quadratic)."""
    return (HEAD + "seed_examples:\n  - {" + ", ".join(f"k{i}: v" for i in range(n)) + "}\n").encode()


def many_seed_examples(n: int = 25_000) -> bytes:
    """Tens of thousands of distinct seed examples (jsonschema's ``uniqueItems``
    compares every pair: quadratic)."""
    return (HEAD + "seed_examples:\n" + "".join(f"  - {{question: q{i}, answer: a}}\n" for i in range(n))).encode()


def many_seed_examples_within_budget(n: int = 3_990) -> bytes:
    """As many distinct seed examples as the values budget allows."""
    return many_seed_examples(n)


def many_keys_within_budget(n: int = 9_990) -> bytes:
    return many_keys(n)


def many_flow_values(n: int = 490_000) -> bytes:
    """Half a million values on one line: a node tree of hundreds of megabytes."""
    return (HEAD + "seed_examples: [" + ",".join("a" for _ in range(n)) + "]\n").encode()


def many_comment_lines(n: int = 490_000) -> bytes:
    return (HEAD + "#\n" * n).encode()


def many_empty_lines(n: int = 990_000) -> bytes:
    return (HEAD + "\n" * n).encode()


def _long_seeds(n: int) -> str:
    return "".join(f"  - question: {i} {'x' * 200}\n    answer: a\n" for i in range(n))


def big_file_broken_at_the_end(n: int = 3_900) -> bytes:
    """Valid for most of a megabyte (within the values budget), then a syntax error: a
    pure-Python re-parse of it all (to confirm libyaml's verdict) costs seconds."""
    body = _long_seeds(n)
    return (HEAD + "seed_examples:\n" + body + "  - question: [unclosed\n").encode()


def big_file_with_a_tab(n: int = 3_900) -> bytes:
    """libyaml refuses a tab that PyYAML accepts: the pure-Python parser must decide,
    within its budget."""
    body = _long_seeds(n)
    return (HEAD + "seed_examples:\n" + body + "  - question: |\n      x\n\t  y\n    answer: a\n").encode()


#: name -> (bytes, the reader rule that must stop it, or None when it must simply be
#: checked within the bounds).
HOSTILE: dict[str, tuple[bytes, str | None]] = {
    "alias-bomb-sequences": (alias_bomb_sequences(), "alias-expansion"),
    "alias-bomb-mappings": (alias_bomb_mappings(), "alias-expansion"),
    "merge-key-bomb": (merge_key_bomb(), "alias-expansion"),
    "recursive-alias": (recursive_alias(), "alias-expansion"),
    "deep-flow": (deep_flow(), "nesting-depth"),
    "deep-flow-unclosed": (deep_flow_unclosed(), None),
    "deep-block": (deep_block(), "nesting-depth"),
    "huge-scalar": (huge_scalar(), None),
    "many-keys": (many_keys(), "too-many-values"),
    "many-seed-examples": (many_seed_examples(), "too-many-values"),
    "many-seed-examples-within-budget": (many_seed_examples_within_budget(), None),
    "many-keys-within-budget": (many_keys_within_budget(), None),
    "many-flow-values": (many_flow_values(), "too-many-values"),
    "many-comment-lines": (many_comment_lines(), "too-many-lines"),
    "many-empty-lines": (many_empty_lines(), "too-many-lines"),
    "big-file-broken-at-the-end": (big_file_broken_at_the_end(), None),
    "big-file-with-a-tab": (big_file_with_a_tab(), None),
}
