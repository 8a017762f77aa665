"""Pipeline files: the built-in ones load, bad ones fail naming the file and the block."""

import textwrap

import pytest

from lab_ci.sdg.api import PIPELINE_VERSION
from lab_ci.sdg.errors import PipelineError
from lab_ci.sdg.pipeline import BUILTIN_NAMES, load_pipeline, load_pipeline_file


def write(tmp_path, text, name="mine.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_builtin_pipelines_load_and_have_versions():
    for name in BUILTIN_NAMES:
        pipe = load_pipeline(name)
        assert pipe.name == name
        assert pipe.blocks[0].type == "sample_seeds"
        assert pipe.blocks[-1].type == "to_messages"
        assert PIPELINE_VERSION[name] == pipe.version
        assert all(b.config["prompt"] in pipe.prompts for b in pipe.blocks if b.type == "llm")
    assert len(set(PIPELINE_VERSION.values())) == len(BUILTIN_NAMES)


def test_unknown_block_type_names_file_and_block(tmp_path):
    p = write(
        tmp_path,
        """
        version: "1"
        name: mine
        blocks:
          - {name: seeds, type: sample_seeds, config: {}}
          - {name: magic, type: teleport, config: {}}
    """,
    )
    with pytest.raises(PipelineError) as e:
        load_pipeline_file(p)
    msg = str(e.value)
    assert str(p) in msg and "'magic'" in msg and "teleport" in msg


def test_missing_config_key_names_block(tmp_path):
    p = write(
        tmp_path,
        """
        version: "1"
        name: mine
        blocks:
          - {name: seeds, type: sample_seeds, config: {}}
          - name: ask
            type: llm
            config: {fields: {question: {start: "[Q]"}}}
    """,
    )
    with pytest.raises(
        PipelineError, match=r"mine\.yaml: block 'ask' \(blocks\[1\]\).*'prompt' is a required property"
    ):
        load_pipeline_file(p)


def test_missing_config_section_and_bad_option(tmp_path):
    p = write(
        tmp_path,
        """
        version: "1"
        name: mine
        blocks:
          - {name: seeds, type: sample_seeds}
    """,
    )
    with pytest.raises(PipelineError, match=r"block 'seeds'.*'config' is a required property"):
        load_pipeline_file(p)
    p = write(
        tmp_path,
        """
        version: "1"
        name: mine
        blocks:
          - {name: keep, type: filter_value, config: {column: s, op: approx, value: 1}}
    """,
    )
    with pytest.raises(PipelineError, match=r"block 'keep'.*config\.op"):
        load_pipeline_file(p)
    p = write(
        tmp_path,
        """
        version: "1"
        name: mine
        blocks:
          - {name: seeds, type: sample_seeds, config: {samples_per_set: 0}}
    """,
    )
    with pytest.raises(PipelineError, match=r"block 'seeds'.*samples_per_set"):
        load_pipeline_file(p)


def test_missing_prompt_file_and_duplicate_names(tmp_path):
    p = write(
        tmp_path,
        """
        version: "1"
        name: mine
        blocks:
          - {name: ask, type: llm, config: {prompt: nowhere.txt, fields: {q: {fallback: whole}}}}
          - {name: out, type: to_messages, config: {user: "{{q}}", assistant: "{{q}}"}}
    """,
    )
    with pytest.raises(PipelineError, match=r"block 'ask': prompt file 'nowhere.txt' not found"):
        load_pipeline_file(p)
    p = write(
        tmp_path,
        """
        version: "1"
        name: mine
        blocks:
          - {name: a, type: sample_seeds, config: {}}
          - {name: a, type: sample_seeds, config: {}}
          - {name: out, type: to_messages, config: {user: "x", assistant: "y"}}
    """,
    )
    with pytest.raises(PipelineError, match="block 'a': block names must be unique"):
        load_pipeline_file(p)


def test_yaml_syntax_error_names_file(tmp_path):
    p = write(tmp_path, "blocks: [\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_pipeline_file(p)


def test_pipeline_dir_overrides_builtin_and_prompts_change_version(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "freeform_question.txt").write_text("Just ask: {{examples}}\n")
    builtin = (load_pipeline("freeform_skills").path).read_text()
    (tmp_path / "freeform_skills.yaml").write_text(builtin)
    mine = load_pipeline("freeform_skills", [tmp_path])
    assert mine.path == tmp_path / "freeform_skills.yaml"
    assert mine.prompts["freeform_question.txt"] == "Just ask: {{examples}}\n"
    # other prompts fall back to the built-in ones
    assert mine.prompts["judge_pair.txt"] == load_pipeline("freeform_skills").prompts["judge_pair.txt"]
    assert mine.version != PIPELINE_VERSION["freeform_skills"]


def test_a_pipeline_must_produce_records(tmp_path):
    p = write(
        tmp_path,
        """
        version: "1"
        name: mine
        blocks:
          - {name: seeds, type: sample_seeds, config: {}}
    """,
    )
    with pytest.raises(PipelineError, match="needs a to_messages block"):
        load_pipeline_file(p)
