"""The bot checks knowledge leaves' documents before a preview: strict document rules
and the online verifier in the check's job process, through the real bot on loopback,
with the documents repository served as an operator's mirror (LAB_CI_DOCUMENT_MIRRORS)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from botlib import REPO, BotServer, github_side_with_prs, pr_comment, pr_opened, run_git

from lab_ci.bot.handlers import PREVIEW_CHECK, SCHEMA_CHECK
from lab_ci.check.rules.examples import KNOWLEDGE
from labtest import commit_all, write_file

EXAMPLE_SHA = "0123456789abcdef0123456789abcdef01234567"

URL = "https://github.com/octocat/moon"
LEAF = "knowledge/astronomy/moon/qna.yaml"


def docs_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "moon-docs"
    write_file(repo, "moon.md", b"# The Moon\n\nThe Moon is Earth's only natural satellite.\n")
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    return repo, commit_all(repo, "docs")


def leaf(commit: str, pattern: str = "moon.md") -> bytes:
    """The rule catalog's knowledge leaf (``document:`` on line 5) with this commit and pattern."""
    return KNOWLEDGE.replace(EXAMPLE_SHA, commit).replace("patterns: [moon.md]", f"patterns: [{pattern}]").encode()


def pulls(tmp_path: Path, sha: str):
    files = {
        1: {LEAF: leaf(sha)},  # documents there
        2: {LEAF: leaf("89abcdef0123456789abcdef0123456789abcdef")},  # commit missing
        3: {LEAF: leaf(sha, "sun.md")},  # pattern matches nothing
        4: {LEAF: leaf("main")},  # not a SHA: a static rule, an error in the bot
    }
    for f in files.values():
        f["knowledge/astronomy/moon/attribution.txt"] = b"Title of work: Moon\n"
    return github_side_with_prs(tmp_path / "gh", files)


def run_all(server, ghdouble, bare, main, heads):
    for n, head in heads.items():
        ghdouble.add_pull(REPO, n, head_sha=head, base_sha=main)
        assert server.deliver("pull_request", pr_opened(f"file://{bare}", n, head, main)).status_code == 202
    server.wait_idle()
    return {n: ghdouble.runs_named(REPO, SCHEMA_CHECK, head)[0] for n, head in heads.items()}


def test_a_leaf_whose_documents_cannot_be_fetched_fails_its_check_and_gets_no_preview(
    bot, ghdouble, tmp_path, monkeypatch
):
    docs, sha = docs_repo(tmp_path)
    monkeypatch.setenv("LAB_CI_DOCUMENT_MIRRORS", f"{URL}={docs}")
    bare, main, heads = pulls(tmp_path, sha)
    runs = run_all(bot, ghdouble, bare, main, heads)
    assert runs[1]["conclusion"] == "success"
    assert ghdouble.runs_named(REPO, PREVIEW_CHECK, heads[1])  # asked for its preview
    line5 = leaf(sha, "sun.md").decode().split("\n")[4]
    commit_col, pattern_col = line5.index(sha) + 1, line5.index("sun.md") + 1  # where the values are
    for n, col, words in (
        (2, commit_col, "could not fetch the document repository: commit not found"),
        (3, pattern_col, "the pattern `sun.md` matches no file of the repository at commit"),
        (4, commit_col, "`document.commit`"),
    ):
        run = runs[n]
        assert run["conclusion"] == "failure", n
        anns = [a for a in ghdouble.annotations[run["id"]] if a["annotation_level"] == "failure"]
        assert [(a["path"], a["start_line"], a.get("start_column")) for a in anns] == [(LEAF, 5, col)], (n, anns)
        assert words in anns[0]["message"], anns[0]["message"]
        assert not ghdouble.runs_named(REPO, PREVIEW_CHECK, heads[n])  # no preview for it
    # asked for by hand, the preview of a commit whose check failed is not generated either
    bot.deliver("issue_comment", pr_comment(f"file://{bare}", 2, "/lab preview", "contributor", cid=77))
    bot.wait_idle()
    [prev] = ghdouble.runs_named(REPO, PREVIEW_CHECK, heads[2])
    assert (
        prev["conclusion"] == "skipped" and prev["output"]["title"] == "Not previewed: the check of this commit failed"
    )


def test_the_online_part_can_be_turned_off(bot_settings, ghdouble, tmp_path, monkeypatch):
    docs, sha = docs_repo(tmp_path)
    monkeypatch.setenv("LAB_CI_DOCUMENT_MIRRORS", f"{URL}={docs}")
    bare, main, heads = pulls(tmp_path, sha)
    server = BotServer(replace(bot_settings, check_documents=False)).start()
    try:
        runs = run_all(server, ghdouble, bare, main, {2: heads[2], 4: heads[4]})
    finally:
        server.stop()
    assert runs[2]["conclusion"] == "success"  # the missing commit is not looked for
    assert runs[4]["conclusion"] == "failure"  # the offline rules still are errors
