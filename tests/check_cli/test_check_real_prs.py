"""Real pull requests of the community taxonomy (the corpus's ``pr/N`` branches), as a
contributor sees them: what lab-ci says about them, in plain words with the fix.

Each PR is checked the way the bot and the Action check it: the leaves it changes,
``--base pr/N^ --head pr/N``, straight from the bare mirror."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab_ci.check.api import check_taxonomy
from lab_ci.check.formats import markdown, render
from lab_ci.check.options import CheckOptions


def check(mirror: Path, pr: int, **options):
    return check_taxonomy(mirror, base=f"pr/{pr}^", head=f"pr/{pr}", options=CheckOptions(**options), use_cache=False)


def rules(f) -> list[str]:
    return [d.rule for d in f.diagnostics]


def test_pr7_old_knowledge_format_is_said_once(corpus_mirror):
    """Two knowledge leaves in the version 1/2 shape: one old-format error each, where
    the reference gives three errors per seed example."""
    report = check(corpus_mirror, 7)
    assert [f.path for f in report.files] == [
        "knowledge/technical manual/ibm rebooks/qna.yaml",
        "knowledge/textbook/history/qna.yaml",
    ]
    for f in report.files:
        assert not f.valid and rules(f).count("old-format") == 1
        assert "unevaluatedProperties" not in rules(f)
        (old,) = [d for d in f.diagnostics if d.rule == "old-format"]
        assert old.message.startswith("this knowledge leaf is written in an older format")
        assert "questions_and_answers" in old.hint and len(old.covers) >= 7
        assert {c.rule for c in old.covers} >= {"required", "unevaluatedProperties"}


@pytest.mark.parametrize(("pr", "name"), [(44, "openshiftqna.yaml"), (1254, "movie_qna.yaml")])
def test_misnamed_leaves_are_checked_not_skipped(corpus_mirror, pr, name):
    """Used to be 'Checked 0 files', exit 0."""
    report = check(corpus_mirror, pr)
    (f,) = report.files
    assert f.path.endswith("/" + name) and f.change == "added" and report.exit_code == 1
    (d,) = [d for d in f.diagnostics if d.rule == "leaf-name"]
    folder = f.path.rsplit("/", 1)[0]
    assert d.severity == "error" and f"git mv '{f.path}' '{folder}/qna.yaml'" in d.hint
    assert len(f.diagnostics) > 1  # its content is checked too
    text = render("text", report)
    assert text.splitlines()[-1].startswith("Checked 1 file: 0 valid, 1 invalid")


def test_pr72_a_syntax_error_keeps_its_cause(corpus_mirror, tmp_path):
    """The parser stops at 41:3; the cause is line 39, which falls out of the answer's
    block: named in the message, and a related location in every format."""
    report = check(corpus_mirror, 72)
    (f,) = report.files
    (d,) = [d for d in f.diagnostics if d.severity == "error"]
    assert (d.rule, d.line, d.column) == ("syntax", 41, 3)
    assert d.message.startswith(
        "line 39 (`Enjoy!`) is indented less than the text of the block `- answer: |` on line 3"
    )
    assert d.hint.startswith("Indent the text of the block by 4 spaces, from line 39 on")
    assert [(r.line, r.column) for r in d.related] == [(39, 3)]
    path = f.path
    text = render("text", report).splitlines()
    assert f"  {path}:39:3: note: the line read as a key starts here" in text
    github = render("github", report).splitlines()
    assert any(x.startswith(f"::notice file={path},line=39,col=3,title=lab-ci yaml/syntax (related)::") for x in github)
    sarif = json.loads(render("sarif", report))
    (result,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "yaml/syntax"]
    assert result["relatedLocations"][0]["physicalLocation"]["region"] == {"startLine": 39, "startColumn": 3}


def test_pr195_inline_attributions_and_a_repeated_example(corpus_mirror):
    (f,) = check(corpus_mirror, 195).files
    by_rule = {d.rule: d for d in f.diagnostics}
    assert by_rule["old-format"].message.startswith("6 seed examples carry an `attribution:` field")
    u = by_rule["uniqueItems"]
    assert u.message == "seed examples 3 and 4 are the same" and [(r.line, r.column) for r in u.related] == [(21, 5)]
    assert len(u.reference_message) <= 200 and "has non-unique elements" in u.reference_message


def test_pr712_the_markdown_report_fits_a_github_comment(corpus_mirror):
    """203 leaves with problems: 87 KB of Markdown before, over GitHub's 65,535."""
    report = check(corpus_mirror, 712)
    assert len(report.files) == 203 and report.exit_code == 1
    md = render("markdown", report)
    assert len(md) <= markdown.DEFAULT_LIMIT < markdown.GITHUB_LIMIT
    shown = md.count("(added): invalid")
    assert 0 < shown < 203
    assert "more files with problems" in md and "not shown here" in md
    assert len(json.loads(render("json", report))["files"]) == 203  # the full report keeps all


def test_pr730_a_version_2_skill(corpus_mirror):
    (f,) = check(corpus_mirror, 730).files
    (d,) = f.diagnostics
    assert d.rule == "const" and d.message == "`version` is 2; this check uses format 3"
    assert d.reference_message == "3 was expected" and "--schema-version declared" in d.hint
    (f,) = check(corpus_mirror, 730, schema_version="declared").files
    assert f.valid


def test_pr1184_a_clean_knowledge_leaf_stays_clean(corpus_mirror):
    """A real format 3 knowledge leaf (with Markdown bold **...** in its contexts): no
    diagnostic, valid, its document reference good."""
    report = check(corpus_mirror, 1184, strict=True, document_errors=True)
    (f,) = report.files
    assert f.valid and f.diagnostics == [] and report.exit_code == 0


def test_the_cli_on_a_real_pull_request(corpus_mirror, tmp_path):
    env_home = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab_ci",
            "check",
            "--taxonomy",
            str(corpus_mirror),
            "--base",
            "pr/44^",
            "--head",
            "pr/44",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env_home,
    )
    assert p.returncode == 1, p.stderr
    assert 'error [taxonomy/leaf-name] this file looks like a leaf but is named "openshiftqna.yaml"' in p.stdout
    assert "  hint: Rename it: git mv " in p.stdout
