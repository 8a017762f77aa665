"""Suggested changes end to end: signed deliveries -> the real bot on loopback (webhook
app, queue, workers, the check in its limited job process) -> ONE pull request review
on the GitHub REST double, whose suggestions, committed with the double's model of the
"Commit suggestion" button, give the file ``lab-ci check --fix`` gives."""

from __future__ import annotations

from pathlib import Path

from botlib import NAME, OWNER, REPO, adapt, load_payload, pr_opened, run_git
from ghdouble import apply_suggestions

from lab_ci.bot import suggestions
from lab_ci.bot.handlers import SCHEMA_CHECK
from lab_ci.check.fix import fix_text

PR = 31
OLD = "compositional_skills/rhymes/animals/qna.yaml"  # on main, with a problem on line 2
NEW = "compositional_skills/rhymes/words/qna.yaml"  # added by the pull request
ATTRIBUTION = b"Title of work: Rhymes\nLicense of the work: CC-BY-4.0\nCreator names: Octocat\n"


def skill(created_by: str, answers: list[str]) -> str:
    words = ["cat", "dog", "sun", "tree", "star"]
    return (
        "version: 3\n"
        + f"created_by: {created_by}\n"
        + "task_description: Find a word that rhymes.\n"
        + (
            "seed_examples:\n"
            + "".join(f"  - question: A rhyme for {w}\n    answer: {a}\n" for w, a in zip(words, answers, strict=True))
        )
    )


MAIN_OLD = skill("octocat  ", ["Hat.", "Log.", "Fun.", "Bee.", "Car."])  # trailing spaces on line 2
PR_OLD = skill("octocat  ", ["Hat.", "Log.", "Fun.", "Bee.   ", "Far.\t"])  # lines 12 and 14 changed
PR_NEW = (
    "version: 3\ncreated_by: octocat  \ntask_description: Words that rhyme.\nseed_examples:\n"
    "  - question: A rhyme for cat\n    answer: Hat.\t\n"
    "  - question: A rhyme for dog\n    answer: Log.\n\n\n\n"
    "  - question: A rhyme for sun\n    answer: Fun.\n"
    "  - question: A rhyme for tree\n    answer: Bee.   \n"
    "  - {question: A rhyme for star,   answer: Car.}\n"
)


def commit(work: Path, files: dict[str, str], msg: str) -> str:
    for rel, text in files.items():
        p = work / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    run_git("add", "-A", cwd=work)
    run_git("commit", "--quiet", "-m", msg, cwd=work)
    return run_git("rev-parse", "HEAD", cwd=work)


def github_side(tmp_path: Path) -> tuple[Path, Path, str, str]:
    work = tmp_path / "contributor"
    work.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=work)
    main = commit(work, {OLD: MAIN_OLD, OLD.replace("qna.yaml", "attribution.txt"): ATTRIBUTION.decode()}, "main")
    bare = tmp_path / "github" / OWNER / f"{NAME}.git"
    bare.parent.mkdir(parents=True)
    run_git("clone", "--quiet", "--bare", str(work), str(bare))
    run_git("checkout", "--quiet", "-b", "topic", cwd=work)
    head = commit(
        work, {OLD: PR_OLD, NEW: PR_NEW, NEW.replace("qna.yaml", "attribution.txt"): ATTRIBUTION.decode()}, "rhymes"
    )
    run_git("push", "--quiet", str(bare), f"HEAD:refs/pull/{PR}/head", cwd=work)
    return work, bare, main, head


def open_pull(ghdouble, bare: Path, main: str, head: str) -> None:
    ghdouble.add_pull(REPO, PR, head_sha=head, base_sha=main)
    ghdouble.add_pull_files_from_git(REPO, PR, bare, main, head)


def live_reviews(ghdouble) -> list[dict]:
    return [r for r in ghdouble.reviews_of(REPO, PR) if not suggestions.is_outdated(r["body"])]


def blob(bare: Path, sha: str, path: str) -> str:
    return run_git("show", f"{sha}:{path}", cwd=bare) + "\n"  # run_git strips the final line break


def test_one_review_whose_suggestions_give_the_fixed_file_then_replaced_on_push(bot, ghdouble, tmp_path):
    work, bare, main, head = github_side(tmp_path)
    open_pull(ghdouble, bare, main, head)
    assert bot.deliver("pull_request", pr_opened(f"file://{bare}", PR, head, main)).status_code == 202
    jobs = bot.wait_idle()
    assert [(j["kind"], j["state"]) for j in jobs] == [("delivery", "done"), ("check", "done")]
    [run] = ghdouble.runs_named(REPO, SCHEMA_CHECK, head)
    assert run["conclusion"] == "failure"

    [review] = ghdouble.reviews_of(REPO, PR)
    assert (review["state"], review["commit_id"], review["user"]["login"]) == ("COMMENTED", head, "lab-ci[bot]")
    comments = ghdouble.comments_of_review(review["id"])
    new = [c for c in comments if c["path"] == NEW]
    old = [c for c in comments if c["path"] == OLD]
    # the added file: every fix is suggested, and committing them gives what --fix gives
    assert blob(bare, head, NEW) == PR_NEW
    assert apply_suggestions(PR_NEW, new) == fix_text(PR_NEW).text != PR_NEW
    assert any(c["start_line"] for c in new) and any(c["body"].endswith("```suggestion\n```") for c in new)
    # the modified file: lines 12 and 14 are in the diff, line 2 (unchanged, on main) is not
    assert sorted(c["line"] for c in old) == [12, 14]
    fixed_old = apply_suggestions(PR_OLD, old)
    assert fixed_old.split("\n")[1] == "created_by: octocat  " and "Bee.\n" in fixed_old and "Far.\n" in fixed_old
    assert "1 fix on lines outside this pull request's changes" in review["body"]

    # the same head again (a re-run, a redelivered event under a new id): no second review
    bot.deliver("pull_request", pr_opened(f"file://{bare}", PR, head, main))
    bot.wait_idle()
    assert len(ghdouble.reviews_of(REPO, PR)) == 1 and len(ghdouble.calls_to("POST", r"/reviews$")) == 1

    # a new push that fixes the added file by hand, except one line: the old review is
    # marked outdated and loses its suggestions; one new review on the new head
    partly = fix_text(PR_NEW).text.replace("answer: Hat.\n", "answer: Hat.  \n")
    head2 = commit(work, {NEW: partly}, "fix most")
    run_git("push", "--quiet", "--force", str(bare), f"HEAD:refs/pull/{PR}/head", cwd=work)
    ghdouble.repos[REPO].pulls[PR]["head"]["sha"] = head2
    ghdouble.add_pull_files_from_git(REPO, PR, bare, main, head2)
    sync = adapt(
        load_payload("pull_request/synchronize.payload.json"),
        clone_url=f"file://{bare}",
        number=PR,
        head_sha=head2,
        base_sha=main,
        draft=False,
    )
    sync["pull_request"]["state"] = "open"
    assert bot.deliver("pull_request", sync).status_code == 202
    bot.wait_idle()
    first, second = ghdouble.reviews_of(REPO, PR)
    assert first["id"] == review["id"] and suggestions.is_outdated(first["body"])
    assert f"`{head2[:12]}`" in first["body"] and ghdouble.comments_of_review(first["id"]) == []
    assert [second] == live_reviews(ghdouble) and second["commit_id"] == head2
    [c] = [c for c in ghdouble.comments_of_review(second["id"]) if c["path"] == NEW]
    assert apply_suggestions(partly, [c]) == fix_text(PR_NEW).text
    assert not ghdouble.calls_to("PUT", r"/dismissals$")  # a COMMENT review cannot be dismissed


def test_no_fixable_problem_no_review(bot, ghdouble, tmp_path):
    work, bare, main, _ = github_side(tmp_path)
    run_git("checkout", "--quiet", "-B", "clean", main, cwd=work)
    head = commit(work, {NEW: skill("octocat", ["Hat.", "Log.", "Fun.", "Bee.", "Car."])}, "clean")
    run_git("push", "--quiet", "--force", str(bare), f"HEAD:refs/pull/{PR}/head", cwd=work)
    open_pull(ghdouble, bare, main, head)
    bot.deliver("pull_request", pr_opened(f"file://{bare}", PR, head, main))
    bot.wait_idle()
    assert ghdouble.reviews_of(REPO, PR) == [] and not ghdouble.calls_to("GET", r"/pulls/\d+/files$")


def test_a_review_applied_then_answered_502_is_posted_once_and_a_422_fails_nothing(bot, ghdouble, tmp_path):
    work, bare, main, head = github_side(tmp_path)
    open_pull(ghdouble, bare, main, head)
    ghdouble.fail("POST", r"/pulls/\d+/reviews$", 502, apply=True)
    bot.deliver("pull_request", pr_opened(f"file://{bare}", PR, head, main))
    [check] = [j for j in bot.wait_idle() if j["kind"] == "check"]
    assert check["state"] == "done" and check["attempts"] == 2  # the failed attempt, then the retry
    assert len(ghdouble.reviews_of(REPO, PR)) == 1 and len(ghdouble.calls_to("POST", r"/reviews$")) == 1

    # GitHub refuses the review (its diff moved meanwhile): the check run stands, the job is done
    head2 = commit(work, {NEW: PR_NEW + "# more  \n"}, "more")
    run_git("push", "--quiet", "--force", str(bare), f"HEAD:refs/pull/{PR}/head", cwd=work)
    ghdouble.repos[REPO].pulls[PR]["head"]["sha"] = head2
    ghdouble.add_pull_files_from_git(REPO, PR, bare, main, head2)
    ghdouble.fail("POST", r"/pulls/\d+/reviews$", 422)
    bot.deliver("pull_request", pr_opened(f"file://{bare}", PR, head2, main))
    jobs = [j for j in bot.wait_idle() if j["kind"] == "check"]
    assert jobs[-1]["state"] == "done" and jobs[-1]["attempts"] == 1
    assert ghdouble.runs_named(REPO, SCHEMA_CHECK, head2)[0]["conclusion"] == "failure"
    assert live_reviews(ghdouble) == []  # the old head's review was retired; the new one was refused


def test_the_double_answers_review_comments_like_github(gh, ghdouble, tmp_path):
    """The review endpoints' shapes and refusals, through the bot's own client."""
    from lab_ci.bot.github import GitHubError

    work, bare, main, head = github_side(tmp_path)
    open_pull(ghdouble, bare, main, head)
    files = {f["filename"]: f for f in gh.list_pull_files(REPO, PR)}
    files_old, files_new = files[OLD], files[NEW]
    assert files_old["status"] == "modified" and files_old["patch"].startswith("@@ -9,6 +9,6 @@")
    assert files_new["status"] == "added" and files_new["patch"].startswith("@@ -0,0 +1,16 @@")

    def post(comment):
        return gh.create_review(REPO, PR, {"commit_id": head, "event": "COMMENT", "body": "b", "comments": [comment]})

    for comment, words in (
        ({"path": OLD, "line": 2, "side": "RIGHT", "body": "x"}, "must be part of the diff"),
        ({"path": OLD, "line": 12, "start_line": 12, "side": "RIGHT", "body": "x"}, "must precede the end line"),
        ({"path": "nope.yaml", "line": 1, "side": "RIGHT", "body": "x"}, "Path could not be resolved"),
    ):
        try:
            post(comment)
            raise AssertionError(f"accepted {comment}")
        except GitHubError as e:
            assert e.status == 422 and words in str(e), e
    review = post({"path": OLD, "line": 12, "start_line": 10, "start_side": "RIGHT", "side": "RIGHT", "body": "x"})
    assert review["state"] == "COMMENTED" and review["commit_id"] == head
    [c] = gh.list_review_comments(REPO, PR, review["id"])
    assert (c["start_line"], c["line"], c["side"], c["path"]) == (10, 12, "RIGHT", OLD)
    assert c["diff_hunk"].startswith("@@ -9,6 +9,6 @@") and c["diff_hunk"].endswith("+    answer: Bee.   ")
    try:
        gh._req(
            "PUT",
            f"/repos/{REPO}/pulls/{PR}/reviews/{review['id']}/dismissals",
            what="PUT dismissal",
            body={"message": "outdated", "event": "DISMISS"},
        )
        raise AssertionError("dismissed a COMMENT review")
    except GitHubError as e:
        assert e.status == 422 and "Can not dismiss a commented pull request review" in str(e)
    assert gh.update_review_body(REPO, PR, review["id"], "outdated")["body"] == "outdated"
    gh.delete_review_comment(REPO, c["id"])
    gh.delete_review_comment(REPO, c["id"])  # already gone: fine
    assert gh.list_review_comments(REPO, PR, review["id"]) == []
    assert [r["id"] for r in gh.list_reviews(REPO, PR)] == [review["id"]]


def test_a_late_job_of_an_older_head_posts_no_review(gh, ghdouble, tmp_path):
    import logging
    from types import SimpleNamespace

    from lab_ci.bot.handlers.check import suggest_fixes
    from lab_ci.bot.settings import Settings
    from lab_ci.check import CheckOptions, check_leaf
    from lab_ci.taxonomy.leaf import LeafFile
    from lab_ci.taxonomy.yamlsrc import DEFAULT_LIMITS

    work, bare, main, head = github_side(tmp_path)
    open_pull(ghdouble, bare, main, head)
    leaf = LeafFile(NEW, PR_NEW.encode())
    fix = suggestions.file_fixes(NEW, leaf.data, check_leaf(leaf, CheckOptions()).diagnostics, DEFAULT_LIMITS)
    services = SimpleNamespace(settings=Settings(), log=logging.getLogger("test"))
    ghdouble.repos[REPO].pulls[PR]["head"]["sha"] = "f" * 40  # a newer push arrived meanwhile
    assert suggest_fixes(gh, REPO, PR, head, [fix], services) == "stale"
    assert ghdouble.reviews_of(REPO, PR) == []
    ghdouble.repos[REPO].pulls[PR]["head"]["sha"] = head  # still the head: posted
    assert suggest_fixes(gh, REPO, PR, head, [fix], services) == "posted"
    assert len(ghdouble.reviews_of(REPO, PR)) == 1
