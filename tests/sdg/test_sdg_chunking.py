from lab_ci.sdg.chunking import chunk_markdown
from lab_ci.sdg.text import approx_tokens

DOC = """# Lighthouse

Intro paragraph about the lighthouse and its long history on the island.

## Tower

The tower is built of granite blocks cut on the island itself, forty feet tall.

```
# not a heading inside a fence
code here that stays with the tower section
```

## Light

The light flashes white twice every fifteen seconds and is seen far away.
"""


def test_chunks_follow_headings_and_keep_heading_paths():
    chunks = chunk_markdown("doc.md", DOC, max_tokens=200)
    heads = [c.heading for c in chunks]
    assert heads == ["Lighthouse", "Lighthouse > Tower", "Lighthouse > Light"]
    assert "not a heading inside a fence" in chunks[1].text
    assert chunks[2].ref == "doc.md#2"


def test_long_sections_are_split_to_the_budget():
    body = "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(10))
    chunks = chunk_markdown("long.md", "# Big\n\n" + body, max_tokens=120)
    assert len(chunks) > 3
    assert all(approx_tokens(c.text) <= 120 for c in chunks)
    one_huge = chunk_markdown("huge.md", "word " * 1000, max_tokens=100)
    assert len(one_huge) >= 10 and all(approx_tokens(c.text) <= 100 for c in one_huge)
