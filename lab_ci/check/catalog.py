"""Every rule ``lab-ci check`` can report, documented from code (yamllint's habit).

:func:`rule_docs` returns one :class:`RuleDoc` per diagnostic id: its id
(``source/rule``), level, a one-line summary, a description and a passing and a
failing example. The taxonomy rules carry theirs in their own modules
(``lab_ci/check/rules/*.py``: docstring, ``SUMMARY``, ``PASSING``, ``FAILING``,
``EXAMPLE``); the ``yaml``, ``yamllint`` and ``schema`` families, and the checks the
engine makes itself, are described here. The rules reference page of the docs is
generated from this function, and a test checks every example: each passing example
is clean, each failing one yields that rule and no other.

An example is a whole leaf (short ones are written in flow style), checked at
``path`` with ``attribution`` beside it and ``options`` (fields of
:class:`~lab_ci.check.options.CheckOptions`): e.g. ``file-too-large`` is shown with a
100-byte limit rather than with a megabyte of text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from lab_ci.check.rules.examples import ATTRIBUTION, KNOWLEDGE, KNOWLEDGE_PATH, KNOWLEDGE_V2, SKILL, SKILL_PATH

__all__ = ["ATTRIBUTION", "KNOWLEDGE", "KNOWLEDGE_PATH", "KNOWLEDGE_V2", "SKILL", "SKILL_PATH", "RuleDoc", "rule_docs"]


@dataclass(frozen=True)
class RuleDoc:
    """One rule: what ``lab-ci check`` reports as ``source/rule``."""

    id: str  # "source/rule", as shown in every output format
    source: str  # yaml | yamllint | schema | taxonomy
    rule: str
    level: str  # error | warning (by default; --strict makes every warning an error)
    summary: str
    description: str
    passing: str | bytes | None  # a leaf this rule has nothing to say about
    failing: str | bytes | None  # a leaf that gets this rule, and no other
    path: str = SKILL_PATH
    attribution: bytes | None = ATTRIBUTION
    options: Mapping = field(default_factory=lambda: MappingProxyType({}))
    #: What differs for the failing example: ``path``, ``attribution`` (None: no
    #: attribution.txt), ``kind`` (not-a-file: ``symlink``).
    failing_context: Mapping = field(default_factory=lambda: MappingProxyType({}))


def _skill(old: str, new: str) -> str:
    assert old in SKILL, old
    return SKILL.replace(old, new, 1)


def _knowledge(old: str, new: str) -> str:
    assert old in KNOWLEDGE, old
    return KNOWLEDGE.replace(old, new, 1)


def _doc(source, rule, level, summary, description, passing, failing, **kw) -> RuleDoc:
    opts = MappingProxyType(dict(kw.pop("options", {})))
    ctx = MappingProxyType(dict(kw.pop("failing_context", {})))
    return RuleDoc(
        f"{source}/{rule}",
        source,
        rule,
        level,
        summary,
        description,
        passing,
        failing,
        options=opts,
        failing_context=ctx,
        **kw,
    )


def _yaml() -> list[RuleDoc]:
    return [
        _doc(
            "yaml",
            "syntax",
            "error",
            "the file is not well-formed YAML",
            "The parser's error in plain words, at the place it gave up, with the place where the construct it "
            'was reading began as a related location ("a line falls out of the block that starts on line 4"), '
            "and a hint for the common mistakes: text after `|`, a line indented less than its block, no space "
            "after a colon, `: ` inside an unquoted value, unclosed quotes and brackets. The reference validator "
            "crashes on these files.",
            SKILL,
            _skill("  - {question: A rhyme for cat, answer: Hat.}", "  - {question: A rhyme for cat, answer: Hat."),
        ),
        _doc(
            "yaml",
            "tabs",
            "error",
            "a tab character where YAML allows only spaces",
            "YAML indents with spaces. A tab in the indentation (or anywhere the parser expects a token) makes the "
            "file unreadable.",
            SKILL,
            _skill("  - {question: A rhyme for dog", "\t- {question: A rhyme for dog"),
        ),
        _doc(
            "yaml",
            "construct",
            "error",
            "a value cannot be built (an unknown tag, an impossible date)",
            "The file is well-formed but a value cannot be made from it: a tag YAML does not know (`!custom`), or a "
            "date that does not exist (`2024-13-45`). Quote the value to keep it as text.",
            SKILL,
            _skill("task_description: Find", "task_description: !custom Find"),
        ),
        _doc(
            "yaml",
            "encoding",
            "error",
            "the file is not valid UTF-8",
            "Points at the first byte that is not UTF-8 (line, column and byte offset).",
            SKILL,
            _skill("answer: Hat.", "answer: H\udcffat.").encode("utf-8", "surrogateescape"),
        ),
        _doc(
            "yaml",
            "bom",
            "warning",
            "the file starts with a byte order mark",
            "A UTF-8 file does not need a byte order mark; some tools choke on it.",
            SKILL,
            "\ufeff" + SKILL,
        ),
        _doc(
            "yaml",
            "empty",
            "warning",
            "the file is empty",
            "Nothing but comments, or an empty value (`{}`, `[]`, `~`). As the reference: a warning, nothing else "
            "is checked.",
            SKILL,
            "# to do\n",
        ),
        _doc(
            "yaml",
            "duplicate-key",
            "warning",
            "a key repeated in a mapping (format 1 files)",
            "Only the last value of a repeated key counts. Reported for files checked against format 1, which "
            "yamllint does not see (the reference lints only format 2 and later); for the others yamllint's "
            "`key-duplicates` applies.",
            SKILL.replace("version: 3", "version: 1"),
            SKILL.replace("version: 3", "version: 1").replace(
                "created_by: octocat\n", "created_by: octocat\ncreated_by: me\n"
            ),
            options={"schema_version": "declared"},
        ),
        _doc(
            "yaml",
            "file-too-large",
            "error",
            "the file is larger than `max_file_bytes` (1,000,000 bytes)",
            "Not parsed at all; of a larger blob only the first max_file_bytes + 1 bytes are ever read. The largest "
            "real leaf is 621 KB. (Shown here with a 400-byte limit.)",
            SKILL,
            SKILL + "# " + "x" * 100 + "\n",
            options={"max_file_bytes": 400},
        ),
        _doc(
            "yaml",
            "too-many-lines",
            "error",
            "the file has more lines than `max_lines` (50,000)",
            "Not parsed. The largest real leaf has 18,486 lines. (Shown here with a 10-line limit.)",
            SKILL,
            SKILL + "\n# the end\n",
            options={"max_lines": 10},
        ),
        _doc(
            "yaml",
            "too-many-values",
            "error",
            "the file holds more than `max_values` values (20,000)",
            "Values are keys, items and texts, counted before anything is built. The largest real leaf has 3,463; "
            "checking costs about 25 microseconds a value, so the limit keeps every file within about half a "
            "second. (Shown here with a 40-value limit.)",
            SKILL,
            SKILL + "  - {question: A rhyme for bat, answer: Mat.}\n  - {question: A rhyme for cake, answer: Lake.}\n",
            options={"max_values": 40},
        ),
        _doc(
            "yaml",
            "nesting-depth",
            "error",
            "lists and mappings nested deeper than `max_depth` (64)",
            "Real leaves nest 6 levels (seed_examples, an example, questions_and_answers, a pair). Deeper files are "
            "refused before they are built, at the first collection past the limit. (Shown here with 3 levels.)",
            SKILL,
            _skill("answer: Hat.}", "answer: [[Hat.]]}"),
            options={"max_depth": 3},
        ),
        _doc(
            "yaml",
            "alias-expansion",
            "error",
            "aliases expand the file past `max_values` values, or into themselves",
            "Anchors (`&name`) and aliases (`*name`) let a few hundred bytes stand for billions of values (the "
            "'billion laughs' attack). The expanded size is computed on the parser's events, each anchor's size "
            "counted once, before anything is built; the alias that goes over the limit is reported. An alias "
            "inside the list or mapping it names expands without end. (Shown here with a 40-value limit.)",
            SKILL,
            _skill("seed_examples:\n", "seed_examples:\n  - &x {question: A rhyme for bat, answer: Mat.}\n")
            + "  - *x\n  - *x\n  - *x\n",
            options={"max_values": 40},
        ),
        _doc(
            "yaml",
            "internal",
            "error",
            "lab-ci could not check this file (a bug in lab-ci)",
            "The last-resort catch: the file is reported, never dropped. Please report it with the file.",
            SKILL,
            None,
        ),
    ]


def _yamllint() -> list[RuleDoc]:
    desc = (
        "yamllint's rule `{rule}`, run in-process with the reference's configuration "
        "(`relaxed`, line-length disabled), on files checked against format 2 or later. "
    )
    fix = "`lab-ci check --fix` fixes it where the data stays the same."
    rows = [
        (
            "trailing-spaces",
            "error",
            "spaces at the end of a line",
            _skill("created_by: octocat", "created_by: octocat  "),
            fix,
        ),
        (
            "new-line-at-end-of-file",
            "error",
            "the last line has no line break",
            SKILL.rstrip("\n"),
            fix,
        ),
        (
            "key-duplicates",
            "error",
            "a key repeated in a mapping",
            _skill("created_by: octocat\n", "created_by: octocat\ncreated_by: me\n"),
            "Only the last value would count.",
        ),
        ("empty-lines", "warning", "too many blank lines", _skill("seed_examples:\n", "\n\n\nseed_examples:\n"), fix),
        (
            "indentation",
            "warning",
            "a line indented differently from its siblings",
            SKILL,  # replaced below
            fix,
        ),
        ("colons", "warning", "spaces around a colon", _skill("created_by: octocat", "created_by:   octocat"), fix),
        (
            "hyphens",
            "warning",
            "more than one space after a hyphen",
            _skill("  - {question: A rhyme for sun", "  -   {question: A rhyme for sun"),
            fix,
        ),
        (
            "commas",
            "warning",
            "spaces around a comma",
            _skill("A rhyme for cat, answer", "A rhyme for cat , answer"),
            fix,
        ),
        (
            "braces",
            "warning",
            "spaces inside braces",
            _skill("{question: A rhyme for cat", "{   question: A rhyme for cat"),
            fix,
        ),
        (
            "brackets",
            "warning",
            "spaces inside brackets",
            _knowledge("patterns: [moon.md]", "patterns: [   moon.md]"),
            fix,
        ),
    ]
    out = []
    for rule, level, summary, failing, extra in rows:
        path = KNOWLEDGE_PATH if rule == "brackets" else SKILL_PATH
        passing = KNOWLEDGE if rule == "brackets" else SKILL
        if rule == "indentation":  # a flow mapping continued on a line indented too far
            failing = _skill(
                "{question: A rhyme for cat, answer: Hat.}", "{question: A rhyme for cat,\n      answer: Hat.}"
            )
        out.append(_doc("yamllint", rule, level, summary, desc.format(rule=rule) + extra, passing, failing, path=path))
    return out


def _schema() -> list[RuleDoc]:
    d = (
        "JSON Schema (draft 2020-12) of the leaf's format (`lab_ci/schemas/v<N>/`), keyword `{kw}`. The message "
        "names the place in plain words (seed example 3, counting from 1) and the hint what to write; the "
        "reference validator's own words are kept as `reference_message`. "
    )
    return [
        _doc(
            "schema",
            "required",
            "error",
            "a required field is missing",
            d.format(kw="required"),
            SKILL,
            SKILL.replace("created_by: octocat\n", ""),
        ),
        _doc(
            "schema",
            "type",
            "error",
            "a value of the wrong kind (a number or nothing where text belongs; a list at the top)",
            d.format(kw="type") + "Also: the file holds a list or a single value instead of a mapping of fields.",
            SKILL,
            _skill("answer: Hat.", "answer: 42"),
        ),
        _doc(
            "schema",
            "const",
            "error",
            "`version` is not the format checked against",
            d.format(kw="const"),
            SKILL,
            SKILL.replace("version: 3", "version: 2"),
        ),
        _doc(
            "schema",
            "minLength",
            "error",
            "an empty text",
            d.format(kw="minLength"),
            SKILL,
            _skill("answer: Hat.", "answer: ''"),
        ),
        _doc(
            "schema",
            "minItems",
            "error",
            "too few items (seed examples, questions and answers, patterns)",
            d.format(kw="minItems") + "The message counts what is there and what is required.",
            SKILL,
            _skill("  - {question: A rhyme for star, answer: Car.}\n", ""),
        ),
        _doc(
            "schema",
            "uniqueItems",
            "error",
            "two items of a list are the same",
            d.format(kw="uniqueItems") + "Names the two items (not their whole text) and points at the first as a "
            "related location. Checked in linear time.",
            SKILL,
            _skill("  - {question: A rhyme for star, answer: Car.}", "  - {question: A rhyme for cat, answer: Hat.}"),
            options={"disable": ("duplicate-question",)},
        ),
        _doc(
            "schema",
            "unevaluatedProperties",
            "error",
            "a field the format does not know",
            d.format(kw="unevaluatedProperties") + "Points at the first unknown key and suggests the known name for "
            "typos and common synonyms (`author` for `created_by`).",
            SKILL,
            SKILL.replace("created_by: octocat", "author: octocat\ncreated_by: octocat"),
        ),
        _doc(
            "schema",
            "old-format",
            "error",
            "a leaf written in an older format, said once",
            "A knowledge leaf in the version 1/2 shape (questions and answers straight under `seed_examples`) "
            "breaks three schema rules per seed example; seed examples carrying `attribution:` (an early format) "
            "one per example. lab-ci says it once, with what to change, and keeps the errors it stands for in the "
            "diagnostic's `covers` (the verdict is the reference's).",
            KNOWLEDGE,
            KNOWLEDGE_V2,
            path=KNOWLEDGE_PATH,
        ),
        _doc(
            "schema",
            "deprecated",
            "error",
            "knowledge leaves of format 1 or 2 are no longer read",
            "With `--schema-version declared`, a knowledge leaf declaring version 1 or 2: one error, as the "
            'reference ("Minimum supported version is 3"), with the conversion in the hint.',
            KNOWLEDGE,
            KNOWLEDGE_V2,
            path=KNOWLEDGE_PATH,
            options={"schema_version": "declared"},
        ),
        _doc(
            "schema",
            "schema-version",
            "error",
            "a declared version lab-ci has no schema for",
            "With `--schema-version declared`: versions other than 1, 2 and 3 (0, 4, `true`).",
            SKILL,
            SKILL.replace("version: 3", "version: 4"),
            options={"schema_version": "declared"},
        ),
        _doc(
            "schema",
            "version",
            "error",
            "a declared version that is no usable number",
            "With `--schema-version declared`: a version such as `.inf` (the reference crashes on it).",
            SKILL,
            SKILL.replace("version: 3", "version: .inf"),
            options={"schema_version": "declared"},
        ),
    ]


def _engine_taxonomy() -> list[RuleDoc]:
    from lab_ci.check import documents

    return [
        _doc(
            "taxonomy",
            "not-a-file",
            "error",
            "the leaf is not a regular file",
            "A `qna.yaml` that is a symbolic link (lab-ci reads git objects and follows no links), a folder, a git "
            "submodule, a fifo or device on disk (never opened), or missing beside its attribution.txt.",
            SKILL,
            SKILL,
            failing_context={"kind": "symlink"},
        ),
        _doc(
            "taxonomy",
            "file-name",
            "error",
            "a file that is no leaf was given to check",
            "Leaves are files named `qna.yaml`; another file named on the command line is reported (as the "
            "reference does).",
            SKILL,
            SKILL,
            failing_context={"path": "compositional_skills/writing/rhymes/notes.txt"},
        ),
        _doc(
            "taxonomy",
            "leaf-name",
            "error",
            "a file that looks like a leaf but is not named qna.yaml",
            "Any YAML file in a taxonomy folder (`qna.yml`, `QNA.yaml`, `movie_qna.yaml`) is a leaf its author "
            "meant: data generation would never read it. lab-ci collects it (a pull request adding only such a "
            "file is not 'nothing to check'), checks its content, and gives the `git mv` to fix the name.",
            SKILL,
            SKILL,
            failing_context={"path": "compositional_skills/writing/rhymes/qna.yml"},
        ),
        _doc(
            "taxonomy",
            documents.ID,
            documents.LEVEL,
            documents.SUMMARY,
            "With a document verifier (`lab-ci check --documents`, coming with the safe document fetcher; the "
            "bot before a preview): the repository is fetched at the commit and each pattern must match a readable "
            "file. Findings are errors on the `document:` lines, in categories, never the network's raw text. In "
            "the examples, the document repository holds a page about the Moon and none about the Sun.",
            KNOWLEDGE,
            _knowledge("patterns: [moon.md]", "patterns: [moon.md, sun.md]"),
            path=KNOWLEDGE_PATH,
        ),
    ]


def _rule_modules() -> list[RuleDoc]:
    from lab_ci.check.rules import RULES

    out = []
    for rule_id, mod in RULES.items():
        doc = (mod.__doc__ or "").strip()
        first, _, rest = doc.partition("\n")
        example = dict(getattr(mod, "EXAMPLE", {}))
        out.append(
            _doc(
                "taxonomy",
                rule_id,
                mod.LEVEL,
                mod.SUMMARY,
                _markdown(" ".join(rest.split()) if rest.strip() else first),
                mod.PASSING,
                mod.FAILING,
                **example,
            )
        )
    return out


def _markdown(text: str) -> str:
    """A module docstring's reST inline markup as Markdown (``x`` and :data:`x` -> `x`)."""
    return re.sub(r":\w+:`([^`]+)`", r"`\1`", text).replace("``", "`")


def rule_docs() -> list[RuleDoc]:
    """Every rule ``lab-ci check`` can report, by family: yaml, yamllint, schema,
    taxonomy. (yamllint's ``anchors`` and ``new-lines`` are enabled but cannot fire:
    a file with a bad alias does not parse, and line breaks are read as ``\\n``.)"""
    return list(_all())


@functools.cache
def _all() -> tuple[RuleDoc, ...]:
    return (*_yaml(), *_yamllint(), *_schema(), *_engine_taxonomy(), *_rule_modules())


def rule_doc(source: str, rule: str) -> RuleDoc | None:
    """The record of ``source/rule``, or None."""
    return next((d for d in _all() if d.source == source and d.rule == rule), None)


def rule_summary(source: str, rule: str) -> str | None:
    """The one-line summary of ``source/rule``, or None."""
    doc = rule_doc(source, rule)
    return doc.summary if doc else None
