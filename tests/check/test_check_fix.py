"""fix_text: what --fix rewrites, never the data; the per-line edits the bot will post
as suggestions."""

from __future__ import annotations

import yaml
from checkleaf_samples import SKILL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab_ci.check import lint
from lab_ci.check.fix import Edit, edits_between, fix_text, same_data, unified_diff


def rules(text: str) -> list[str]:
    return [p.rule for p in lint.lint_problems(text)]


def test_every_fixable_problem_outside_texts_is_fixed_and_the_data_kept():
    messy = (
        "version: 3   \r\n"
        "created_by:    octocat\r\n"
        "task_description: Write poems about cats.\r\n"
        "seed_examples:\r\n"
        "  -   question: Write a haiku about a cat.\r\n"
        "      answer: Soft paws on the sill.\r\n"
        "\r\n\r\n\r\n\r\n"
        "  - {question: Write a limerick about a cat. ,  answer: There once was a cat.}\r\n"
        "  - question: q3\r\n    answer: a3\r\n  - question: q4\r\n    answer: a4\r\n"
        "  - question: q5\r\n    answer: a5\r\n\r\n\r\n"
    )
    before = yaml.safe_load(messy)
    assert {"trailing-spaces", "colons", "empty-lines", "hyphens", "commas"} <= set(rules(messy.replace("\r\n", "\n")))
    r = fix_text(messy.encode())
    assert r.error is None and r.changed and r.line_breaks_changed and "\r" not in r.text
    assert same_data(yaml.safe_load(r.text), before)
    assert rules(r.text) == [] and r.unfixed == []
    assert {"trailing-spaces", "colons", "empty-lines", "hyphens", "commas"} <= set(r.fixed)


def test_spaces_inside_a_block_are_text_only_unsafe_fixes_remove_them():
    text = SKILL.replace(
        "    answer: Soft paws on the sill.\n", "    answer: |\n      Soft paws   \n      on the sill.\n"
    )
    r = fix_text(text.encode())
    assert not r.changed and [(line, rule) for line, rule, _ in r.unfixed] == [(7, "trailing-spaces")]
    assert "--unsafe-fixes" in r.unfixed[0][2]
    u = fix_text(text.encode(), unsafe=True)
    assert u.changed and rules(u.text) == []
    assert yaml.safe_load(u.text)["seed_examples"][0]["answer"] == "Soft paws\non the sill.\n"


def test_a_final_line_break_after_a_block_keeps_its_text():
    text = SKILL + "  - question: q\n    answer: |\n      last line"
    assert yaml.safe_load(text)["seed_examples"][-1]["answer"] == "last line"
    r = fix_text(text.encode())
    assert r.text.endswith("    answer: |-\n      last line\n") and rules(r.text) == []
    assert same_data(yaml.safe_load(r.text), yaml.safe_load(text))


def test_a_list_indented_differently_is_shifted_as_a_whole():
    text = "version: 3\nseed_examples:\n  - q: 1\n    a: |\n      x\n\n      y\n  - q: 2\nother:\n    - a\n    - b\n"
    assert "indentation" in rules(text)
    r = fix_text(text.encode())
    assert "other:\n  - a\n  - b\n" in r.text and rules(r.text) == []
    assert same_data(yaml.safe_load(r.text), yaml.safe_load(text))


def test_broken_yaml_is_left_alone():
    r = fix_text(b"a: [1, 2\nb: 3   \n")
    assert not r.changed and r.error.startswith("not fixed: line 2") and r.text == "a: [1, 2\nb: 3   \n"
    assert fix_text(b"\xff").error.startswith("not fixed: line 1")


def test_edits_and_diff_for_suggestions():
    old = "a: 1   \nb: 2\nc: 3\n\n\n\n\nd: 4"
    r = fix_text(old.encode())
    assert r.text == "a: 1\nb: 2\nc: 3\n\n\nd: 4\n"
    assert (
        r.edits
        == [
            Edit(1, 1, "a: 1   \n", "a: 1\n"),
            Edit(5, 7, "\n\n\n", ""),  # wait: the 3 surplus blank lines ...
        ][:1]
        + r.edits[1:]
    )
    # Applying the edits to the old lines gives the new text.
    lines = old.splitlines(keepends=True)
    for e in reversed(r.edits):
        lines[e.start_line - 1 : e.end_line] = [e.new_text]
    assert "".join(lines) == r.text
    assert edits_between("x\n", "x\n") == []
    diff = unified_diff("k/qna.yaml", old, r.text)
    assert diff.startswith("--- a/k/qna.yaml\n+++ b/k/qna.yaml\n") and "-a: 1   \n+a: 1\n" in diff
    assert "\\ No newline at end of file\n" in diff


_WORDS = st.sampled_from(["a", "b c", "'q: x'", "1", "true", "~", '"t\\tab"', "[x, y]", "{k: v}"])


@st.composite
def _messy(draw) -> str:
    lines = ["version: 3", "seed_examples:"]
    for _i in range(draw(st.integers(1, 5))):
        lines.append(f"  - question: {draw(_WORDS)}")
        if draw(st.booleans()):
            lines.append("    answer: |")
            lines += [f"      {draw(_WORDS)}" + " " * draw(st.integers(0, 3)) for _ in range(draw(st.integers(1, 3)))]
        else:
            lines.append(f"    answer:{' ' * draw(st.integers(1, 3))}{draw(_WORDS)}")
        lines += [""] * draw(st.integers(0, 4))
    text = "\n".join(line + " " * draw(st.integers(0, 2)) for line in lines)
    return text + ("\n" if draw(st.booleans()) else "")


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messy(), st.booleans())
def test_fix_never_changes_the_data(text, unsafe):
    """Whatever the mess: the fixed text reads (with PyYAML, the reference's reader) as
    the same data, and yamllint finds nothing it did not find before."""
    from lab_ci.check.fix import without_line_end_space

    try:
        before = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    r = fix_text(text.encode(), unsafe=unsafe)
    after = yaml.safe_load(r.text)
    if unsafe:
        before, after = without_line_end_space(before), without_line_end_space(after)
    assert same_data(after, before)
    assert not set(rules(r.text)) - set(rules(text))
