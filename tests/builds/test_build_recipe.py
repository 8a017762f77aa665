"""The build recipe: a JSON Schema with a description and a default for every key,
errors located at the YAML line and column, defaults merged key by key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from lab_ci.builds import config as recipe
from lab_ci.builds.cli import STAGES as CLI_STAGES
from lab_ci.builds.config import load_config
from lab_ci.builds.runner import STAGE_NAMES
from lab_ci.errors import LabCIError
from lab_ci.train import config as train_config


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "recipe.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text, problem",
    [
        ("phases: []\n", "1:9: phases: must not be empty"),
        (
            "phases:\n  - name: x\n    data: [{source: nope}]\n",
            "3:21: phases[0].data[0].source: 'nope' is not one of ['knowledge', 'grounded_skill', 'freeform_skill']",
        ),
        (
            "generate:\n  samples_per_leaf: {skills: 3}\n",
            "2:22: generate.samples_per_leaf: unknown key 'skills' (known: freeform_skill, grounded_skill, knowledge)",
        ),
        ("generate: {round_size: 0}\n", "1:24: generate.round_size: 0 is less than the minimum of 1"),
        ("generate: {seed: true}\n", "1:18: generate.seed: True is not of type 'integer'"),
        (
            "export_gguf: true\nbogus: 1\n",
            "2:1: (top level): unknown key 'bogus' (known: export_gguf, generate, gguf_quant, phases, postcheck, train)",
        ),
        ("gguf_quant: q4\n", "1:13: gguf_quant: 'q4' is not one of ['f32', 'f16', 'q8_0']"),
        ("postcheck: {max_new_tokens: 0}\n", "1:29: postcheck.max_new_tokens: 0 is less than the minimum of 1"),
        ("train:\n  epochs: two\n", "2:11: train.epochs: 'two' is not of type 'integer'"),
        ("- a\n", "1:1: (top level): ['a'] is not of type 'object'"),
        (
            "phases: [\n",
            "2:1: YAML syntax error: while parsing a flow node; expected the node content, but found '<stream end>'",
        ),
    ],
)
def test_a_bad_recipe_is_one_line_at_its_line_and_column(tmp_path, text, problem):
    f = _write(tmp_path, text)
    with pytest.raises(LabCIError) as e:
        load_config(f)
    assert str(e.value) == f"{f}:{problem}"


def test_several_problems_are_listed_in_file_order(tmp_path):
    f = _write(tmp_path, "phases:\n  - data: [{source: knowledge, weight: -1}]\ntrain:\n  warmup: 3\n")
    with pytest.raises(LabCIError) as e:
        load_config(f)
    lines = str(e.value).splitlines()
    assert lines[0] == f"{f}: 3 problems in the build recipe:"
    assert lines[1] == f"  {f}:2:5: phases[0]: 'name' is a required property"
    assert lines[2] == f"  {f}:2:40: phases[0].data[0].weight: -1 is less than the minimum of 0"
    assert lines[3].startswith(f"  {f}:4:3: train: unknown key 'warmup' (known: adam_beta1, ")


def test_problems_found_after_the_schema_are_located_too(tmp_path):
    f = _write(tmp_path, "generate:\n  pipelines:\n    knowledge: nope.yaml\n")
    with pytest.raises(LabCIError) as e:
        load_config(f)
    assert str(e.value).startswith(f"{f}:3:16: generate.pipelines.knowledge: {tmp_path / 'nope.yaml'}: cannot read")
    f = _write(tmp_path, "export_gguf: false\ntrain:\n  max_seq_len: 10000\n")
    with pytest.raises(LabCIError) as e:
        load_config(f)
    assert (
        str(e.value)
        == f"{f}:3:3: train: max_seq_len must not exceed max_tokens_per_batch (a sample must fit a micro-batch)"
    )


def test_an_unreadable_recipe_names_the_cause(tmp_path):
    with pytest.raises(LabCIError) as e:
        load_config(tmp_path)
    assert str(e.value) == f"{tmp_path}: cannot read the build recipe: Is a directory (EISDIR)"


def test_defaults_are_merged_key_by_key_and_lists_replaced(tmp_path):
    f = _write(tmp_path, "generate:\n  seed: 7\n  samples_per_leaf: {knowledge: 4}\ntrain: {learning_rate: 2e-5}\n")
    cfg = load_config(f)
    assert cfg.seed == 7 and cfg.round_size == 8  # other generate keys kept
    assert cfg.samples_per_leaf == {"knowledge": 4, "grounded_skill": 16, "freeform_skill": 16}
    assert cfg.train == {"learning_rate": 2e-5}  # YAML 1.1 reads 2e-5 as a string: taken as the number
    assert cfg.pipelines == {
        "knowledge": "knowledge",
        "grounded_skill": "grounded_skills",
        "freeform_skill": "freeform_skills",
    }
    f = _write(tmp_path, "phases:\n  - name: only\n    data: [{source: knowledge}]\n")
    cfg = load_config(f)
    assert [(p.name, p.epochs, p.data[0].weight) for p in cfg.phases] == [("only", 1, 1.0)]


def test_pipeline_files_are_relative_to_the_recipe(tmp_path):
    pipes = Path(__file__).with_name("pipelines")
    f = _write(tmp_path, f"generate:\n  pipelines: {{freeform_skill: {pipes.name}/tiny_skills.yaml}}\n")
    (tmp_path / "pipelines").symlink_to(pipes, target_is_directory=True)
    cfg = load_config(f)
    assert cfg.pipelines["freeform_skill"] == str((tmp_path / "pipelines" / "tiny_skills.yaml").resolve())
    assert cfg.pipelines["knowledge"] == "knowledge"


def _keys(node: dict, path: str = ""):
    """(path, property schema) for every key the recipe schema describes, $refs followed."""
    if "$ref" in node:
        ref = node["$ref"]
        target = (
            train_config.schema()
            if ref == "../train/config.schema.json"
            else recipe.schema()["$defs"][ref.rsplit("/", 1)[1]]
        )
        yield from _keys(target, path)
    for name, prop in node.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        yield key, prop
        yield from _keys(prop, key)
    if "items" in node:
        yield from _keys(node["items"], f"{path}[]")


def test_every_key_has_a_description_and_every_setting_a_default():
    keys = dict(_keys(recipe.schema()))
    assert len(keys) > 40 and "train.learning_rate" in keys and "phases[].data[].weight" in keys
    assert [k for k, p in keys.items() if not p.get("description")] == []
    required = {"phases[].name", "phases[].data", "phases[].data[].source"}
    assert [k for k, p in keys.items() if "default" not in p and k not in required] == []
    # the defaults are a valid recipe, and each section's default agrees with its keys'
    Draft202012Validator(recipe.schema()).check_schema(recipe.schema())
    recipe.check_recipe(recipe.defaults(), "defaults")
    for section, prop in recipe.schema()["properties"].items():
        for key, sub in prop.get("properties", {}).items():
            assert prop["default"][key] == sub["default"], f"{section}.{key}"


def test_train_schema_matches_the_train_config_dataclass():
    props = train_config.schema()["properties"]
    fields = {f.name: f.default for f in dataclasses.fields(train_config.TrainConfig)}
    assert fields == {k: p["default"] for k, p in props.items()}
    train_config.TrainConfig.from_dict({k: p["default"] for k, p in props.items()})


def test_the_cli_offers_the_runner_s_stages():
    assert CLI_STAGES == STAGE_NAMES


def test_print_recipe_shows_the_effective_recipe_which_reads_back_the_same(tmp_path, capsys):
    from lab_ci.cli import main

    f = _write(tmp_path, "generate: {seed: 7}\nphases:\n  - {name: only, data: [{source: knowledge}]}\n")
    assert main(["build", "--print-recipe", "--config", str(f)]) == 0
    printed = capsys.readouterr().out
    assert "seed: 7" in printed and "round_size: 8" in printed and "name: only" in printed
    again = _write(tmp_path, printed)
    assert load_config(again) == load_config(f)
    assert main(["build", "--print-recipe", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err == (
        f"lab-ci: error: {tmp_path / 'missing.yaml'}: cannot read the build recipe: No such file or directory (ENOENT)\n"
    )
