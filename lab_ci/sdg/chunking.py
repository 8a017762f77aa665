"""Cut Markdown documents into chunks for knowledge generation (pure).

First by headings (ATX ``#`` lines outside code fences), so a chunk stays within
one section and carries its heading path; then sections longer than the token budget
are split at paragraph boundaries (and a paragraph longer than the budget at word
boundaries). Small neighbouring sections under one parent are not merged: a chunk
is a topic the teacher can ground questions in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import approx_tokens

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```+|~~~+)")


@dataclass(frozen=True, slots=True)
class Chunk:
    source: str  # document path in its repository
    heading: str  # "Title > Section", "" before the first heading
    text: str
    index: int  # position in the document's chunk list

    @property
    def ref(self) -> str:
        return f"{self.source}#{self.index}"


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading path, body with its heading line) for each section of a Markdown text."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if m:
            mark = m.group(1)[0] * 3
            if fence is None:
                fence = mark
            elif mark == fence:
                fence = None
        h = _HEADING.match(line) if fence is None else None
        if h:
            level, title = len(h.group(1)), h.group(2)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            sections.append((" > ".join(t for _, t in stack), [line]))
        else:
            sections[-1][1].append(line)
    return [(head, "\n".join(lines).strip()) for head, lines in sections if "\n".join(lines).strip()]


def _split_long(body: str, budget: int) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    for para in re.split(r"\n\s*\n", body):
        para = para.strip()
        if not para:
            continue
        if approx_tokens(para) > budget:  # a huge paragraph: cut at words
            words = para.split()
            step = max(1, budget * 3 // 4)
            pieces = [" ".join(words[i : i + step]) for i in range(0, len(words), step)]
        else:
            pieces = [para]
        for piece in pieces:
            if current and approx_tokens("\n\n".join(current + [piece])) > budget:
                parts.append("\n\n".join(current))
                current = []
            current.append(piece)
    if current:
        parts.append("\n\n".join(current))
    return parts


def chunk_markdown(source: str, text: str, max_tokens: int = 400, min_tokens: int = 8) -> list[Chunk]:
    """The chunks of one document; sections under ``min_tokens`` (a bare heading) are dropped."""
    chunks: list[Chunk] = []
    for heading, body in _sections(text):
        for part in _split_long(body, max_tokens):
            if approx_tokens(part) >= min_tokens:
                chunks.append(Chunk(source, heading, part, len(chunks)))
    return chunks
