"""Plain-words messages and hints for JSON Schema errors and yamllint problems.

The reference validator shows jsonschema's and yamllint's own words ("'version' is a
required property", "Unevaluated properties are not allowed ('question', 'answer'
were unexpected)", "Value must have at least 5 items"). A contributor needs to know
*which* field, *what* was found and *what to write instead*. Every diagnostic gets:

- ``message``: one sentence naming the place in the leaf (``seed example 3``, not
  ``.seed_examples[2]``; numbers count from 1) and what was found;
- ``hint``: what to change, with the text to write where there is one;
- ``reference_message``: the reference's exact words, for the differential test and
  for anyone who knows them.

One more thing the reference cannot say: a knowledge leaf written in the older format
(version 1 or 2: question/answer pairs straight under ``seed_examples``) is three
errors per seed example to it. :func:`fold_old_format` says it once
(``schema/old-format``) and keeps the errors it stands for in ``covers``.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from typing import Any

from lab_ci.check.diagnostics import Covered, Diagnostic

#: What to write for each field of a qna.yaml, as a hint's sentence.
FIELD_HINTS: dict[str, str] = {
    "version": "Add `version: 3` as the first line (3 is the current format).",
    "created_by": "Add `created_by: <your GitHub user name>`.",
    "task_description": "Add `task_description:` with one sentence saying what the skill teaches; "
    "the teacher model reads it.",
    "domain": "Add `domain:` with the subject area, like a book chapter title (`domain: astronomy`).",
    "document_outline": "Add `document_outline:` with a short summary of what the documents cover.",
    "document": "Add `document:` with `repo:` (the https URL of the repository holding the documents), "
    "`commit:` (a full 40-character commit SHA) and `patterns:` (a list of file patterns such as `*.md`).",
    "seed_examples": "Add `seed_examples:` with at least 5 examples (skills: `question` and `answer`; "
    "knowledge: `context` and `questions_and_answers`).",
    "question": "Add `question:` with the question the example asks.",
    "answer": "Add `answer:` with the answer you want for the question.",
    "context": "Add `context:` with a passage copied from the documents (about 500 tokens at most).",
    "questions_and_answers": "Add `questions_and_answers:` with 3 `question:`/`answer:` pairs about the context.",
    "repo": "Add `repo:` with the https URL of the git repository holding the documents.",
    "commit": "Add `commit:` with the full 40-character SHA of the commit to read the documents from.",
    "patterns": "Add `patterns:` with a list of file patterns in that repository, such as `- docs/*.md`.",
}

#: What one item of each list is called.
ITEM_NOUNS: dict[str, tuple[str, str]] = {
    "seed_examples": ("seed example", "seed examples"),
    "questions_and_answers": ("question-and-answer pair", "question-and-answer pairs"),
    "patterns": ("file pattern", "file patterns"),
}


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def place(path) -> str:
    """A JSON path (keys and indexes) in plain words: ``("seed_examples", 2, "answer")``
    is "the `answer` of seed example 3"; numbers count from 1."""
    path = list(path)
    if not path:
        return "the file"
    parts: list[str] = []
    i = 0
    while i < len(path):
        key = path[i]
        nxt = path[i + 1] if i + 1 < len(path) else None
        if isinstance(key, str) and isinstance(nxt, int):
            one = ITEM_NOUNS.get(key, (f"item of `{key}`", ""))[0]
            parts.append(f"{one} {nxt + 1}")
            i += 2
        elif isinstance(key, int):
            parts.append(f"item {key + 1}")
            i += 1
        else:
            parts.append(f"`{key}`")
            i += 1
    if len(parts) == 1:
        return parts[0]
    # innermost first: "the `answer` of question-and-answer pair 2 of seed example 3"
    head, rest = parts[-1], parts[-2::-1]
    if head.startswith("`"):
        head = "the " + head
    return head + " of " + " of ".join(rest)


def _cap(text: str) -> str:
    """Messages start in lower case, like yamllint's; kept as one place to change that."""
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping (`key: value` entries)"
    if isinstance(value, list):
        return _plural(len(value), "a list of one item", "a list of items").replace("1 a list", "a list")
    return f"a {type(value).__name__} value"


def _field(path) -> str | None:
    return next((p for p in reversed(list(path)) if isinstance(p, str)), None)


#: Names contributors use for a known field.
SYNONYMS: dict[str, str] = {
    "author": "created_by",
    "creator": "created_by",
    "github": "created_by",
    "createdby": "created_by",
    "description": "task_description",
    "task": "task_description",
    "examples": "seed_examples",
    "seed_example": "seed_examples",
    "seeds": "seed_examples",
    "outline": "document_outline",
    "documents": "document",
    "docs": "document",
    "questions": "questions_and_answers",
    "qna": "questions_and_answers",
    "q_and_a": "questions_and_answers",
    "input": "context",
    "prompt": "question",
    "q": "question",
    "response": "answer",
    "output": "answer",
    "a": "answer",
}

_QUOTED = re.compile(r"^'(?P<key>.*)' is a required property$")

_TYPE_WORDS = {"string": "text", "array": "a list", "object": "a mapping", "integer": "a whole number"}


def schema_words(error, schema_name: str) -> tuple[str, str]:
    """``(message, hint)`` for a jsonschema ``ValidationError``."""
    path = list(error.absolute_path)
    where = place(path)
    kw = error.validator
    inst = error.instance
    field = _field(path)
    if kw == "required":
        m = _QUOTED.match(error.message)
        key = m.group("key") if m else str(error.message)
        return (
            f"{_cap(where)} has no `{key}`",
            FIELD_HINTS.get(key, f"Add `{key}:` here."),
        )
    if kw == "unevaluatedProperties":
        known = set(error.schema.get("properties", {}))
        if error.schema.get("$ref", "").endswith("version.json"):
            known.add("version")
        extra = [k for k in inst if k not in known] if isinstance(inst, Mapping) else []
        names = ", ".join(f"`{k}`" for k in extra[:6]) + (" ..." if len(extra) > 6 else "")
        message = f"{_cap(where)} has {'a field' if len(extra) == 1 else 'fields'} the format does not know: {names}"
        return message, _unknown_fields_hint(extra, known, path, schema_name)
    if kw == "minItems":
        n, need = (len(inst) if isinstance(inst, list) else 0), error.validator_value
        one, many = ITEM_NOUNS.get(field or "", ("item", "items"))
        return (
            f"{_cap(where)} has {_plural(n, one, many)}; at least {need} are required",
            f"Add {_plural(need - n, 'more ' + one, 'more ' + many)}.",
        )
    if kw == "minLength":
        return f"{_cap(where)} is empty", _write_hint(field)
    if kw == "type":
        return _type_words(where, field, inst, error.validator_value)
    if kw == "const":
        if field == "version":
            return (
                f"`version` is {inst!r}; this check uses format {error.validator_value}",
                f"Set `version: {error.validator_value}` and follow format {error.validator_value} "
                "(or check with `--schema-version declared` to use the version the file declares).",
            )
        return f"{_cap(where)} must be {error.validator_value!r}, not {inst!r}", f"Write {error.validator_value!r}."
    if kw == "uniqueItems":
        i, j = getattr(error, "duplicate", (None, None))
        one, many = ITEM_NOUNS.get(field or "", ("item", "items"))
        if i is None:
            return f"{_cap(where)} has items that are the same", "Remove the repeated items or make them different."
        inner = f" of {place(path[:-1])}" if len(path) > 1 else ""
        return (
            f"{_cap(many)} {i + 1} and {j + 1}{inner} are the same",
            f"Remove {one} {j + 1} or make it different; a repeated example adds nothing for the teacher.",
        )
    if kw == "enum":
        return f"{_cap(where)} is {inst!r}; it must be one of {error.validator_value!r}", "Write one of those values."
    return f"{_cap(where)}: {error.message[:200]}", "Change the value to what the format asks for."


def _write_hint(field: str | None) -> str:
    if field in FIELD_HINTS:
        return "Write it: " + FIELD_HINTS[field].removeprefix("Add ").rstrip(".") + "."
    return f"Write a value after `{field}:`, or remove the line if the field is optional." if field else "Fill it in."


def _type_words(where: str, field: str | None, inst: Any, expected) -> tuple[str, str]:
    want = expected if isinstance(expected, str) else (expected[0] if expected else "")
    want_words = _TYPE_WORDS.get(want, want)
    if inst is None:
        return f"{_cap(where)} has no value", _write_hint(field)
    found = _kind(inst)
    message = f"{_cap(where)} is {found}; it must be {want_words}"
    if want == "string":
        if isinstance(inst, bool):
            return (
                message,
                f'Put it in quotes (`{field}: "{str(inst).lower()}"`): YAML reads yes/no/true/false as booleans.',
            )
        if isinstance(inst, (int, float)):
            return message, f'Put it in quotes: `{field}: "{inst}"`.'
        if isinstance(inst, list):
            return message, (
                f"Write `{field}` as one text; for several lines use a block: `{field}: |` with the lines "
                "below it, indented."
            )
        if isinstance(inst, Mapping):
            return message, (
                "A `: ` inside an unquoted value makes YAML read a key: put the value in quotes, "
                f"or write it as a block (`{field}: |` and the text on the next lines)."
            )
        return message, f'Put the value in quotes: `{field}: "..."`.'
    if want == "array":
        return message, f"Write `{field}` as a list: one item per line, each starting with `- `."
    if want == "object":
        return message, "Write it as `key: value` lines (for a seed example: `question:` and `answer:`)."
    if want == "integer" and field == "version":
        return message, "Write `version: 3`, without quotes."
    return message, f"Write {want_words} here."


@functools.lru_cache(maxsize=1024)
def _known_name(key: str, known: frozenset[str]) -> str | None:
    """The known field ``key`` most likely stands for (a typo, another spelling, a
    synonym), or None. Cached: the same wrong names come back file after file."""
    norm = key.replace(".", "_").replace("-", "_").replace(" ", "_").lower()
    close = difflib.get_close_matches(norm, sorted(known), n=1, cutoff=0.7)
    target = close[0] if close else SYNONYMS.get(norm) or SYNONYMS.get(norm.replace("_", ""))
    return target if target in known else None


def _unknown_fields_hint(extra: list, known: set[str], path, schema_name: str) -> str:
    keys = [str(k) for k in extra]
    if not path and schema_name == "knowledge" and "task_description" in keys:
        return (
            "Knowledge leaves of format 3 describe their documents in `document_outline` instead of "
            "`task_description`: rename it."
        )
    credits = (
        "Credits go into attribution.txt beside qna.yaml: move the `attribution:` text there and delete the field"
        if "attribution" in keys
        else ""
    )
    keys = [k for k in keys if k != "attribution"]
    if credits and not keys:
        return credits + "."
    fixes = []
    for k in keys:
        target = _known_name(k, frozenset(known))
        if target is not None:
            fixes.append(f"`{k}` to `{target}`")
    if fixes:
        return (credits + "; " if credits else "") + "Rename " + ", ".join(fixes) + "."
    if path and schema_name == "compositional_skills" and "questions_and_answers" in keys:
        return (
            "This is a skill leaf (it sits under compositional_skills/): each seed example has `question`, "
            "`answer` and, for grounded skills, `context`; knowledge leaves belong under knowledge/."
        )
    top_level = {"version", "created_by", "task_description", "domain", "document", "document_outline"}
    if path and any(k in top_level for k in keys):
        return "A top-level field is indented into a seed example: move it back to the start of the line."
    allowed = ", ".join(f"`{k}`" for k in sorted(known))
    names = ", ".join(f"`{k}`" for k in keys[:6])
    rest = f"Remove {names} (or indent it under the field it belongs to); the fields here are {allowed}."
    return (credits + "; " + rest[0].lower() + rest[1:]) if credits else rest


# -- the older knowledge format -------------------------------------------------------------


def _old_shape_examples(data: Mapping) -> list[int]:
    seeds = data.get("seed_examples")
    if not isinstance(seeds, list):
        return []
    return [
        i
        for i, ex in enumerate(seeds)
        if isinstance(ex, Mapping) and ("question" in ex or "answer" in ex) and "questions_and_answers" not in ex
    ]


def fold_old_format(
    diags: list[Diagnostic], data: Mapping, schema_name: str, seed_line: tuple[int, int]
) -> list[Diagnostic]:
    """One ``schema/old-format`` error for a leaf written in an older format, in place
    of the schema errors that format causes (kept in its ``covers``): a knowledge leaf
    in the version 1/2 shape (question/answer pairs straight under ``seed_examples``),
    or seed examples that carry their own ``attribution:`` (credits now live in
    attribution.txt)."""
    old = _old_shape_examples(data) if schema_name == "knowledge" else []
    seeds = data.get("seed_examples")
    if old and isinstance(seeds, list) and len(old) * 2 >= len(seeds):
        return _fold(
            diags, seed_line, _explained_by_v2_shape({f".seed_examples[{i}]" for i in old}), _v2_summary(data, old)
        )
    inline = [
        i
        for i, ex in enumerate(seeds if isinstance(seeds, list) else [])
        if isinstance(ex, Mapping) and "attribution" in ex
    ]
    if len(inline) >= 2:
        paths = {f".seed_examples[{i}]" for i in inline} | {"."}

        def explained(d: Diagnostic) -> bool:
            return d.rule == "unevaluatedProperties" and d.yaml_path in paths and d.message.endswith(": `attribution`")

        summary = (
            f"{_plural(len(inline), 'seed example carries', 'seed examples carry')} an `attribution:` field, "
            "an early format; credits now live in attribution.txt beside qna.yaml",
            "Move the credits into attribution.txt (`Title of work:`, `Link to work:`, `License of the work:`, "
            "`Creator names:`) and delete the `attribution:` lines from the seed examples.",
        )
        return _fold(diags, seed_line, explained, summary)
    return diags


def _explained_by_v2_shape(old_paths: set[str]):
    def explained(d: Diagnostic) -> bool:
        if d.source != "schema":
            return False
        if d.yaml_path in old_paths and d.rule in ("required", "unevaluatedProperties"):
            return d.rule == "unevaluatedProperties" or d.message.endswith(("`context`", "`questions_and_answers`"))
        if d.yaml_path == "." and d.rule == "unevaluatedProperties" and d.message.endswith(": `task_description`"):
            return True
        if d.yaml_path == "." and d.rule == "required" and d.message.endswith("`document_outline`"):
            return True
        return d.yaml_path == ".version" and d.rule == "const"

    return explained


def _v2_summary(data: Mapping, old: list[int]) -> tuple[str, str]:
    declared = data.get("version")
    which = f"version {declared}" if declared in (1, 2) else "version 1 or 2"
    return (
        f"this knowledge leaf is written in an older format ({which}: "
        f"{_plural(len(old), 'seed example holds', 'seed examples hold')} a question and answer straight under "
        "`seed_examples`); format 3 groups questions under a passage of the document",
        "Convert it to format 3: `version: 3`; `document_outline:` instead of `task_description:`; at least 5 "
        "seed examples, each with `context:` (a passage from the document) and `questions_and_answers:` "
        "(3 `question:`/`answer:` pairs about that passage).",
    )


def _fold(diags: list[Diagnostic], at: tuple[int, int], explained, words: tuple[str, str]) -> list[Diagnostic]:
    folded = [d for d in diags if explained(d)]
    if not folded:
        return diags
    message, hint = words
    summary = Diagnostic(
        "error",
        "schema",
        "old-format",
        message,
        at[0],
        at[1],
        ".seed_examples",
        hint=hint,
        covers=tuple(Covered(d.rule, d.yaml_path, d.line, d.column, d.reference_message) for d in folded),
    )
    return [summary] + [d for d in diags if not explained(d)]


# -- yamllint -------------------------------------------------------------------------------

_INDENT = re.compile(r"wrong indentation: expected (?P<exp>(?:at least )?\d+) but found (?P<found>\d+)")
_BLANKS = re.compile(r"too many blank lines \((?P<n>\d+) > (?P<max>\d+)\)")
_DUPKEY = re.compile(r'duplication of key "(?P<key>.*)" in mapping')


def yamllint_words(rule: str, desc: str, line: int, last_line: int) -> tuple[str, str]:
    """``(message, hint)`` for a yamllint problem (``desc`` is yamllint's own text)."""
    fix = " (`lab-ci check --fix` does it)"
    if rule == "trailing-spaces":
        return "spaces at the end of this line", "Delete the spaces after the last character" + fix + "."
    if rule == "new-line-at-end-of-file":
        return "the last line does not end with a line break", "End the file with a line break" + fix + "."
    if rule == "new-lines":
        return "this line ends with a Windows line break (CRLF)", "Save the file with Unix line breaks (LF)" + fix + "."
    if (m := _BLANKS.match(desc)) is not None:
        n, most = int(m.group("n")), int(m.group("max"))
        if line >= last_line:
            return (
                f"{_plural(n, 'blank line', 'blank lines')} at the end of the file",
                "Delete the blank lines at the end" + fix + ".",
            )
        return (
            f"{n} blank lines in a row; at most {most} are allowed here",
            f"Delete {_plural(n - most, 'blank line', 'blank lines')}" + fix + ".",
        )
    if (m := _INDENT.match(desc)) is not None:
        exp, found = m.group("exp"), m.group("found")
        return (
            f"this line is indented by {found} spaces where {exp} are expected",
            f"Indent it by {exp.replace('at least ', 'at least ')} spaces, like the lines at the same level"
            + (fix if "at least" not in exp else "")
            + ".",
        )
    if (m := _DUPKEY.match(desc)) is not None:
        key = m.group("key")
        return (
            f"`{key}` appears twice in this mapping; only the last value would count",
            f"Remove one `{key}` or rename it; to write two examples, start each with `- `.",
        )
    if rule == "colons":
        where = "before" if "before" in desc else "after"
        return (
            f"{desc} on this line",
            f"Leave {'no space' if where == 'before' else 'one space'} {where} the colon" + fix + ".",
        )
    if rule == "hyphens":
        return "more than one space after `-` on this line", "Leave one space after the `-`" + fix + "."
    if rule in ("commas", "braces", "brackets"):
        return f"{desc} on this line", "Use one space after a comma and none inside brackets and braces" + fix + "."
    if rule == "anchors":
        return desc, "Define the anchor (&name) before its alias (*name), or write the value out."
    return desc, f"See yamllint's `{rule}` rule."


def yamllint_diagnostic(p, last_line: int) -> Diagnostic:
    """A yamllint ``LintProblem`` as a diagnostic (source ``yamllint``)."""
    level = "error" if p.level == "error" else "warning"
    rule = p.rule or "syntax"
    message, hint = yamllint_words(rule, p.desc, p.line, last_line)
    return Diagnostic(level, "yamllint", rule, message, p.line, p.column, hint=hint, reference_message=p.desc)
