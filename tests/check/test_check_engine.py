"""check_leaf / check_leaves on small inline files: every bad input gives a clear
diagnostic with a position, never an exception."""

from __future__ import annotations

import pytest
from checkleaf_samples import KNOWLEDGE, SKILL, leaf
from yamllint import linter

from lab_ci.check import CheckOptions, check_leaf, check_leaves
from lab_ci.check import lint as lint_mod
from lab_ci.errors import LabCIError
from lab_ci.taxonomy.leaf import LeafFile

LATEST = CheckOptions()
DECLARED = CheckOptions(schema_version="declared")


def rules(result, source=None):
    return [(d.source, d.rule) for d in result.diagnostics if source is None or d.source == source]


def find(result, rule):
    found = [d for d in result.diagnostics if d.rule == rule]
    assert found, f"no {rule} in {result.diagnostics}"
    return found[0]


def test_valid_skill_and_knowledge_have_no_diagnostics():
    for text, path in (
        (SKILL, "compositional_skills/poems/cats/qna.yaml"),
        (KNOWLEDGE, "knowledge/space/moon/qna.yaml"),
    ):
        r = check_leaf(leaf(text, path), LATEST)
        assert r.valid and r.diagnostics == [], r.diagnostics


def test_syntax_error_has_position():
    r = check_leaf(leaf("version: 3\nseed_examples: [a, b\ncreated_by: x\n"), LATEST)
    d = find(r, "syntax")
    assert not r.valid and d.severity == "error" and d.source == "yaml"
    assert (d.line, d.column) > (1, 1)


def test_tab_indentation_is_named():
    r = check_leaf(leaf("version: 3\nseed_examples:\n\t- question: q\n"), LATEST)
    d = find(r, "tabs")
    assert not r.valid and d.line == 3 and d.column == 1


def test_non_utf8_points_at_the_first_bad_byte():
    r = check_leaf(leaf(b"version: 3\ncreated_by: \xff\xfe\n"), LATEST)
    d = find(r, "encoding")
    assert not r.valid and (d.line, d.column) == (2, 13) and "0xff" in d.message


def test_bom_is_a_warning_and_keeps_the_verdict():
    r = check_leaf(leaf(b"\xef\xbb\xbf" + SKILL.encode()), LATEST)
    assert r.valid and ("yaml", "bom") in rules(r)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "{}\n", "[]\n", "0\n", "~\n"])
def test_empty_file_is_a_warning(text):
    r = check_leaf(leaf(text), LATEST)
    assert r.valid and find(r, "empty").severity == "warning"


def test_top_level_must_be_a_mapping():
    r = check_leaf(leaf("- a\n- b\n"), LATEST)
    assert not r.valid and ("schema", "type") in rules(r)


@pytest.mark.parametrize("kind", ["directory", "symlink", "submodule", "missing"])
def test_qna_that_is_not_a_file(kind):
    r = check_leaf(LeafFile(path="knowledge/x/qna.yaml", data=None, kind=kind), LATEST)
    assert not r.valid and find(r, "not-a-file").message.startswith("knowledge/x/qna.yaml is")


def test_wrong_file_name_and_size_limit():
    r = check_leaf(leaf(SKILL, "notes/x.txt"), LATEST)
    assert not r.valid and [d.rule for d in r.diagnostics] == ["file-name"]
    # A misnamed leaf: its own rule, the rename in the hint, and its content checked too.
    r = check_leaf(leaf(SKILL.replace("version: 3", "version: 3   "), "compositional_skills/x/qna.yml"), LATEST)
    d = find(r, "leaf-name")
    assert not r.valid and d.severity == "error" and '"qna.yml"' in d.message
    assert "git mv 'compositional_skills/x/qna.yml' 'compositional_skills/x/qna.yaml'" in d.hint
    assert find(r, "trailing-spaces").line == 1
    r = check_leaf(leaf(SKILL), CheckOptions(max_file_bytes=100))
    assert not r.valid and "limit of 100 bytes" in find(r, "file-too-large").message


def test_deleted_leaf_has_no_diagnostics():
    r = check_leaf(LeafFile(path="knowledge/x/qna.yaml", data=None, kind="missing", change="deleted"), LATEST)
    assert r.change == "deleted" and r.diagnostics == [] and r.valid


def test_crlf_gives_the_same_result_as_lf():
    lf = check_leaf(leaf(SKILL + "bad_key: 1   \n"), LATEST)
    crlf = check_leaf(leaf((SKILL + "bad_key: 1   \n").replace("\n", "\r\n")), LATEST)
    assert [d.to_dict() for d in lf.diagnostics] == [d.to_dict() for d in crlf.diagnostics]
    assert ("yamllint", "trailing-spaces") in rules(lf)


def test_schema_errors_point_at_real_lines():
    text = SKILL.replace("  - question: Write a couplet about a cat.\n", "  - quest: Write a couplet about a cat.\n")
    text = text.replace("created_by: octocat", "created_by: 42")
    r = check_leaf(leaf(text), LATEST)
    by_rule = {d.rule: d for d in r.diagnostics if d.source == "schema"}
    assert by_rule["type"].yaml_path == ".created_by" and by_rule["type"].line == 2
    assert by_rule["required"].yaml_path == ".seed_examples[2]" and by_rule["required"].line == 9
    unev = by_rule["unevaluatedProperties"]
    assert unev.yaml_path == ".seed_examples[2]" and (unev.line, unev.column) == (9, 5)


def test_min_items_message_counts_and_keeps_the_references_words():
    text = "version: 3\ncreated_by: a\ntask_description: b\nseed_examples:\n  - question: q\n    answer: a\n"
    d = find(check_leaf(leaf(text), LATEST), "minItems")
    assert d.reference_message == "Value must have at least 5 items" and d.yaml_path == ".seed_examples" and d.line == 5
    assert d.message == "`seed_examples` has 1 seed example; at least 5 are required"
    assert d.hint == "Add 4 more seed examples."


def test_duplicate_keys():
    text = SKILL.replace("created_by: octocat\n", "created_by: octocat\ncreated_by: again\n")
    r = check_leaf(leaf(text), LATEST)  # version 3: yamllint's key-duplicates, an error
    assert not r.valid and find(r, "key-duplicates").line == 3
    v1 = text.replace("version: 3", "version: 1")
    r = check_leaf(leaf(v1), DECLARED)  # version 1: no yamllint; our own warning
    d = find(r, "duplicate-key")
    assert d.severity == "warning" and d.line == 3 and r.valid


@pytest.mark.parametrize(
    "version_line, rule",
    [
        ("version: '3'", "type"),  # a string, converted for choosing the schema
        ("version: .inf", "version"),  # the reference crashes here
        ("version: 9", "schema-version"),
        ("version: 0", "schema-version"),
    ],
)
def test_declared_versions(version_line, rule):
    r = check_leaf(leaf(SKILL.replace("version: 3", version_line)), DECLARED)
    assert not r.valid and find(r, rule).severity == "error"


def test_old_knowledge_versions_are_retired():
    r = check_leaf(leaf(KNOWLEDGE.replace("version: 3", "version: 2"), "knowledge/space/moon/qna.yaml"), DECLARED)
    d = find(r, "deprecated")
    assert not r.valid and "Minimum supported version is 3" in d.reference_message
    assert d.message.startswith("knowledge leaves of format 2 are no longer read") and "questions_and_answers" in d.hint
    assert d.line == 1 and d.column == 10  # at the version


def test_version_1_skill_declared_is_valid_without_lint():
    text = SKILL.replace("version: 3", "version: 1") + "# trailing spaces   \n"
    r = check_leaf(leaf(text), DECLARED)
    assert r.valid and not rules(r, "yamllint")
    # the same file checked against the latest schema: linted, and version 1 is wrong
    r = check_leaf(leaf(text), LATEST)
    assert ("yamllint", "trailing-spaces") in rules(r) and ("schema", "const") in rules(r)


def test_schema_is_guessed_outside_the_tree():
    r = check_leaf(
        leaf(KNOWLEDGE.replace("document_outline: Facts about the Moon.\n", ""), "elsewhere/moon/qna.yaml"), LATEST
    )
    assert {d.yaml_path for d in r.diagnostics if d.rule == "required"} == {"."}
    assert "document_outline" in find(r, "required").message
    assert find(r, "placement").severity == "warning"


def test_strict_turns_warnings_into_errors():
    lax = check_leaf(leaf(SKILL, attribution=None), LATEST)
    strict = check_leaf(leaf(SKILL, attribution=None), CheckOptions(strict=True))
    assert lax.valid and find(lax, "attribution-missing").severity == "warning"
    assert not strict.valid and find(strict, "attribution-missing").severity == "error"


def test_options_validate_schema_version():
    assert CheckOptions(schema_version="2").schema_version == 2
    with pytest.raises(LabCIError):
        CheckOptions(schema_version=7)
    assert CheckOptions().cache_key() != CheckOptions(strict=True).cache_key()


def test_check_leaves_keeps_order_in_parallel():
    leaves = []
    for i in range(30):
        text = SKILL if i % 3 else SKILL + "  bad: [\n"
        leaves.append(leaf(text, f"compositional_skills/t{i}/qna.yaml"))
    leaves.append(LeafFile(path="knowledge/gone/qna.yaml", data=None, kind="missing", change="deleted"))
    one = check_leaves(leaves, LATEST, jobs=1)
    two = check_leaves(leaves, LATEST, jobs=2)
    assert [f.path for f in one.files] == [leaf_.path for leaf_ in leaves]
    assert [f.to_dict() for f in one.files] == [f.to_dict() for f in two.files]
    assert one.files[-1].change == "deleted" and one.files[-1].diagnostics == []
    assert one.summary()["invalid"] == 10 and one.summary()["files"] == 30


LINT_SAMPLES = [
    SKILL,
    "a:   1\nb: [ 1,2 ]\nc: {x: 1 , y: 2}\n",
    "key: value  # a comment\n  # indented comment\nlist:\n- a\n-  b\n\n\n\nend: 1",
    "# yamllint disable rule:trailing-spaces\na: 1   \n# yamllint enable\nb: 2   \n",
    "a: 1  # yamllint disable-line\nb: &x 1\nc: *x\nd: *x\ne: &x 2\n",
    "# yamllint disable-file\na: 1   \n",
    "---\na: |\n  text   \n  more\nb: >-\n    folded\n...\n",
    "k: 'quoted ''x'''\nl: \"é\\n\"\nm: ? complex\n",
]


@pytest.mark.parametrize("text", LINT_SAMPLES)
def test_fast_lint_equals_yamllint(text):
    fast = [(p.line, p.column, p.rule, p.level, p.desc) for p in lint_mod.lint_problems(text)]
    slow = [(p.line, p.column, p.rule, p.level, p.desc) for p in linter.run(text, lint_mod.config())]
    assert fast == slow
