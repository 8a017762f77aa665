"""Small inline qna.yaml files for the checker's unit tests."""

from lab_ci.taxonomy.leaf import LeafFile

SKILL = """\
version: 3
created_by: octocat
task_description: Write short poems about cats.
seed_examples:
  - question: Write a haiku about a cat.
    answer: Soft paws on the sill.
  - question: Write a limerick about a cat.
    answer: There once was a cat from Peru.
  - question: Write a couplet about a cat.
    answer: The cat sat still, then ate its fill.
  - question: Write a rhyme about a kitten.
    answer: A kitten with a mitten.
  - context: The cat is black.
    question: Write a line about this cat.
    answer: Black as night, the cat takes flight.
"""

KNOWLEDGE = """\
version: 3
created_by: octocat
domain: astronomy
document_outline: Facts about the Moon.
document:
  repo: https://github.com/octocat/moon-docs
  commit: 0123456789abcdef0123456789abcdef01234567
  patterns:
    - moon.md
seed_examples:
""" + "".join(
    f"""\
  - context: The Moon is Earth's only natural satellite, fact {i}.
    questions_and_answers:
      - question: What is the Moon, part {i}a?
        answer: Earth's satellite.
      - question: Is the Moon natural, part {i}b?
        answer: Yes.
      - question: How many moons, part {i}c?
        answer: One.
"""
    for i in range(5)
)


def leaf(
    text: str | bytes,
    path: str = "compositional_skills/poems/cats/qna.yaml",
    *,
    attribution: bytes | None = b"Source: me\n",
    **kw,
) -> LeafFile:
    data = text.encode() if isinstance(text, str) else text
    return LeafFile(
        path=path,
        data=data,
        attribution=attribution,
        attribution_kind="file" if attribution is not None else "missing",
        **kw,
    )
