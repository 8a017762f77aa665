"""Counts in words for messages people read: ``"1 leaf"``, ``"3 leaves"``, ``"a, b and c"``."""

from __future__ import annotations


def plural(n: int, one: str, many: str | None = None) -> str:
    """``"1 leaf"``, ``"3 leaves"``, ``"2 samples"``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def and_list(items: list[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
