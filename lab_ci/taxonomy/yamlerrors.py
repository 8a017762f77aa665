"""YAML parser errors in plain words: what went wrong, where it began, what to change.

PyYAML (and libyaml) report a *problem mark*, where the parser gave up, and often a
*context mark*, where the construct it was reading began ("while scanning a simple
key ... in line 39"). Both are kept: the problem mark is the problem's position, the
context mark a related location. The classes below are the common ones among the 95
real syntax errors of the community taxonomy's pull requests; each gets a message
naming what was found and a hint saying what to change. Anything else still gets the
parser's own words and a general hint.
"""

from __future__ import annotations

import re

import yaml

from .limits import ReadProblem, Related

_BLOCK_HEADER = re.compile(r"^(\s*)(?:-\s+)*(?:[^#\s][^#]*?:\s+)?([|>][-+0-9]*)\s*(#.*)?$")
_HEADER_WITH_TEXT = re.compile(r"^(\s*(?:-\s+)*)([^#\s][^#]*?):\s*([|>][-+0-9]*)(.*)$")


#: The related location's words, by the parser's context.
_STARTS = {
    "while scanning a simple key": "the line read as a key starts here",
    "while parsing a flow sequence": "the `[` list starts here",
    "while parsing a flow mapping": "the `{` mapping starts here",
    "while parsing a block mapping": "the mapping it belongs to starts here",
    "while parsing a block collection": "the list it belongs to starts here",
    "while scanning a block scalar": "the block of text starts here",
    "while scanning a quoted scalar": "the quoted text starts here",
    "while scanning a double-quoted scalar": "the quoted text starts here",
    "while parsing a flow node": "the value starts here",
}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _quote(text: str, limit: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _block_above(lines: list[str], line_no: int) -> tuple[int, str, int, bool] | None:
    """The block scalar header (``key: |``) that 1-based ``line_no`` falls out of:
    the nearest one above it whose text is indented more than that line, or that has
    no text yet and whose key is not indented less than the line. Returns (header
    line, header text, the indentation the text needs)."""
    target = _indent(lines[line_no - 1])
    for i in range(line_no - 2, -1, -1):
        line = lines[i]
        if not line.strip():
            continue
        m = _HEADER_WITH_TEXT.match(line)
        if m and (not m.group(4).strip() or m.group(4).strip().startswith("#")):
            key_col = len(m.group(1))
            body = next((x for x in lines[i + 1 : line_no - 1] if x.strip()), None)
            if body is not None:
                return (i + 1, line.strip(), _indent(body), True) if target < _indent(body) else None
            return (i + 1, line.strip(), key_col + 2, False) if target <= key_col else None
        if _indent(line) < target:
            return None  # a parent of the line: no block scalar in between
    return None


def _words(exc: yaml.MarkedYAMLError) -> str:
    return "; ".join(p for p in (exc.context, exc.problem) if p) or str(exc)


def describe(exc: BaseException, text: str) -> ReadProblem:
    """A parser's or constructor's exception for ``text`` as a located problem."""
    lines = text.split("\n")
    if not isinstance(exc, yaml.MarkedYAMLError):
        return ReadProblem(
            "construct",
            f"a value cannot be built: {type(exc).__name__}: {exc}"[:300],
            hint="Put the value in quotes to keep it as text.",
        )
    pmark = exc.problem_mark or exc.context_mark
    line, col = (pmark.line + 1, pmark.column + 1) if pmark is not None else (1, 1)
    cline, ccol = (exc.context_mark.line + 1, exc.context_mark.column + 1) if exc.context_mark else (line, col)
    context, problem = exc.context or "", exc.problem or ""
    words = _words(exc)
    related: tuple[Related, ...] = ()
    if (cline, ccol) != (line, col):
        related = (Related(cline, ccol, _STARTS.get(context, f"{context.replace('while ', '') or 'it'} began here")),)
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    csrc = lines[cline - 1] if 0 < cline <= len(lines) else ""
    ch = src[col - 1 : col]

    def mk(rule: str, message: str, hint: str, rel=related) -> ReadProblem:
        return ReadProblem(rule, message, line, col, hint=hint, related=rel, parser_message=words)

    if isinstance(exc, yaml.constructor.ConstructorError):
        if "could not determine a constructor for the tag" in problem:
            return mk(
                "construct",
                f"the tag {problem.rsplit(' ', 1)[-1]} on this value is not one YAML knows",
                "Remove the tag (the word starting with !) or put the whole value in quotes.",
            )
        return mk("construct", f"a value cannot be built: {words}", "Put the value in quotes to keep it as text.")
    if isinstance(exc, yaml.composer.ComposerError):
        if "undefined alias" in problem:
            return mk(
                "syntax",
                f"the alias {src[col - 1 :].split()[0] if src[col - 1 :].strip() else ''} names no anchor defined above it",
                "Define the anchor (&name) before using the alias (*name), or write the value out; "
                "a value starting with * must be quoted to be text.",
            )
        if "duplicate anchor" in (context + problem):
            return mk(
                "syntax",
                "this anchor name is already used above",
                "Give each anchor (&name) a different name, or write the values out.",
            )
        return mk("syntax", f"the document cannot be read: {words}", "A qna.yaml holds one document: remove '---'.")

    if ch == "\t" or "'\\t'" in problem or "tab character" in problem:
        return mk(
            "tabs",
            "a tab character where YAML allows only spaces",
            "Replace the tab with spaces (`lab-ci check --fix` does it where the meaning stays the same).",
        )
    if "block scalar" in context and (
        "comment or a line break" in problem or "chomping or indentation" in problem or "expected comment" in problem
    ):
        m = _HEADER_WITH_TEXT.match(csrc)
        if m:
            lead, key, ind, rest = m.groups()
            pad = " " * (len(lead) + 2)
            return mk(
                "syntax",
                f"text follows `{ind}` on line {cline}: a block of text starts on the line after `{key}: {ind}`",
                f"Put `{key}: {ind}` alone on line {cline} and the text on the next lines, indented by "
                f"{len(pad)} spaces (`{pad}{_quote(rest, 30)}`); or drop `{ind}` and quote the text.",
                (),
            )
        return mk(
            "syntax",
            f"text follows the block indicator on line {cline}",
            "Start the text of a block (| or >) on the next line, indented more than its key.",
        )
    if "simple key" in context and ("':'" in problem or "expected ':'" in problem):
        block = _block_above(lines, cline)
        glued = re.match(r"^\s*(?:-\s+)?([A-Za-z_][\w.-]*):(\S.*)$", csrc)
        if block is not None:
            hline, header, body_indent, has_text = block
            how = "indented less than the text of" if has_text else "not indented more than the key of"
            return mk(
                "syntax",
                f"line {cline} (`{_quote(csrc)}`) is {how} the block `{_quote(header, 30)}` on line {hline}, "
                "so it ends that block and is read as a key without `:`",
                f"Indent the text of the block by {body_indent} spaces, from line {cline} on; "
                "if the line is meant as a new field, write it as `name: value`.",
            )
        if glued:
            return mk(
                "syntax",
                f"line {cline} (`{_quote(csrc)}`) has no space after `{glued.group(1)}:`, so YAML reads it as text",
                f"Put a space after the colon: `{glued.group(1)}: {_quote(glued.group(2), 30)}`.",
            )
        return mk(
            "syntax",
            f"line {cline} (`{_quote(csrc)}`) is read as a key, but no `:` follows it",
            "If the line continues the text above it, indent it like that text or quote the whole value "
            "(or use a block: `key: |`); if it starts a new field, write `name: value`.",
        )
    if "mapping values are not allowed" in problem:
        return mk(
            "syntax",
            "a `: ` inside an unquoted value starts a second key on this line",
            'Put the value in quotes (`question: "What is X: Y?"`), or write it as a block '
            "(`question: |` and the text on the next lines).",
        )
    if "quoted scalar" in context and "end of stream" in problem:
        return mk(
            "syntax",
            f"the quote opened on line {cline} is never closed",
            "Close the quote at the end of the value; inside '...' write '' for an apostrophe, "
            'inside "..." write \\" for a quote mark (or use a block: `key: |`).',
        )
    if "escape character" in problem:
        return mk(
            "syntax",
            "a backslash inside double quotes starts an escape YAML does not know",
            "Write \\\\ for a backslash, or use single quotes (where a backslash is plain text).",
        )
    if "cannot start any token" in problem:
        return mk(
            "syntax",
            f"a value cannot start with `{ch}` unless it is quoted",
            "Put the value in quotes.",
        )
    if ("flow sequence" in context or "flow mapping" in context) and problem.endswith("but got '?'"):
        return mk(
            "syntax",
            "a `?` inside an unquoted value between brackets ends that value (YAML 1.1, as the reference reads it)",
            'Put the value in quotes: `{question: "Why?", answer: ...}`, or write the mapping in block style.',
        )
    if "flow sequence" in context or "flow mapping" in context:
        opener, closer = ("[", "]") if "sequence" in context else ("{", "}")
        return mk(
            "syntax",
            f"the `{opener}` opened on line {cline} is not closed where expected",
            f"Close it with `{closer}`, separate its items with commas, and quote text that contains "
            "`,` `[` `]` `{` `}` or `: `.",
        )
    if "block mapping" in context or "block collection" in context or "expected key" in problem:
        kind = "mapping" if "mapping" in context else "list"
        return mk(
            "syntax",
            f"line {line} does not line up with the {kind} it belongs to (started on line {cline})",
            f"Check the indentation of line {line}: the keys of one mapping start in the same column, and so do the "
            "`- ` items of one list; a value spanning several lines must be indented more than its key, "
            "quoted, or written as a block (`key: |`).",
        )
    return mk(
        "syntax",
        f"YAML cannot read this: {words}",
        "Check this line and the lines above it for indentation and for quotes that are not closed.",
    )
