"""``lab-ci check --fix``: rewrite what can be rewritten mechanically, never the data.

Pure: text in, fixed text and per-line edits out (:func:`fix_text`). The CLI writes the
files; the bot turns :attr:`FixResult.edits` into GitHub ``suggestion`` blocks.

What is fixed (yamllint's problems, with the reference's configuration):

- ``trailing-spaces``: spaces and tabs at the end of a line;
- ``new-line-at-end-of-file``: a missing final line break;
- ``empty-lines``: runs of blank lines longer than allowed, blank lines at the end;
- ``indentation``: a block (a list under its key, most often) indented by a different
  number of spaces than yamllint expects is shifted as a whole;
- ``colons``, ``hyphens``, ``commas``, ``braces``, ``brackets``: spacing around ``:``,
  ``-``, ``,`` and inside ``{}``/``[]``;
- line breaks: CRLF and lone CR become LF;
- tabs in the indentation of lines where YAML allows them (blank lines, flow
  collections), replaced by spaces.

The rule that makes this safe: a fix is kept only if the file still parses to
*exactly* the same data (same types, same values, same order) and yamllint finds no
problem it did not find before. Fixes are tried all at once, then one by one when
that fails. A file that does not parse is not touched: its syntax error comes first.

A space at the end of a line inside a ``|`` or ``>`` block is part of the text, so
removing it changes the data: like ruff's fixes for whitespace inside multi-line
strings, that is an *unsafe* fix, made only with ``unsafe=True``
(``lab-ci check --fix --unsafe-fixes``); the data may then differ in white space at
the ends of lines and nowhere else (checked the same way). A final line break added
after a ``|`` block at the end of the file would add a line break to its text: the
safe fix adds it and turns ``|`` into ``|-``, which keeps the text as it was.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lab_ci.taxonomy import yamlsrc

#: The yamllint rules :func:`fix_text` can fix.
FIXABLE = frozenset(
    {
        "trailing-spaces",
        "new-line-at-end-of-file",
        "empty-lines",
        "indentation",
        "colons",
        "hyphens",
        "commas",
        "braces",
        "brackets",
        "new-lines",
    }
)
#: At most this many verifications (a parse and a lint each) per file.
MAX_TRIES = 400
_INDENT = re.compile(r"wrong indentation: expected (\d+) but found (\d+)")
_BLANKS = re.compile(r"too many blank lines \((\d+) > (\d+)\)")


@dataclass(frozen=True)
class Edit:
    """Lines ``start_line``..``end_line`` (1-based, inclusive, of the original text after
    line-break normalisation) replaced by ``new_text``; ``end_line == start_line - 1``
    for a pure insertion. ``old_text`` and ``new_text`` keep their line breaks."""

    start_line: int
    end_line: int
    old_text: str
    new_text: str


@dataclass
class FixResult:
    text: str  # the fixed text ("\n" line breaks); the input's text when nothing changed
    changed: bool = False
    edits: list[Edit] = field(default_factory=list)
    fixed: Counter = field(default_factory=Counter)  # rule -> problems fixed
    unfixed: list[tuple[int, str, str]] = field(default_factory=list)  # (line, rule, why)
    line_breaks_changed: bool = False  # CRLF or CR became LF
    error: str | None = None  # why nothing was tried (not UTF-8, does not parse, over a limit)


# -- data equality ----------------------------------------------------------------------------


def same_data(a: Any, b: Any) -> bool:
    """Strict equality of parsed YAML: ``True`` is not ``1``, ``1`` is not ``1.0``,
    NaN equals NaN, mappings compare in order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same_data(ka, kb) and same_data(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items())
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_data(x, y) for x, y in zip(a, b))
    return a == b


# -- candidate edits per problem ----------------------------------------------------------------


def _space_run(line: str, col: int) -> tuple[int, int] | None:
    """The run of spaces at or next to 0-based ``col`` in ``line``: (start, end)."""
    for i in (col, col - 1, col + 1):
        if 0 <= i < len(line) and line[i] == " ":
            start = end = i
            while start > 0 and line[start - 1] == " ":
                start -= 1
            while end < len(line) and line[end] == " ":
                end += 1
            return start, end
    return None


def _candidate(lines: list[str], p) -> tuple[str, dict[int, list[str]]] | None:
    """``(rule, {line index: replacement lines})`` fixing yamllint problem ``p``."""
    i = p.line - 1
    if not 0 <= i < len(lines):
        return None
    line = lines[i]
    rule, desc = p.rule, p.desc
    if rule == "trailing-spaces":
        return rule, {i: [line.rstrip(" \t")]}
    if rule == "empty-lines" and (m := _BLANKS.match(desc)):
        n, most = int(m.group(1)), int(m.group(2))
        first = i - n + 1
        if first < 0 or any(lines[j].strip() for j in range(first, i + 1)):
            return None
        return rule, {j: [] for j in range(first, first + n - most)}
    if rule == "indentation" and (m := _INDENT.match(desc)):
        expected, found = int(m.group(1)), int(m.group(2))
        delta = expected - found
        out: dict[int, list[str]] = {}
        for j in range(i, len(lines)):
            text = lines[j]
            if j > i and text.strip() and len(text) - len(text.lstrip(" ")) < found:
                break
            if not text.strip():
                continue
            out[j] = [text[-delta:] if delta < 0 and text.startswith(" " * -delta) else " " * max(delta, 0) + text]
        return rule, out
    if rule == "hyphens" and desc.startswith("too many spaces after"):
        dash = line.find("-")
        run = _space_run(line, dash + 1) if dash >= 0 else None
        if run is None:
            return None
        start, end = run
        delta = end - start - 1
        out = {i: [line[:start] + " " + line[end:]]}
        for j in range(i + 1, len(lines)):  # the item's other lines move with it
            text = lines[j]
            if text.strip() and len(text) - len(text.lstrip(" ")) <= dash:
                break
            if text.startswith(" " * (dash + 1 + delta)):
                out[j] = [text[delta:]]
        return rule, out
    if rule in ("colons", "hyphens", "commas", "braces", "brackets"):
        col = p.column - 1
        if desc.startswith("too few spaces after"):
            at = col if col < len(line) else len(line)
            return rule, {i: [line[:at] + " " + line[at:]]}
        run = _space_run(line, col)
        if run is None:
            return None
        start, end = run
        keep = 0 if "before" in desc or desc.endswith("inside empty braces") or "inside empty brackets" in desc else 1
        return rule, {i: [line[:start] + " " * keep + line[end:]]}
    return None


def _tab_candidates(lines: list[str]) -> dict[int, list[str]]:
    """Leading tabs replaced by spaces (to the next multiple of 8, as YAML editors show
    them); kept only where the data stays the same."""
    out = {}
    for j, text in enumerate(lines):
        lead = text[: len(text) - len(text.lstrip(" \t"))]
        if "\t" in lead:
            out[j] = [lead.expandtabs(8) + text[len(lead) :]]
    return out


def _apply(lines: list[str], edits: dict[int, list[str]]) -> list[str]:
    out: list[str] = []
    for j, text in enumerate(lines):
        out.extend(edits.get(j, [text]))
    return out


def _join(lines: list[str], final_newline: bool) -> str:
    return "\n".join(lines) + ("\n" if final_newline and lines else "")


# -- the fixer -------------------------------------------------------------------------------


_LINE_END_SPACE = re.compile(r"[ \t]+(?=\n|$)")


def without_line_end_space(x: Any) -> Any:
    """``x`` with white space at the ends of the lines of every text removed (what an
    unsafe fix may change, and nothing else)."""
    if isinstance(x, str):
        return _LINE_END_SPACE.sub("", x)
    if isinstance(x, dict):
        return {without_line_end_space(k): without_line_end_space(v) for k, v in x.items()}
    if isinstance(x, list):
        return [without_line_end_space(v) for v in x]
    return x


class _Verifier:
    def __init__(self, data: Any, baseline: Iterable, limits, unsafe: bool = False):
        self.unsafe = unsafe
        self.data = without_line_end_space(data) if unsafe else data
        self.baseline = Counter((p.rule, p.desc) for p in baseline)
        self.limits = limits
        self.tries = 0

    def ok(self, text: str) -> tuple[bool, list]:
        """Does ``text`` read as the same data, with no problem that was not there?"""
        from lab_ci.check import lint

        self.tries += 1
        src = yamlsrc.parse(text.encode("utf-8"), self.limits)
        data = without_line_end_space(src.data) if self.unsafe and src.ok else src.data
        if not src.ok or not same_data(data, self.data):
            return False, []
        problems = lint.lint_problems(text)
        now = Counter((p.rule, p.desc) for p in problems)
        return not (now - self.baseline), problems


def _strip_chomping(lines: list[str]) -> list[str] | None:
    """The lines with the ``|``/``>`` header of the block that ends the file given strip
    chomping (``|-``), so a final line break can be added without changing its text."""
    for j in range(len(lines) - 1, -1, -1):
        line = lines[j]
        m = re.match(r"^(.*?(?:^|\s|:|-)\s*)([|>])([1-9]?)(\s*(?:#.*)?)$", line)
        if m and not line.lstrip().startswith("#"):
            head, ind, digit, rest = m.groups()
            return [*lines[:j], f"{head}{ind}-{digit}{rest}", *lines[j + 1 :]]
        if line.strip() and not line.startswith((" ", "\t")):
            return None  # a top-level line: the file does not end in a block
    return None


def fix_text(
    data: bytes | str, limits: yamlsrc.ReadLimits = yamlsrc.DEFAULT_LIMITS, *, unsafe: bool = False
) -> FixResult:
    """Fix what :data:`FIXABLE` names in ``data`` without changing what it parses to
    (``unsafe``: except white space at the ends of lines inside texts).

    Never raises. ``error`` says why a file was left alone (not UTF-8, does not parse,
    over a reading limit)."""
    from lab_ci.check import lint

    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    src = yamlsrc.parse(raw, limits)
    if src.text is None or not src.ok:
        first = next((p for p in src.problems if p.severity == "error"), None)
        why = f"line {first.line}: {first.message}" if first else "the file cannot be read"
        return FixResult(text=src.text or "", error=f"not fixed: {why}")
    original = src.text
    result = FixResult(text=original, line_breaks_changed="\r" in raw.decode("utf-8", "replace"))
    baseline = lint.lint_problems(original)
    verifier = _Verifier(src.data, baseline, limits, unsafe)
    text = original
    problems = baseline
    rejected: set[tuple] = set()  # edits that changed the data, by the lines they touch
    for _round in range(20):
        lines = text.split("\n")
        final_newline = text.endswith("\n")
        if final_newline:
            lines = lines[:-1]
        cands = []
        for p in problems:
            if p.rule == "new-line-at-end-of-file":
                cands.append(("new-line-at-end-of-file", None))
            elif p.rule in FIXABLE and (c := _candidate(lines, p)) is not None:
                cands.append(c)
        tabs = _tab_candidates(lines)
        if tabs:
            cands.append(("tabs", tabs))
        if not cands:
            break
        progress = False
        # All at once (edits on the same line: the first wins), then one at a time.
        merged: dict[int, list[str]] = {}
        want_newline = False
        for _rule, edits in cands:
            if edits is None:
                want_newline = True
                continue
            for j, repl in edits.items():
                merged.setdefault(j, repl)
        attempt = _join(_apply(lines, merged), final_newline or want_newline)
        good, now = verifier.ok(attempt)
        if good and attempt != text:
            result.fixed.update(rule for rule, _ in cands)
            text, problems, progress = attempt, now, True
        else:
            # One at a time, keeping each that verifies; an edit that adds or removes
            # lines ends the pass (the others' line numbers moved).
            for rule, edits in sorted(cands, key=lambda c: c[1] is None or any(len(r) != 1 for r in c[1].values())):
                if verifier.tries >= MAX_TRIES:
                    break
                key = (rule, tuple(lines[j] for j in sorted(edits))) if edits is not None else (rule,)
                if key in rejected:
                    continue
                if edits is None:
                    attempt = _join(lines, True)
                    good, now = verifier.ok(attempt)
                    stripped = None if good else _strip_chomping(lines)
                    if stripped is not None:
                        attempt = _join(stripped, True)
                        good, now = verifier.ok(attempt)
                else:
                    attempt = _join(_apply(lines, edits), final_newline)
                    good, now = verifier.ok(attempt)
                if not good or attempt == text:
                    rejected.add(key)
                    continue
                result.fixed[rule] += 1
                text, problems, progress = attempt, now, True
                if edits is None or any(len(r) != 1 for r in edits.values()):
                    break
                lines = _apply(lines, edits)
        if not progress or verifier.tries >= MAX_TRIES:
            break
    remaining = lint.lint_problems(text)
    result.unfixed = [(p.line, p.rule, _why_not(p.rule, unsafe)) for p in remaining if p.rule in FIXABLE]
    result.text = text
    result.changed = text != original or result.line_breaks_changed
    result.edits = edits_between(original, text)
    return result


def _why_not(rule: str, unsafe: bool) -> str:
    if rule == "trailing-spaces" and not unsafe:
        return "the spaces are part of the text of a | or > block: delete them by hand, or use --unsafe-fixes"
    return "fixing it would change the data"


def edits_between(old: str, new: str) -> list[Edit]:
    """The changed line ranges from ``old`` to ``new``, as :class:`Edit` values."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        out.append(Edit(i1 + 1, i2, "".join(a[i1:i2]), "".join(b[j1:j2])))
    return out


def unified_diff(path: str, old: str, new: str) -> str:
    """``old`` -> ``new`` as a unified diff with ``a/``/``b/`` headers, as ``git diff``
    writes it (``\\ No newline at end of file`` included)."""
    out = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=2
    ):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
