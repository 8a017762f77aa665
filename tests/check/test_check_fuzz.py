"""check_leaf never raises and always answers, whatever the bytes (seeded fuzzing)."""

from __future__ import annotations

import random

from checkleaf_samples import KNOWLEDGE, SKILL, leaf

from lab_ci.check import CheckOptions, check_leaf

ALPHABET = list(b"\t\n\r -:[]{}#&*!|>'\"%@`,?~\\") + [0, 0x85, 0xA0, 0xC3, 0xA9, 0xEF, 0xBB, 0xBF, 0xFF]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        pos = rng.randrange(len(b) + 1)
        if op < 0.4:
            b[pos:pos] = bytes([rng.choice(ALPHABET)])
        elif op < 0.7 and b:
            del b[min(pos, len(b) - 1)]
        elif op < 0.85:
            b[pos:pos] = rng.choice(
                [b"\t", b"\n  - ", b": ", b"*a", b"&a ", b"!!binary ", b"<<: *a\n", b"2024-13-45", b".inf"]
            )
        else:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(b)


def test_check_leaf_never_raises():
    rng = random.Random(20241125)
    options = [CheckOptions(), CheckOptions(schema_version="declared"), CheckOptions(strict=True)]
    seen_rules = set()
    for i in range(600):
        if i % 5 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        else:
            data = _mutate(rng, (SKILL if i % 2 else KNOWLEDGE).encode())
        path = "knowledge/k/qna.yaml" if i % 2 == 0 else "compositional_skills/s/qna.yaml"
        result = check_leaf(leaf(data, path), options[i % 3])
        assert result.path == path
        for d in result.diagnostics:
            assert d.rule != "internal", (data, d)
            assert d.line >= 1 and d.column >= 1 and d.message
            seen_rules.add(d.rule)
    assert {"syntax", "encoding"} <= seen_rules
