"""Suggested changes: the fixes ``lab-ci check --fix`` would make, as ONE pull request
review whose comments are GitHub ``suggestion`` blocks (pure: no I/O).

The job process computes the fixes (:func:`file_fixes`: :func:`lab_ci.check.fix.fix_text`
on the pull request's blob, kept only when the data is identical before and after).
:func:`build_review` turns them into the body of ``POST /repos/{o}/{r}/pulls/{n}/reviews``:

- one review comment per changed line range, on the head commit's lines (``side:
  RIGHT``; a range of several lines uses ``start_line``/``line``), whose body holds the
  replacement in a ```` ```suggestion ```` block (a longer fence when the text holds
  backticks); an empty block deletes the lines;
- only on lines inside the pull request's diff: GitHub refuses a review comment
  elsewhere, and a range must lie in one hunk of the file's ``patch`` (from
  ``GET .../pulls/{n}/files``; a file without a ``patch``, e.g. a very large diff, gets
  none). Fixes outside the diff are counted in the review's body, never suggested;
- at most ``limit`` suggestions; the rest are counted in the body, with the command
  that makes them all;
- what a suggestion cannot express (CRLF line breaks, a missing line break at the
  end of the file) is said in the body.

The body starts with :data:`MARKER` and the head's SHA (:func:`marker`), so the bot
finds its own review of a head again (never a second one on a redelivered webhook) and
retires the reviews of older heads (:func:`outdated_body`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab_ci.bot.render import code

MARKER = "<!-- lab-ci:suggestions -->"
_HEAD = re.compile(r"<!-- lab-ci:head=([0-9a-f]{7,64}) -->")
_OUTDATED = "<!-- lab-ci:outdated -->"
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
#: The most suggestions in one review (``LAB_CI_MAX_SUGGESTIONS``).
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class FileFix:
    """What ``--fix`` changes in one file: ``edits`` as
    :class:`lab_ci.check.fix.Edit` dictionaries (1-based line ranges of the head's
    text), ``problems`` the fixable diagnostics ``(line, rule, message)``."""

    path: str
    edits: tuple[dict, ...]
    problems: tuple[tuple[int, str, str], ...] = ()
    line_breaks_changed: bool = False

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "edits": list(self.edits),
            "problems": [list(p) for p in self.problems],
            "line_breaks_changed": self.line_breaks_changed,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FileFix:
        return cls(
            d["path"],
            tuple(d["edits"]),
            tuple((int(a), str(b), str(c)) for a, b, c in d.get("problems") or ()),
            bool(d.get("line_breaks_changed")),
        )


def file_fixes(path: str, data: bytes, diagnostics, limits) -> FileFix | None:
    """The safe fixes of one file (runs in the job process: it parses untrusted YAML);
    None when there is nothing to fix."""
    from dataclasses import asdict

    from lab_ci.check.fix import FIXABLE, fix_text

    problems = tuple((d.line, d.rule, d.message) for d in diagnostics if d.source == "yamllint" and d.rule in FIXABLE)
    if not problems:
        return None
    result = fix_text(data, limits)
    if not result.changed or result.error:
        return None
    return FileFix(path, tuple(asdict(e) for e in result.edits), problems, result.line_breaks_changed)


def right_ranges(patch: str | None) -> list[tuple[int, int]]:
    """The head-side line ranges ``(first, last)`` of each hunk of a unified ``patch``
    (what GitHub accepts review comments on with ``side: RIGHT``)."""
    out = []
    for line in (patch or "").split("\n"):
        m = _HUNK.match(line)
        if m:
            start, count = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
            if count:
                out.append((start, start + count - 1))
    return out


def marker(head_sha: str) -> str:
    return f"{MARKER}\n<!-- lab-ci:head={head_sha} -->"


def review_head(body: str | None) -> str | None:
    """The head SHA a lab-ci suggestions review was made for (None: not ours)."""
    if not body or MARKER not in body:
        return None
    m = _HEAD.search(body)
    return m.group(1) if m else None


def is_outdated(body: str | None) -> bool:
    return _OUTDATED in (body or "")


def outdated_body(old_head: str, new_head: str) -> str:
    """The body an older head's review gets when a newer head is checked (a COMMENT
    review cannot be dismissed: GitHub answers 422; its body can be edited)."""
    return (
        f"{marker(old_head)}\n{_OUTDATED}\n"
        f"~~Suggested fixes for `{old_head[:12]}`~~: outdated. The pull request has moved on to "
        f"`{new_head[:12]}`; its suggestions, if any, are in a newer review."
    )


def plan(reviews: list[dict], bot_login: str, head_sha: str) -> tuple[dict | None, list[dict]]:
    """(the bot's live review of ``head_sha`` or None, the bot's live reviews of other
    heads to retire), from ``GET .../pulls/{n}/reviews``. Only reviews by ``bot_login``
    carrying :data:`MARKER` count; one already marked outdated is left alone."""
    mine = [
        r
        for r in reviews
        if (r.get("user") or {}).get("login") == bot_login
        and review_head(r.get("body")) is not None
        and not is_outdated(r.get("body"))
    ]
    current = next((r for r in mine if review_head(r.get("body")) == head_sha), None)
    return current, [r for r in mine if r is not current]


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _suggestion(new_text: str) -> str:
    content = new_text[:-1] if new_text.endswith("\n") else new_text
    fence = _fence(new_text)
    return f"{fence}suggestion\n{content}\n{fence}" if new_text else f"{fence}suggestion\n{fence}"


_WHAT = {
    "trailing-spaces": "spaces at the end of the line",
    "empty-lines": "extra blank lines",
    "indentation": "indentation",
    "colons": "spacing around `:`",
    "hyphens": "spacing after `-`",
    "commas": "spacing around `,`",
    "braces": "spacing inside `{}`",
    "brackets": "spacing inside `[]`",
    "new-line-at-end-of-file": "the line break at the end of the file",
    "new-lines": "line breaks",
}


def _comment_text(problems: list[tuple[int, str, str]], first: int, last: int, old: str, new: str) -> str:
    mine = [p for p in problems if first <= p[0] <= last]
    if not mine and not new and not old.strip():  # yamllint names the last line of a run of blank lines
        n = old.count("\n")
        return f"Removes {'an extra blank line' if n == 1 else f'{n} extra blank lines'} (`empty-lines`); the data stays the same."
    if not mine:
        return "`lab-ci check --fix` makes this change (the data stays the same)."
    rules = list(dict.fromkeys(p[1] for p in mine))
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    named = ", ".join(f"{_WHAT.get(r, r)} (`{r}`)" for r in rules)
    return f"Fixes {named} on {where}; the data stays the same."


def build_review(fixes: list[FileFix], files: list[dict], head_sha: str, *, limit: int = DEFAULT_LIMIT) -> dict | None:
    """The ``POST .../pulls/{n}/reviews`` body for ``fixes`` on ``head_sha`` given the
    pull request's ``files`` (``GET .../pulls/{n}/files`` items), or None when nothing
    can be suggested and nothing is worth saying."""
    patches = {f.get("filename"): f.get("patch") for f in files if f.get("status") != "removed"}
    comments: list[dict] = []
    outside = over = 0
    notes: list[str] = []
    for fix in sorted(fixes, key=lambda f: f.path):
        hunks = right_ranges(patches.get(fix.path))
        problems = list(fix.problems)
        for e in fix.edits:
            first, last, old, new = int(e["start_line"]), int(e["end_line"]), e["old_text"], e["new_text"]
            if last < first:  # a pure insertion has no line of its own to comment on
                notes.append(f"{code(fix.path)}: lines to insert after line {last} (run `lab-ci check --fix`)")
                continue
            if not old.endswith("\n") and new.endswith("\n"):  # a suggestion cannot add the final line break
                notes.append(f"{code(fix.path)}: add a line break at the end of the file")
                if old == new[:-1]:
                    continue
            if not any(lo <= first and last <= hi for lo, hi in hunks):
                outside += 1
                continue
            if len(comments) >= limit:
                over += 1
                continue
            c = {"path": fix.path, "line": last, "side": "RIGHT"}
            if last > first:
                c.update(start_line=first, start_side="RIGHT")
            c["body"] = f"{_comment_text(problems, first, last, old, new)}\n\n{_suggestion(new)}"
            comments.append(c)
        if fix.line_breaks_changed:
            notes.append(f"{code(fix.path)}: CRLF line breaks become LF (a suggestion cannot show that)")
    if not comments and not outside and not over and not notes:
        return None
    return {
        "commit_id": head_sha,
        "event": "COMMENT",
        "body": review_body(head_sha, len(comments), outside, over, notes, limit),
        "comments": comments,
    }


def review_body(head_sha: str, suggested: int, outside: int, over: int, notes: list[str], limit: int) -> str:
    parts = [marker(head_sha)]
    if suggested:
        s = "s" if suggested != 1 else ""
        parts.append(
            f"**lab-ci** suggests {suggested} change{s} to the lines this pull request changes: they fix white "
            "space, indentation and spacing without changing any data. Click **Commit suggestion** on each, or "
            "**Add suggestion to batch** on several and commit them together."
        )
    else:
        parts.append("**lab-ci** found problems that `lab-ci check --fix` fixes, but none it can suggest here.")
    more = []
    if outside:
        more.append(
            f"{outside} fix{'es' if outside != 1 else ''} on lines outside this pull request's changes "
            "(not suggested: GitHub only takes suggestions on changed lines)"
        )
    if over:
        more.append(f"{over} more fix{'es' if over != 1 else ''} over this review's limit of {limit} suggestions")
    more.extend(notes)
    if more:
        parts.append("Also:\n" + "\n".join(f"- {m}" for m in more))
    parts.append(
        "To make every fix at once, run `lab-ci check --fix` in your clone (it only rewrites what keeps the data "
        "identical), then commit and push."
    )
    parts.append(f"<sub>Suggestions for `{head_sha[:12]}`; a new push replaces this review.</sub>")
    return "\n\n".join(parts)
