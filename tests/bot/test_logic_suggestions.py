"""The review of suggested changes, built from the fix API and a pull request's diff
(pure: lab_ci.bot.suggestions); applied with the "Commit suggestion" model of the
GitHub double, the suggestions give the file ``lab-ci check --fix`` gives."""

from __future__ import annotations

from ghdouble import apply_suggestions

from lab_ci.bot import suggestions as sg
from lab_ci.check.diagnostics import Diagnostic
from lab_ci.check.fix import fix_text
from lab_ci.taxonomy.yamlsrc import DEFAULT_LIMITS

HEAD = "a" * 40
MESSY = (
    "version: 3\ncreated_by: octocat  \ntask_description: Rhymes.\nseed_examples:\n"
    "    - question: A rhyme for cat\n      answer: Hat.\t\n"
    "    - question: A rhyme for dog\n      answer: Log.\n\n\n\n"
    "    - question: A rhyme for sun\n      answer: Fun.\n"
    "    - question: A rhyme for tree\n      answer: Bee.   \n"
    "    - {question: A rhyme for star,   answer: Car.}\n"
)
PATH = "compositional_skills/rhymes/qna.yaml"


def lint_diags(text: str) -> list[Diagnostic]:
    from lab_ci.check import lint

    return [
        Diagnostic(line=p.line, column=p.column, severity="error", source="yamllint", rule=p.rule, message=p.desc)
        for p in lint.lint_problems(text)
    ]


def whole_file_patch(text: str) -> str:
    lines = text.split("\n")[:-1]
    return f"@@ -0,0 +1,{len(lines)} @@\n" + "\n".join("+" + ln for ln in lines)


def fix_of(text: str) -> sg.FileFix:
    fix = sg.file_fixes(PATH, text.encode(), lint_diags(text), DEFAULT_LIMITS)
    assert fix is not None
    return sg.FileFix.from_dict(fix.to_dict())  # through the job process's JSON


def test_suggestions_on_a_new_file_give_what_fix_gives():
    review = sg.build_review(
        [fix_of(MESSY)], [{"filename": PATH, "status": "added", "patch": whole_file_patch(MESSY)}], HEAD
    )
    assert review["commit_id"] == HEAD and review["event"] == "COMMENT"
    assert (
        sg.review_head(review["body"]) == HEAD
        and "suggests 4 changes to the lines this pull request changes" in review["body"]
    )
    by_line = {c["line"]: c for c in review["comments"]}
    assert sorted(by_line) == [2, 6, 9, 16]
    assert by_line[2]["body"].endswith("```suggestion\ncreated_by: octocat\n```")
    assert "(`trailing-spaces`) on line 2" in by_line[2]["body"]
    assert (
        by_line[9]["body"]
        == "Removes an extra blank line (`empty-lines`); the data stays the same.\n\n```suggestion\n```"
    )
    multi = by_line[16]
    assert (multi["start_line"], multi["start_side"], multi["side"]) == (15, "RIGHT", "RIGHT")
    assert apply_suggestions(MESSY, review["comments"]) == fix_text(MESSY).text


def test_only_lines_inside_the_diff_are_suggested_and_the_rest_counted():
    # the diff touches lines 14-16 only (one hunk with context 13..16)
    patch = "@@ -13,4 +13,4 @@\n     - question: A rhyme for tree\n-      answer: Bee.\n+      answer: Bee.   \n-x\n+    - {question: A rhyme for star,   answer: Car.}"
    review = sg.build_review([fix_of(MESSY)], [{"filename": PATH, "status": "modified", "patch": patch}], HEAD)
    assert [(c.get("start_line"), c["line"]) for c in review["comments"]] == [(15, 16)]
    assert "3 fixes on lines outside this pull request's changes" in review["body"]
    # a range crossing a hunk's edge is not suggested either
    assert (
        sg.build_review([fix_of(MESSY)], [{"filename": PATH, "patch": "@@ -1,15 +1,15 @@"}], HEAD)["comments"][-1][
            "line"
        ]
        == 9
    )


def test_no_patch_no_fix_no_review():
    assert sg.build_review([fix_of(MESSY)], [{"filename": PATH, "status": "modified"}], HEAD)["comments"] == []
    assert sg.build_review([], [], HEAD) is None
    clean = fix_text(MESSY).text
    assert sg.file_fixes(PATH, clean.encode(), lint_diags(clean), DEFAULT_LIMITS) is None


def test_the_limit_bounds_the_review_and_the_body_counts_the_rest():
    text = "version: 3\n" + "".join(f"k{i}: v  \nj{i}: w\n" for i in range(120))
    review = sg.build_review([fix_of(text)], [{"filename": PATH, "patch": whole_file_patch(text)}], HEAD, limit=50)
    assert len(review["comments"]) == 50 and "70 more fixes over this review's limit of 50" in review["body"]


def test_backticks_in_the_text_get_a_longer_fence():
    text = "version: 3\nnote: 'use ```code``` here'  \n"
    review = sg.build_review([fix_of(text)], [{"filename": PATH, "patch": whole_file_patch(text)}], HEAD)
    [c] = review["comments"]
    assert "````suggestion\nnote: 'use ```code``` here'\n````" in c["body"]
    assert apply_suggestions(text, review["comments"]) == fix_text(text).text


def test_final_line_break_and_crlf_are_said_not_suggested():
    text = "version: 3\r\ncreated_by: me  \r\nk: v"
    review = sg.build_review([fix_of(text)], [{"filename": PATH, "patch": "@@ -0,0 +1,3 @@"}], HEAD)
    assert [(c["start_line"], c["line"]) for c in review["comments"]] == [(2, 3)]
    assert "add a line break at the end of the file" in review["body"] and "CRLF" in review["body"]


def test_plan_keeps_the_heads_review_and_retires_older_ones():
    bot = "lab-ci[bot]"

    def review(i, body, login=bot):
        return {"id": i, "body": body, "user": {"login": login}}

    old = review(1, sg.marker("b" * 40))
    outdated = review(2, sg.outdated_body("c" * 40, "b" * 40))
    forged = review(3, sg.marker(HEAD), login="mallory")  # a user quoting the marker is not the bot
    other = review(4, "LGTM")
    assert sg.plan([old, outdated, forged, other], bot, HEAD) == (None, [old])
    mine = review(5, sg.marker(HEAD))
    assert sg.plan([old, mine], bot, HEAD) == (mine, [old])
    assert sg.right_ranges("@@ -1,0 +1 @@\n@@ -5,2 +7,0 @@\n@@ -9 +10,3 @@ def") == [(1, 1), (10, 12)]


def test_a_hostile_path_cannot_break_out_of_its_code_span():
    path = "compositional_skills/x`@maintainers [a](https://evil)/qna.yaml"
    text = "version: 3\r\nk: v  \r\n"
    fix = sg.FileFix(path, tuple(), (), line_breaks_changed=True)
    body = sg.build_review([fix], [{"filename": path, "patch": "@@ -0,0 +1,2 @@"}], HEAD)["body"]
    assert "`` compositional_skills/x`@maintainers [a](https://evil)/qna.yaml ``: CRLF" in body
    assert sg.file_fixes(path, text.encode(), lint_diags(text), DEFAULT_LIMITS).line_breaks_changed


def test_a_last_line_of_spaces_without_a_line_break_is_deleted_by_an_empty_suggestion():
    # the shape of corpus pr/174: the file ends in "\n    " (a last line of spaces only)
    text = "version: 3\ntask_description: | \n    Support exceptions.\n    "
    review = sg.build_review([fix_of(text)], [{"filename": PATH, "patch": "@@ -0,0 +1,4 @@"}], HEAD)
    assert [(c["line"], c["body"].endswith("```suggestion\n```")) for c in review["comments"]] == [
        (2, False),
        (4, True),
    ]
    assert "line break at the end" not in review["body"]  # deleting the line leaves line 3's break
    assert apply_suggestions(text, review["comments"]) == fix_text(text).text == text[:-4].replace("| \n", "|\n")
