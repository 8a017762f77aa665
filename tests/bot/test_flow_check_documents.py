"""The bot checks knowledge leaves' documents before a preview: strict document rules
and the online verifier in the check's job process, through the real bot on loopback,
with the documents repository served as an operator's mirror (LAB_CI_DOCUMENT_MIRRORS)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from botlib import REPO, BotServer, github_side_with_prs, pr_opened, run_git

from lab_ci.bot.handlers import PREVIEW_CHECK, SCHEMA_CHECK

URL = "https://github.com/octocat/moon"
LEAF = "knowledge/astronomy/moon/qna.yaml"


def docs_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "moon-docs"
    repo.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    (repo / "moon.md").write_text("# The Moon\n\nThe Moon is Earth's only natural satellite.\n")
    run_git("add", "-A", cwd=repo)
    run_git("commit", "--quiet", "-m", "docs", cwd=repo)
    return repo, run_git("rev-parse", "HEAD", cwd=repo)


def leaf(commit: str, pattern: str = "moon.md") -> bytes:
    seeds = "".join(
        f"  - context: Fact {i} about the Moon.\n    questions_and_answers:\n"
        + "".join(f"      - question: Q{i}{x}\n        answer: A{x}.\n" for x in "abc")
        for i in range(1, 6)
    )
    return (
        "version: 3\ncreated_by: octocat\ndomain: astronomy\ndocument_outline: Facts about the Moon.\n"
        f"document:\n  repo: {URL}\n  commit: {commit}\n  patterns:\n    - {pattern}\nseed_examples:\n{seeds}"
    ).encode()


def pulls(tmp_path: Path, sha: str):
    files = {
        1: {LEAF: leaf(sha)},  # documents there
        2: {LEAF: leaf("0123456789abcdef0123456789abcdef01234567")},  # commit missing
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
    for n, line, words in (
        (2, 7, "could not fetch the document repository: commit not found"),
        (3, 9, "the pattern `sun.md` matches no file of the repository at commit"),
        (4, 7, "`document.commit`"),
    ):
        run = runs[n]
        assert run["conclusion"] == "failure", n
        anns = [a for a in ghdouble.annotations[run["id"]] if a["annotation_level"] == "failure"]
        assert [(a["path"], a["start_line"]) for a in anns] == [(LEAF, line)], (n, anns)
        assert words in anns[0]["message"], anns[0]["message"]
        assert not ghdouble.runs_named(REPO, PREVIEW_CHECK, heads[n])  # no preview for it


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
