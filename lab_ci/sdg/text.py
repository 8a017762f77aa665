"""Pure text helpers for prompts and outputs: ``{{var}}`` templates, field parsing,
and small similarity measures (token-overlap F1, ROUGE-L, Jaccard)."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def _between(text: str, spec: FieldSpec, markers: list[str]) -> str | None:
    lo = text.lower()
    i = lo.find(spec.start.lower()) if spec.start else 0
    if i < 0:
        for end in spec.end:  # only an end marker: take what precedes it
            if lo.find(end.lower()) > 0:
                return text[: lo.find(end.lower())]
        return None
    begin = i + (len(spec.start) if spec.start else 0)
    stop = len(text)
    ends = list(spec.end) + [m for m in markers if m and m != spec.start]
    for m in ends:
        j = lo.find(m.lower(), begin)
        if j >= 0:
            stop = min(stop, j)
    return text[begin:stop]


def parse_fields(text: str, specs: list[FieldSpec]) -> dict:
    """The fields of ``specs`` found in ``text``; :class:`Unparseable` if one is missing."""
    markers = [m for s in specs for m in (s.start, *s.end) if m]
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
            value = _between(text, spec, markers)
        if (value is None or not value.strip()) and spec.fallback == "whole":
            value = text
        if value is not None:  # a value made only of tags (or with stray tags) is cleaned
            for m in markers:
                value = re.sub(re.escape(m), "", value, flags=re.IGNORECASE)
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
