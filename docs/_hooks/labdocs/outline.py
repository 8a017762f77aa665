"""Checks on a page's Markdown that MkDocs' link validation cannot make.

- **Outline**: one ``# Title`` first, an introduction before the first section, no
  skipped heading levels, no two sibling sections with the same title, no section
  named like the page (pasted example output with its own headings belongs in a fence).
- **Pseudo-links**: a page name such as ``bot-deploy.md`` written as plain text instead
  of a link (MkDocs cannot see it, so it rots unnoticed).
- **Internal names**: team and process words ("the lead", "this round", team code
  names) that tell our history, not the product.

:func:`problems` returns ``(line, message)`` pairs; the MkDocs hook turns each into a
warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_ATTRS = re.compile(r"\s*\{[^}]*\}\s*$")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"!?\[[^\]]*\]\([^)]*\)|<[^>]+>|https?://\S+")
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”')
_PAGE_NAME = re.compile(r"(?<![\w/.-])([A-Za-z0-9_][\w./-]*\.md)\b")
_CODE_PAGE_NAME = re.compile(r"`([\w.-]+\.md)`")
_WORDED_REF = re.compile(r"\b(?:the [\w-]+ section|sections? (?:above|below)|(?:command|section)s? above)\b", re.I)

#: (pattern, why): words that name our team or our process rather than the product.
INTERNAL_NAMES = (
    (re.compile(r"\b(?:BOT-[A-Z]+|CHECK-IO|TRAIN|MODELS|BUILD|PREVIEW|CHECK)\b"), "a team's code name"),
    (re.compile(r"\bthe lead\b(?!-)", re.I), "our process"),
    (re.compile(r"\b(?:this|earlier|previous|last) (?:round|session)s?\b", re.I), "our history"),
)


@dataclass(frozen=True)
class Heading:
    line: int
    level: int
    text: str


def prose(markdown: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of every line outside fenced code blocks and HTML comments."""
    out = []
    fence = None
    comment = False
    for n, line in enumerate(markdown.splitlines(), 1):
        m = _FENCE.match(line)
        if fence:
            if (
                m
                and m.group(1)[0] == fence[0]
                and len(m.group(1)) >= len(fence)
                and not line.strip()[len(m.group(1)) :]
            ):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        if comment or line.lstrip().startswith("<!--"):
            comment = "-->" not in line
            continue
        out.append((n, line))
    return out


def headings(markdown: str) -> list[Heading]:
    out = []
    for n, line in prose(markdown):
        m = _HEADING.match(line)
        if m:
            out.append(Heading(n, len(m.group(1)), _ATTRS.sub("", m.group(2)).strip()))
    return out


def _plain(line: str) -> str:
    """The line without code spans, links, autolinks, HTML tags and quoted text."""
    return _QUOTED.sub(" ", _LINK.sub(" ", _CODE_SPAN.sub(" ", line)))


def outline_problems(markdown: str) -> list[tuple[int, str]]:
    hs = headings(markdown)
    if not hs or hs[0].level != 1:
        return [(hs[0].line if hs else 1, "a page starts with its title, one '# ' heading")]
    out = []
    title = hs[0]
    for h in hs[1:]:
        if h.level == 1:
            out.append((h.line, f"a second title '# {h.text}': a page has one '# ' heading"))
    lines = markdown.splitlines()
    first_section = hs[1].line if len(hs) > 1 else len(lines) + 1
    intro = [t for n, t in prose(markdown) if title.line < n < first_section and t.strip()]
    if len(hs) > 1 and not intro:
        out.append((hs[1].line, f"'{hs[1].text}' follows the title directly: start the page with an introduction"))
    siblings: dict[tuple, dict[str, int]] = {}
    parents: list[Heading] = [title]
    for prev, h in zip(hs, hs[1:]):
        if h.level > prev.level + 1:
            out.append((h.line, f"heading level jumps from {prev.level} to {h.level} at '{h.text}'"))
        if h.level > 1 and h.text.lower() == title.text.lower():
            out.append((h.line, f"section '{h.text}' repeats the page title"))
        while parents and parents[-1].level >= h.level:
            parents.pop()
        key = (parents[-1].line if parents else 0, h.level)
        seen = siblings.setdefault(key, {})
        if h.text.lower() in seen:
            out.append((h.line, f"section '{h.text}' repeats the one on line {seen[h.text.lower()]}"))
        seen.setdefault(h.text.lower(), h.line)
        parents.append(h)
    return out


def text_problems(markdown: str, exists=None) -> list[tuple[int, str]]:
    """Pseudo-links, cross-references in words, internal names; with ``exists`` (a file
    name -> bool), also file names in code spans that name no file of the repository."""
    out = []
    for n, line in prose(markdown):
        plain = _plain(line)
        for m in _PAGE_NAME.finditer(plain):
            out.append((n, f"'{m.group(1)}' is named as plain text: make it a link (or a code span for a file)"))
        for m in _WORDED_REF.finditer(plain):
            out.append((n, f"'{m.group(0)}' points somewhere in words: make it a link"))
        for pattern, why in INTERNAL_NAMES:
            for m in pattern.finditer(plain):
                out.append((n, f"'{m.group(0)}' is {why}: describe the product, not how it was made"))
        if exists is not None:
            for m in _CODE_PAGE_NAME.finditer(_LINK.sub(" ", line)):
                if not exists(m.group(1)):
                    out.append((n, f"'{m.group(1)}' names no file of the repository: link the page meant"))
    return out


def problems(markdown: str, exists=None) -> list[tuple[int, str]]:
    """Every problem of a page, by line (see :func:`text_problems` for ``exists``)."""
    return sorted(outline_problems(markdown) + text_problems(markdown, exists))
