import textwrap

import pytest

from lab_ci.sdg.errors import EmptyLeafError, SeedError
from lab_ci.sdg.seeds import parse_leaf
from lab_ci.taxonomy.leaf import LeafFile


def leaf(path, text):
    return LeafFile(path, textwrap.dedent(text).encode())


def test_v3_knowledge_seeds_and_document():
    s = parse_leaf(
        leaf(
            "knowledge/a/b/qna.yaml",
            """
        version: 3
        domain: Birds
        document_outline: All about birds.
        seed_examples:
          - context: Birds fly.
            questions_and_answers:
              - {question: "Do birds fly?", answer: Yes.}
              - {question: "What flies?", answer: Birds.}
        document: {repo: "https://example.com/d.git", commit: abcdef1, patterns: ["*.md"]}
    """,
        )
    )
    assert s.kind == "knowledge" and s.default_pipeline == "knowledge"
    assert [e.id for e in s.examples] == ["1.1", "1.2"]  # counted from 1, as in the comment
    assert s.examples[0].context == "Birds fly."
    assert s.document.patterns == ("*.md",) and s.domain == "Birds"
    assert s.task_description == "All about birds."


def test_v1_knowledge_and_skill_kinds():
    v1 = parse_leaf(
        leaf(
            "knowledge/x/qna.yaml",
            """
        task_description: Old style.
        seed_examples:
          - {question: "Q1?", answer: A1}
        document: {repo: "https://example.com/d.git", commit: abcdef1, patterns: "*.md"}
    """,
        )
    )
    assert [e.id for e in v1.examples] == ["1"] and v1.document.patterns == ("*.md",)
    grounded = parse_leaf(
        leaf(
            "compositional_skills/x/qna.yaml",
            """
        task_description: Summarise.
        seed_examples:
          - {context: Some text., question: Summarise it., answer: Text.}
    """,
        )
    )
    assert grounded.grounded and grounded.default_pipeline == "grounded_skills"
    free = parse_leaf(
        leaf(
            "foundational_skills/x/qna.yaml",
            """
        task_description: Rhymes.
        seed_examples:
          - {question: "A rhyme for cat?", answer: Hat.}
    """,
        )
    )
    assert not free.grounded and free.default_pipeline == "freeform_skills"


@pytest.mark.parametrize(
    "text",
    ["a: [", "- just a list", "version: 3\nseed_examples: []\n", "seed_examples:\n  - {question: only a question}\n"],
)
def test_leaves_without_usable_seeds_name_the_file(text):
    with pytest.raises(SeedError, match=r"^compositional_skills/bad/qna\.yaml: "):
        parse_leaf(LeafFile("compositional_skills/bad/qna.yaml", text.encode()))


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "{}\n", "[]\n", "~\n"])
def test_an_empty_leaf_is_its_own_error(text):
    """What check calls an empty file (a warning, valid) is EmptyLeafError here, so the
    preview can follow check's verdict instead of failing the leaf."""
    from lab_ci.check.engine import check_leaf
    from lab_ci.check.options import CheckOptions

    lf = LeafFile("compositional_skills/empty/qna.yaml", text.encode())
    result = check_leaf(lf, CheckOptions())
    assert result.valid and "empty" in [d.rule for d in result.diagnostics]
    with pytest.raises(EmptyLeafError, match="the file is empty"):
        parse_leaf(lf)
