"""Pure text helpers for prompts and outputs: ``{{var}}`` templates, field parsing,
and small similarity measures (token-overlap F1, ROUGE-L, Jaccard)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def template_vars(template: str) -> set[str]:
    return set(_VAR.findall(template))


def render(template: str, values: dict) -> str:
    """Replace ``{{name}}`` with ``values[name]``; KeyError names a missing variable."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            raise KeyError(name)
        v = values[name]
        return "" if v is None else str(v)

    return _VAR.sub(sub, template)


# ---------------------------------------------------------------- output parsing


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How to cut one field out of generated text.

    ``start``/``end`` markers (text between them; a missing ``end`` means up to the
    next known marker or the end), or ``regex`` (first group of the first pattern
    that matches). ``type`` converts (``str``, ``int``, ``float``); ``choices`` limits
    the (upper-cased) value; ``fallback: whole`` takes the whole text when no marker
    is found.
    """

    name: str
    start: str | None = None
    end: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    type: str = "str"
    choices: tuple[str, ...] = ()
    fallback: str = "none"  # "none" | "whole"
    max_chars: int | None = None

    @classmethod
    def from_config(cls, name: str, cfg: dict) -> FieldSpec:
        rx = cfg.get("regex") or ()
        if isinstance(rx, str):
            rx = (rx,)
        end = cfg.get("end") or ()
        if isinstance(end, str):
            end = (end,)
        return cls(
            name=name,
            start=cfg.get("start"),
            end=tuple(end),
            regex=tuple(rx),
            type=cfg.get("type", "str"),
            choices=tuple(str(c).upper() for c in cfg.get("choices") or ()),
            fallback=cfg.get("fallback", "none"),
            max_chars=cfg.get("max_chars"),
        )


class Unparseable(ValueError):
    """The text holds no value for a field; the message says which and why."""


#: a LAB-style section tag a teacher may write even when no prompt used it
#: (``[Start of Answer]``, ``[End of Context]``): always a boundary, never data
LAB_TAG = r"\[(?:start|end) of [^\[\]\n]{1,40}\]"
_TAG_LINE = re.compile(r"^[ \t]*(\[[^\[\]\n{}]{1,40}\])[ \t]*$", re.MULTILINE)
_LAB_TAG = re.compile(LAB_TAG, re.IGNORECASE)


def prompt_tags(text: str) -> set[str]:
    """The tags a prompt or example format shows the teacher: every ``[...]`` alone on
    its line, and every LAB-style ``[Start of X]`` / ``[End of X]`` tag."""
    return set(_TAG_LINE.findall(text)) | set(_LAB_TAG.findall(text))


#: the opening of a LAB tag whose end the teacher garbled (``[End of "narrow"?``)
LAB_TAG_OPENING = r"\[(?:start|end) of\b"


def _fragments(tag: str) -> list[str]:
    """What is left of a tag when a weak teacher drops its start: ``End of Question]``,
    ``of Question]``, ``Question]`` (whole words, ending with the bracket)."""
    if not (tag.startswith("[") and tag.endswith("]")):
        return []
    words = tag[1:].split(" ")
    if len(words[-1]) < 4:  # "END]" and longer: a short word alone is too common
        return []
    return [" ".join(words[i:]) for i in range(len(words))]


@lru_cache(maxsize=64)
def _tag_regex(tags: tuple[str, ...]) -> re.Pattern:
    whole = [re.escape(t) for t in sorted(tags, key=len, reverse=True)]
    parts = sorted({f for t in tags for f in _fragments(t)}, key=len, reverse=True)
    broken = [rf"(?<![\w\[]){re.escape(f)}" for f in parts]
    return re.compile("|".join([*whole, LAB_TAG, *broken, LAB_TAG_OPENING]), re.IGNORECASE)


def _cut_partial_tag(value: str, tags: tuple[str, ...]) -> str:
    """Drop a tag cut off by the length limit at the very end (``...\n[End of Resp``)."""
    i = value.rfind("[")
    if i < 0 or "]" in value[i:]:
        return value
    frag = value[i:].lower()
    whole = [t.lower() for t in tags] + ["[start of ", "[end of "]
    if len(frag) >= 3 and any(t.startswith(frag) or frag.startswith(t) for t in whole):
        return value[:i]
    return value


def _segments(text: str, rx: re.Pattern) -> list[tuple[str | None, str]]:
    """The text cut at every tag: (the tag before the segment, lower-cased, or None at
    the start; the segment)."""
    out: list[tuple[str | None, str]] = []
    before: str | None = None
    pos = 0
    for m in rx.finditer(text):
        out.append((before, text[pos : m.start()]))
        before, pos = m.group(0).lower(), m.end()
    out.append((before, text[pos:]))
    return out


def _tagged_value(text: str, spec: FieldSpec, rx: re.Pattern) -> str | None:
    """The field between its tags: after its ``start`` tag up to the next tag of any kind,
    else the segment just before one of its ``end`` tags (tags are never part of it)."""
    segments = _segments(text, rx)
    if spec.start:
        start = spec.start.lower()
        hit = next((seg for tag, seg in segments if tag == start), None)
        if hit is not None:
            return hit
    ends = {e.lower() for e in spec.end}
    for (_, seg), (tag, _) in zip(segments, segments[1:]):
        if tag in ends and seg.strip():
            return seg
    return None


def parse_fields(text: str, specs: list[FieldSpec], tags: Iterable[str] = ()) -> dict:
    """The fields of ``specs`` found in ``text``; :class:`Unparseable` if one is missing.

    ``tags`` are the pipeline's other tags (:func:`prompt_tags` of its prompts): with
    the fields' own ``start``/``end`` markers and any LAB-style ``[Start of X]`` /
    ``[End of X]``, they end a field and are never part of one, so a teacher that
    mixes up its tags (``[Start of Context]`` before a question, ``[End of Question]``
    after an answer) cannot put them into the training data."""
    vocab = tuple(sorted({m for s in specs for m in (s.start, *s.end) if m} | {t for t in tags if t}))
    rx = _tag_regex(vocab)
    out: dict = {}
    for spec in specs:
        value: str | None = None
        if spec.regex:
            for pattern in spec.regex:
                m = re.search(pattern, text, re.DOTALL | re.IGNORECASE)
                if m:
                    value = m.group(1) if m.groups() else m.group(0)
                    break
        elif spec.start or spec.end:
            value = _tagged_value(text, spec, rx)
        if (value is None or not value.strip()) and spec.fallback == "whole":
            # the first stretch of text between tags
            value = next((seg for _, seg in _segments(text, rx) if seg.strip()), None)
        if value is not None:
            value = _cut_partial_tag(rx.sub("", value), vocab)
        if value is None or not value.strip():
            raise Unparseable(f"no {spec.name} found")
        value = value.strip()
        if spec.max_chars and len(value) > spec.max_chars:
            raise Unparseable(f"{spec.name} longer than {spec.max_chars} characters")
        if spec.choices:
            up = value.upper()
            hit = next((c for c in spec.choices if re.search(rf"\b{re.escape(c)}\b", up)), None)
            if hit is None:
                raise Unparseable(f"{spec.name} is not one of {', '.join(spec.choices)}")
            value = hit
        if spec.type in ("int", "float"):
            m = re.search(r"-?\d+(?:\.\d+)?", value)
            if not m:
                raise Unparseable(f"{spec.name} is not a number")
            value = float(m.group(0)) if spec.type == "float" else int(float(m.group(0)))
        out[spec.name] = value
    return out


def find_tag(text: str, tags: Iterable[str] = ()) -> str | None:
    """The first pipeline tag (of ``tags``, or LAB-style) in ``text``, if any."""
    m = _tag_regex(tuple(sorted({t for t in tags if t}))).search(text or "")
    return m.group(0) if m else None


# ---------------------------------------------------------------- similarity

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token-overlap F1 between two texts (0..1)."""
    p, r = tokens(prediction), tokens(reference)
    if not p or not r:
        return float(p == r)
    counts: dict[str, int] = {}
    for t in r:
        counts[t] = counts.get(t, 0) + 1
    common = 0
    for t in p:
        if counts.get(t, 0) > 0:
            counts[t] -= 1
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens, beta = 1)."""
    p, r = tokens(prediction), tokens(reference)
    if not p or not r:
        return float(p == r)
    prev = [0] * (len(r) + 1)
    for a in p:
        cur = [0]
        for j, b in enumerate(r, 1):
            cur.append(prev[j - 1] + 1 if a == b else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def jaccard(a: str, b: str) -> float:
    ta, tb = set(tokens(a)), set(tokens(b))
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)


def approx_tokens(text: str) -> int:
    """A tokenizer-free token estimate (about 4/3 tokens per word) for budgets."""
    return (len(text.split()) * 4 + 2) // 3
