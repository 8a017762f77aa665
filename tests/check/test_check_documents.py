"""Document references checked at check time (document-repo, -commit, -patterns): warnings
by default (the reference's verdicts), errors with ``--strict`` or
``CheckOptions(document_errors=True)``; and the seam for the online check."""

from __future__ import annotations

import pytest
from checkleaf_samples import KNOWLEDGE, leaf

from lab_ci.check import CheckOptions, check_leaf
from lab_ci.check.documents import DocumentFinding, DocumentRef

PATH = "knowledge/space/moon/qna.yaml"
SHA = "0123456789abcdef0123456789abcdef01234567"
GOOD = KNOWLEDGE.replace("repo: https://github.com/octocat/moon-docs", "repo: https://github.com/me/moon-docs")


DEFAULT = CheckOptions()


def doc_diags(text: str, options=DEFAULT):
    result = check_leaf(leaf(text, PATH), options)
    return result, [d for d in result.diagnostics if d.rule.startswith("document-")]


def test_a_good_reference_passes():
    result, found = doc_diags(GOOD)
    assert result.valid and found == [] and result.diagnostics == []


@pytest.mark.parametrize(
    ("old", "new", "rule", "message", "hint"),
    [
        (
            "commit: " + SHA,
            "commit: main",
            "document-commit",
            "`document.commit` is `main`, a branch or tag name",
            "git ls-remote https://github.com/me/moon-docs main",
        ),
        (
            "commit: " + SHA,
            "commit: HEAD",
            "document-commit",
            "`document.commit` is `HEAD`, a branch or tag name",
            "git ls-remote",
        ),
        (
            "commit: " + SHA,
            "commit: b60d0d0",
            "document-commit",
            "`document.commit` is the short SHA `b60d0d0`",
            "git rev-parse b60d0d0",
        ),
        (
            "commit: " + SHA,
            "commit: tbd later",
            "document-commit",
            "`document.commit` is `tbd later`, not a commit SHA",
            "full 40-character SHA",
        ),
        (
            "repo: https://github.com/me/moon-docs",
            "repo: git@github.com:me/moon-docs.git",
            "document-repo",
            "the SSH address",
            "Write `repo: https://github.com/me/moon-docs`.",
        ),
        (
            "repo: https://github.com/me/moon-docs",
            "repo: http://github.com/me/moon-docs",
            "document-repo",
            "plain http",
            "Write `repo: https://github.com/me/moon-docs`.",
        ),
        (
            "repo: https://github.com/me/moon-docs",
            "repo: github.com/me/moon-docs",
            "document-repo",
            "has no scheme",
            "`repo: https://github.com/me/moon-docs`",
        ),
        (
            "repo: https://github.com/me/moon-docs",
            "repo: https://www.google.com",
            "document-repo",
            "not a code host lab-ci knows",
            "git repository",
        ),
        (
            "repo: https://github.com/me/moon-docs",
            "repo: https://127.0.0.1/x.git",
            "document-repo",
            "not at a code host",
            "public git repository",
        ),
        (
            "repo: https://github.com/me/moon-docs",
            "repo: https://github.com/me/moon-docs/blob/main/moon.md",
            "document-repo",
            "inside a repository",
            "Write `repo: https://github.com/me/moon-docs`",
        ),
        (
            "repo: https://github.com/me/moon-docs",
            "repo: https://user:secret@github.com/me/moon-docs",
            "document-repo",
            "user name or password",
            "Remove the credentials",
        ),
        (
            "- moon.md",
            "- /home/me/moon.md",
            "document-patterns",
            "is not a path inside the repository",
            "relative to the repository",
        ),
        (
            "- moon.md",
            "- ../moon.md",
            "document-patterns",
            "is not a path inside the repository",
            "relative to the repository",
        ),
        ("- moon.md", "- '  '", "document-patterns", "is blank", "file pattern"),
    ],
)
def test_bad_references_are_warnings_with_the_fix(old, new, rule, message, hint):
    text = GOOD.replace(old, new)
    assert text != GOOD
    result, found = doc_diags(text)
    assert [d.rule for d in found] == [rule]
    (d,) = found
    assert result.valid and d.severity == "warning"  # the reference's verdict, by default
    assert message in d.message and hint in d.hint, (d.message, d.hint)
    key = {"document-commit": "commit:", "document-repo": "repo:", "document-patterns": "- "}[rule]
    assert text.split("\n")[d.line - 1].lstrip().startswith(key)  # on the document: line
    # errors for the bot (document_errors) and with --strict
    for options in (CheckOptions(document_errors=True), CheckOptions(strict=True)):
        result, (d,) = doc_diags(text, options)
        assert not result.valid and d.severity == "error"


def test_skill_leaves_and_missing_fields_are_left_to_the_schema():
    result, found = doc_diags(GOOD.replace("  commit: " + SHA + "\n", ""))
    assert found == [] and not result.valid  # 'required' says it


class _Verifier:
    """A verifier as the document fetcher will be one: a repository it knows by heart."""

    def __init__(self):
        self.seen: list[DocumentRef] = []

    def verify(self, ref: DocumentRef) -> list[DocumentFinding]:
        self.seen.append(ref)
        if ref.commit != SHA:
            return [DocumentFinding("commit", "the commit is not in the repository", "Write an existing commit.")]
        return [
            DocumentFinding("patterns", f"`{p}` matches no file", "Check the file name.", index=i)
            for i, p in enumerate(ref.patterns)
            if p != "moon.md"
        ]


def test_the_online_seam_reports_findings_on_the_document_lines():
    from lab_ci.check import check_leaves

    verifier = _Verifier()
    other = "f" * 40
    texts = [GOOD, GOOD.replace("- moon.md", "- moon.md\n    - sun.md"), GOOD.replace(SHA, other)]
    report = check_leaves([leaf(t, PATH) for t in texts], CheckOptions(), documents=verifier)
    assert [r.commit for r in verifier.seen] == [SHA, SHA, other]
    ok, pattern, commit = report.files
    assert ok.valid and ok.diagnostics == []
    (d,) = pattern.diagnostics
    assert d.rule == "document-fetch" and d.severity == "error" and d.yaml_path == ".document.patterns[1]"
    assert texts[1].split("\n")[d.line - 1].strip() == "- sun.md"
    (d,) = commit.diagnostics
    assert d.yaml_path == ".document.commit" and texts[2].split("\n")[d.line - 1].strip().startswith("commit:")
    # A leaf the static rules already fault is not fetched.
    check_leaves([leaf(GOOD.replace(SHA, "main"), PATH)], CheckOptions(), documents=verifier)
    assert len(verifier.seen) == 3


def test_a_failing_verifier_is_an_error_on_the_leaf_not_a_crash():
    class Broken:
        def verify(self, ref):
            raise TimeoutError("connect to 10.0.0.1:443 timed out")

    result = check_leaf(leaf(GOOD, PATH), CheckOptions(), documents=Broken())
    (d,) = result.diagnostics
    assert d.rule == "document-fetch" and not result.valid and "10.0.0.1" not in d.message
