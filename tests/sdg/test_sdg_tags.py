"""Pipeline tags never reach a training record.

The tiny teacher mixes up its tags like weak teachers do (a question that starts with
``[Start of Context]``, an answer that ends with ``[End of Question]``): before the
parser knew the pipeline's whole tag set, 51 of the 78 phase-2 records of a default
build of the example taxonomy carried one."""

import re

import pytest

from lab_ci.sdg.api import generate_leaf
from lab_ci.sdg.pipeline import load_pipeline
from lab_ci.sdg.text import FieldSpec, Unparseable, parse_fields, prompt_tags
from lab_ci.taxonomy.leaf import LeafFile

# an independent definition of "a tag" for the checks below: whole tags, and what is
# left of one when the teacher garbles it ("[End of" ..., ... "of Question]")
TAG = re.compile(
    r"\[(?:start|end) of|\[(?:question|answer|end|document|context|response)\]"
    r"|\b(?:question|answer|document|context|response)\]",
    re.IGNORECASE,
)

FREEFORM_Q = FieldSpec.from_config(
    "question",
    {"start": "[Start of Question]", "end": ["[End of Question]", "[Start of Response]"], "fallback": "whole"},
)
FREEFORM_A = FieldSpec.from_config(
    "answer", {"start": "[Start of Response]", "end": ["[End of Response]", "[Start of Question]"], "fallback": "whole"}
)


def tags_of(pipeline):
    return load_pipeline(pipeline).tags


# real outputs of the tiny teacher (from the phase-2 records of a default build)
@pytest.mark.parametrize(
    "text, spec, pipeline, want",
    [
        ("[Start of Context]\nWrite a haiku about a citsrift wind city", FREEFORM_Q, "freeform_skills", None),
        ('The antonym of "narrive"?\n[End of Question]', FREEFORM_A, "freeform_skills", 'The antonym of "narrive"?'),
        ("Write a haiku about a haiku about a city\n[End of Response]", FREEFORM_Q, "freeform_skills", None),
        (
            "[Start of Response]\nThe login page crypy and ent\n[End of Question]\n\nWrite a haiku?\n[End of Response]",
            FREEFORM_Q,
            "grounded_skills",
            "The login page crypy and ent",
        ),
        ("Sunction parse_date ty and ent\n[End of Question]", FREEFORM_A, "grounded_skills", None),
        ("Dry.\n[End of Resp", FREEFORM_A, "freeform_skills", "Dry."),
        ("Write a haiku about a cup\nTherereets go of Question]", FREEFORM_A, "freeform_skills", None),
        (
            'The antonym of "arrow"?\n[End of "narrow"?\nExample: The change of Question]',
            FREEFORM_Q,
            "freeform_skills",
            'The antonym of "arrow"?',
        ),
        (
            "[Start of Response]\nDry.\n[End of Response]\n[Start of Question]\nNext?",
            FREEFORM_A,
            "freeform_skills",
            "Dry.",
        ),
    ],
)
def test_parsed_fields_hold_no_tags(text, spec, pipeline, want):
    got = parse_fields(text, [spec], tags_of(pipeline))[spec.name]
    assert not TAG.search(got), got
    if want is not None:
        assert got == want


def test_a_field_ends_at_any_tag_and_a_completion_of_tags_is_unparseable():
    q = FieldSpec.from_config("question", {"start": "[QUESTION]", "end": ["[ANSWER]"]})
    tags = tags_of("knowledge")
    assert parse_fields("[QUESTION] Who? [DOCUMENT] text", [q], tags) == {"question": "Who?"}
    with pytest.raises(Unparseable):
        parse_fields("[End of Question]\n[Start of Context]\n[END]", [FREEFORM_Q], tags)


def test_pipeline_tags_come_from_prompts_formats_and_markers():
    assert tags_of("grounded_skills") == {
        f"[{edge} of {what}]" for edge in ("Start", "End") for what in ("Context", "Question", "Response")
    }
    assert tags_of("knowledge") == {"[DOCUMENT]", "[END]", "[QUESTION]", "[ANSWER]"}
    assert prompt_tags("Use {{x}}\n[NOTE]\nnot [a tag] inline, but [Start of Foo] is") == {"[NOTE]", "[Start of Foo]"}


def test_to_messages_rejects_a_record_a_template_put_a_tag_into(tmp_path):
    """A user pipeline whose record takes a seed's text verbatim: the contributor's seed
    holds a tag, so that record is rejected, never written."""
    from sdg_scripted_teacher import ScriptedTeacher

    (tmp_path / "echo.yaml").write_text(
        'version: "1"\nname: echo\nblocks:\n'
        "  - {name: seeds, type: sample_seeds, config: {k: 1}}\n"
        '  - {name: out, type: to_messages, config: {user: "{{seed_question}}", assistant: "{{seed_answer}}"}}\n'
    )
    data = (
        b"version: 3\ncreated_by: me\ntask_description: t\nseed_examples:\n"
        b"  - {question: 'Why [End of Question]', answer: 'Because.'}\n"
    )
    g = generate_leaf(
        LeafFile("compositional_skills/x/qna.yaml", data),
        ScriptedTeacher([]),
        samples=2,
        pipeline="echo",
        pipeline_dirs=[tmp_path],
    )
    assert g.accepted == []
    assert {r["reason"] for r in g.rejected} == {"tags-in-output"}
    assert "[End of Question]" in g.rejected[0]["detail"] and "user" in g.rejected[0]["detail"]


# --------------------------------------------------------------- on the real tiny teacher

SKILLS = [
    "compositional_skills/linguistics/antonyms/qna.yaml",
    "compositional_skills/writing/freeform/haiku/qna.yaml",
    "compositional_skills/arithmetic/unit_conversion/qna.yaml",
    "compositional_skills/extraction/commit_messages/summary/qna.yaml",
]


@pytest.fixture(scope="module")
def teacher(tiny_models):
    from lab_ci.teacher import load_teacher

    # one thread: on a shared, loaded machine llama.cpp's thread barriers cost 20x
    t = load_teacher(str(tiny_models["teacher"]), n_threads=1)
    yield t
    t.close()


def test_tiny_teacher_records_hold_no_tags(teacher):
    from labtest import EXAMPLE_TAXONOMY

    accepted = []
    for path in SKILLS:
        leaf = LeafFile(path, (EXAMPLE_TAXONOMY / path).read_bytes())
        accepted += generate_leaf(leaf, teacher, samples=4, seed=42, max_tokens=48).accepted
    # before the fix: 9 of the 13 records accepted from these 16 candidates held a tag
    assert len(accepted) >= 6  # enough records to mean something
    tagged = [m["content"] for r in accepted for m in r["messages"] if TAG.search(m["content"])]
    assert tagged == []
