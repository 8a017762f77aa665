"""Messages in plain words, hints, the reference's words kept, related locations, and
the older formats said once."""

from __future__ import annotations

import pytest
from checkleaf_samples import KNOWLEDGE, SKILL, leaf

from lab_ci.check import CheckOptions, check_leaf

LATEST = CheckOptions()


def diags(text: str, path: str = "compositional_skills/poems/cats/qna.yaml", options=LATEST):
    return check_leaf(leaf(text, path), options).diagnostics


def one(text: str, rule: str, path: str = "compositional_skills/poems/cats/qna.yaml", options=LATEST):
    found = [d for d in diags(text, path, options) if d.rule == rule]
    assert len(found) == 1, [(d.rule, d.message) for d in diags(text, path, options)]
    return found[0]


def test_required_names_the_place_and_says_what_to_write():
    d = one(SKILL.replace("    answer: Soft paws on the sill.\n", ""), "required")
    assert d.message == "seed example 1 has no `answer`"
    assert d.hint == "Add `answer:` with the answer you want for the question."
    assert d.reference_message == "'answer' is a required property" and d.yaml_path == ".seed_examples[0]"


def test_unique_items_names_the_two_equal_examples_not_their_text():
    text = SKILL.replace(
        "  - question: Write a couplet about a cat.\n    answer: The cat sat still, then ate its fill.\n",
        "  - question: Write a haiku about a cat.\n    answer: Soft paws on the sill.\n",
    )
    d = one(text, "uniqueItems")
    assert d.message == "seed examples 1 and 3 are the same"
    assert (d.line, d.column) == (9, 5) and [(r.line, r.column) for r in d.related] == [(5, 5)]
    assert d.reference_message.endswith("has non-unique elements") and "Remove seed example 3" in d.hint


def test_empty_values_and_numbers_where_text_belongs():
    d = one(SKILL.replace("answer: Soft paws on the sill.", "answer:"), "type")
    assert d.message == "the `answer` of seed example 1 has no value"
    assert d.reference_message == "None is not of type 'string'"
    d = one(SKILL.replace("answer: Soft paws on the sill.", "answer: 42"), "type")
    assert d.message == "the `answer` of seed example 1 is the number 42; it must be text"
    assert d.hint == 'Put it in quotes: `answer: "42"`.'


def test_unknown_fields_suggest_the_known_name():
    d = one(SKILL.replace("created_by: octocat", "author: octocat"), "unevaluatedProperties")
    assert d.message == "the file has a field the format does not know: `author`"
    assert "`author` to `created_by`" in d.hint
    d = one(SKILL.replace("task_description:", "task.description:"), "unevaluatedProperties")
    assert "`task.description` to `task_description`" in d.hint


def test_version_const_says_which_format():
    d = one(SKILL.replace("version: 3", "version: 2"), "const")
    assert d.message == "`version` is 2; this check uses format 3" and d.reference_message == "3 was expected"
    assert "--schema-version declared" in d.hint


def test_old_knowledge_format_is_said_once():
    """A version 2 knowledge leaf checked against format 3: one error saying so, in
    place of three per seed example (kept in ``covers``, with the reference's words)."""
    v2 = (
        "version: 2\ncreated_by: me\ndomain: astronomy\ntask_description: The Moon.\n"
        "document:\n  repo: https://github.com/me/docs\n  commit: " + "a" * 40 + "\n  patterns:\n    - moon.md\n"
        "seed_examples:\n" + "".join(f"  - question: Q{i}?\n    answer: A{i}.\n" for i in range(5))
    )
    result = check_leaf(leaf(v2, "knowledge/space/moon/qna.yaml"), LATEST)
    schema = [d for d in result.diagnostics if d.source == "schema"]
    assert not result.valid and [d.rule for d in schema] == ["old-format"]
    (d,) = schema
    assert d.message.startswith("this knowledge leaf is written in an older format (version 2")
    assert (d.line, d.column) == (10, 1) and "questions_and_answers" in d.hint
    covered = {(c.rule, c.yaml_path) for c in d.covers}
    assert ("required", ".seed_examples[4]") in covered and ("const", ".version") in covered
    assert ("unevaluatedProperties", ".") in covered and len(d.covers) == 3 * 5 + 3
    assert all(c.reference_message for c in d.covers)
    # A format 3 leaf with one stray question/answer example is not "old format".
    mixed = KNOWLEDGE + "  - question: Q?\n    answer: A.\n"
    assert "old-format" not in [x.rule for x in diags(mixed, "knowledge/space/moon/qna.yaml")]


def test_inline_attribution_fields_are_said_once():
    text = SKILL.replace("    answer: ", "    attribution: me\n    answer: ")
    d = one(text, "old-format")
    assert d.message.startswith("5 seed examples carry an `attribution:` field")
    assert "unevaluatedProperties" not in [x.rule for x in diags(text)] and len(d.covers) == 5


# --- YAML syntax errors: the cause kept, a plain hint ------------------------------------------

PR72_LIKE = """\
created_by: me
seed_examples:
- answer: |
    Ingredients:
      - 1 Tortilla

  Enjoy!

  question: 'Create me a recipe'
"""


def test_a_line_falling_out_of_a_block_names_the_cause():
    """As in pr/72: the parser stops two lines later; the cause is the dedented line."""
    d = one(PR72_LIKE, "syntax")
    assert (d.line, d.column) == (9, 3)
    assert [(r.line, r.column) for r in d.related] == [(7, 3)]
    assert d.message.startswith("line 7 (`Enjoy!`) is indented less than the text of the block `- answer: |` on line 3")
    assert d.hint.startswith("Indent the text of the block by 4 spaces, from line 7 on")
    assert d.reference_message == "while scanning a simple key; could not find expected ':'"


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            "seed_examples:\n- answer: | Soft paws.\n  question: q\n",
            "text follows `|` on line 2: a block of text starts on the line after `answer: |`",
            "Put `answer: |` alone on line 2 and the text on the next lines, indented by 4 spaces",
        ),
        (
            "seed_examples:\n- answer: |\n  Soft paws.\n  question: q\n",
            "line 3 (`Soft paws.`) is not indented more than the key of the block `- answer: |` on line 2",
            "Indent the text of the block by 4 spaces, from line 3 on",
        ),
        (
            "seed_examples:\n- answer: a\n  question:Is it?\n",
            "line 3 (`question:Is it?`) has no space after `question:`",
            "Put a space after the colon: `question: Is it?`.",
        ),
        (
            "seed_examples:\n- question: What is X: Y?\n  answer: a\n",
            "a `: ` inside an unquoted value starts a second key on this line",
            "Put the value in quotes",
        ),
        (
            "seed_examples:\n- question: 'What is it?\n  answer: a\n",
            "the quote opened on line 2 is never closed",
            "Close the quote",
        ),
        (
            "seed_examples:\n\t- question: q\n",
            "a tab character where YAML allows only spaces",
            "Replace the tab with spaces",
        ),
        ("a: [1, 2\nb: 3\n", "the `[` opened on line 1 is not closed where expected", "Close it with `]`"),
        ("a: *nothing\n", "the alias *nothing names no anchor defined above it", "Define the anchor"),
        ("a: !custom x\n", "the tag '!custom' on this value is not one YAML knows", "Remove the tag"),
    ],
)
def test_common_syntax_errors_get_plain_words(text, message, hint):
    found = [d for d in diags(text) if d.source == "yaml" and d.severity == "error"]
    assert len(found) == 1, found
    d = found[0]
    assert d.message.startswith(message), d.message
    assert d.hint.startswith(hint), d.hint
    assert d.reference_message  # the parser's own words


def test_yamllint_problems_keep_yamllints_words():
    d = one(SKILL.replace("created_by: octocat", "created_by: octocat   "), "trailing-spaces")
    assert d.message == "spaces at the end of this line" and d.reference_message == "trailing spaces"
    assert "--fix" in d.hint


def test_every_diagnostic_of_a_broken_leaf_has_a_hint():
    broken = (
        "version: 2\nauthor: me\nseed_examples:\n  - question: 1\n    answer:\n  - question: q\n"
        "    answer: a\n    extra: x\n  - question: q\n    answer: a\n"
    )
    found = diags(broken, "knowledge/x/qna.yaml", CheckOptions(strict=True))
    assert len(found) >= 5
    assert all(d.hint for d in found), [d for d in found if not d.hint]
