"""The reference pages generated from the code: nothing the code declares is left out,
and the renderers work on the generic records other parts of the code will hand them."""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
from pathlib import Path

import pytest
from labdocs import refgen, schema_md

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return refgen.generate()


# ------------------------------------------------------------------ JSON Schema tables


def test_schema_tables_flatten_refs_arrays_maps_and_alternatives(tmp_path):
    (tmp_path / "common.json").write_text(
        json.dumps({"properties": {"version": {"type": "integer", "const": 2, "description": "Format."}}}),
        encoding="utf-8",
    )
    (tmp_path / "main.json").write_text(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": "./common.json",
                "description": "A config file.",
                "type": "object",
                "required": ["name", "items"],
                "unevaluatedProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "Who."},
                    "mode": {"enum": ["fast", "slow"], "default": "fast"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 64, "default": 8},
                    "items": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/item"}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "end": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    "env": {"type": "object", "patternProperties": {"^LAB_": {"type": "string", "examples": ["x"]}}},
                },
                "$defs": {
                    "item": {
                        "type": "object",
                        "required": ["path"],
                        "properties": {"path": {"type": "string", "description": "Where."}},
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    schema, resolver = schema_md.load(tmp_path / "main.json")
    rows = {r.key: r for r in schema_md.rows(schema, resolver)}
    assert list(rows) == [
        *("version", "name", "mode", "limit", "items", "items[].path", "labels", "end", "env"),
        "env.<name matching ^LAB_>",
    ]
    assert rows["env.<name matching ^LAB_>"].rules == ["Example: `x`."]
    assert rows["version"].rules == ["Must be `2`."] and rows["version"].description == "Format."
    assert rows["name"].required and rows["name"].rules == ["Not empty."]
    assert rows["mode"].type == "string" and rows["mode"].default == "fast"
    assert rows["limit"].rules == ["From 1 to 64."]
    assert rows["items"].type == "array of object" and rows["items"].rules == ["At least 2 items."]
    assert rows["items[].path"].required and rows["items[].path"].description == "Where."
    assert rows["labels"].type == "mapping of names to string"
    assert rows["end"].type == "string or array of string"
    page = schema_md.to_markdown(schema, resolver)
    assert page.startswith("A config file.")
    assert "| `mode` | string | no | `fast` |" in page
    assert page.rstrip().endswith("Keys not listed here are an error.")


def test_a_retired_schema_says_so():
    page = schema_md.to_markdown({"deprecated": True, "description": "Use version 3.", "properties": {"a": {}}})
    assert page.startswith('!!! warning "Retired"\n    Use version 3.')


def test_the_qna_page_documents_every_key_of_every_schema(pages):
    page = pages["reference/qna-yaml.md"]
    root = refgen.schema_dir()
    for path in sorted(root.glob("v*/*.json")):
        if path.stem == "version":
            continue
        schema, resolver = schema_md.load(path)
        for row in schema_md.rows(schema, resolver):
            assert f"| `{row.key}` |" in page, f"{path}: {row.key}"
        assert f"#v{path.parent.name[1:]}-{path.stem}" in page


# ------------------------------------------------------------------ command line


def test_every_command_and_option_is_on_the_cli_page(pages):
    page = pages["reference/cli.md"]
    parsers = refgen.cli_parsers()
    titles = [title for title, _, _ in parsers]
    assert {"lab-ci", "lab-ci check", "lab-ci preview", "lab-ci build", "lab-ci serve"} <= set(titles)
    assert "python -m lab_ci.train.run" in titles
    for title, _, parser in parsers:
        assert f"## `{title}`" in page
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            for flag in action.option_strings or [action.metavar or action.dest]:
                assert f"`{flag}" in page, f"{title}: {flag}"


def test_cli_defaults_do_not_depend_on_the_environment(monkeypatch):
    monkeypatch.setenv("LAB_CI_TEACHER", "/secret/path/teacher.gguf")
    monkeypatch.setenv("COLUMNS", "20")
    page = refgen.cli_reference()
    assert "/secret/path" not in page
    assert "usage: lab-ci check [-h] [--taxonomy DIR] [--base REV] [--head REV]" in page


def test_an_option_row_shows_value_default_and_constraints():
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--level", choices=("a", "b"), metavar="L", default="a", help="how much")
    parser.add_argument("--add", action="append", default=[], help="add one")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--on", action="store_true", help="switch on")
    group.add_argument("--off", action="store_true", help="switch off")
    section = refgen.parser_section(parser, "tool")
    assert "| `--level` | `L` | `a` | how much. One of `a`, `b`. |" in section
    assert "| `--add` | `ADD` |  | add one. Repeatable. |" in section
    assert "| `--on` |  | off | switch on. Not together with `--off`. |" in section


# ------------------------------------------------------------------ rules


def test_rules_page_lists_every_rule_module(pages):
    from lab_ci.check.rules import RULES

    page = pages["reference/rules.md"]
    ids = {r.id for r in refgen.rule_records()}
    for rule_id, module in RULES.items():
        assert rule_id in ids or f"taxonomy/{rule_id}" in ids
        assert f"`{module.LEVEL}`" in page or f"**Level:** {module.LEVEL}" in page


def test_rules_page_renders_any_catalog_record_shape(monkeypatch):
    catalog = types.ModuleType("lab_ci.check.catalog")
    catalog.rule_docs = lambda: [
        {
            "id": "file-too-large",
            "source": "yaml",
            "level": "error",
            "summary": "the file is larger than the limit",
            "description": "Not parsed.",
            "passing": "version: 3\n",
            "failing": ["x" * 5],
        },
        types.SimpleNamespace(
            id="taxonomy/placement",
            source="taxonomy",
            level="warning",
            summary="outside the taxonomy trees",
            description="",
            passing=None,
            failing=None,
        ),
    ]
    monkeypatch.setitem(sys.modules, "lab_ci.check.catalog", catalog)
    page = refgen.rules_reference()
    assert "### `yaml/file-too-large` { #yaml-file-too-large }" in page
    assert "Passes:\n\n```yaml\nversion: 3\n```" in page and "Fails:\n\n```yaml\nxxxxx\n```" in page
    assert "[`taxonomy/placement`](#taxonomy-placement) | warning | outside the taxonomy trees |" in page
    assert page.index("## Source `yaml`") < page.index("## Source `taxonomy`")


# ------------------------------------------------------------------ bot settings, metrics, blocks


def test_settings_render_from_any_record_shape():
    page = refgen.bot_settings_reference(
        [
            {"name": "workers", "env": "LAB_CI_WORKERS", "default": 2, "description": "threads", "flag": "--workers"},
            types.SimpleNamespace(name="secret", env="LAB_CI_SECRET", default=None, description="key", secret=True),
        ]
    )
    assert "| `LAB_CI_WORKERS` | `--workers` | `2` | threads |" in page
    assert "| `LAB_CI_SECRET` |  | unset | **Secret.** key |" in page


def test_every_bot_setting_of_the_code_is_on_the_settings_page(pages):
    from lab_ci.bot import settings

    page = pages["reference/bot-settings.md"]
    for f in settings.settings_fields():
        assert f"| `{f.env}` |" in page
    for env in ("LAB_CI_TEACHERS", "LAB_CI_APP_SLUG", "LAB_CI_GITHUB_RETRIES"):
        assert f"| `{env}` |" in page
    records = {r.env: r for r in refgen.bot_setting_records()}
    assert records["LAB_CI_WORKERS"].flag == "--workers" and records["LAB_CI_DB"].flag == "--db"
    assert records["LAB_CI_WEBHOOK_SECRET"].secret and records["LAB_CI_WEBHOOK_SECRET"].description
    assert "python -m lab_ci build" in page and sys.executable not in page


def test_every_exported_metric_is_on_the_metrics_page(pages):
    page = pages["reference/metrics.md"]
    records = refgen.metric_records()
    names = {r.name for r in records}
    assert {"labci_webhook_deliveries_received", "labci_jobs", "labci_queue_depth", "labci_workers_alive"} <= names
    assert next(r for r in records if r.name == "labci_jobs").labels == ("kind", "state")
    for r in records:
        assert f"`{r.name}" in page


def test_counters_are_shown_with_their_total_suffix():
    records = [
        refgen.MetricDoc("x", "counter", ("kind",), "Things."),
        refgen.MetricDoc("y_seconds", "histogram", (), "Time."),
    ]
    page = refgen.metrics_reference(records)
    assert "| `x_total` | counter | `kind` | Things. |" in page
    assert "| `y_seconds` | histogram |  | Time. |" in page


def test_every_block_type_and_packaged_pipeline_is_documented(pages):
    from lab_ci.sdg import pipeline
    from lab_ci.sdg.blocks import BLOCK_TYPES

    page = pages["reference/pipeline-blocks.md"]
    for name in BLOCK_TYPES:
        assert f"### `{name}` {{ #block-{name} }}" in page
    for name in pipeline.BUILTIN_NAMES:
        assert f"### `{name}` {{ #pipeline-{name} }}" in page
        assert pipeline.load_pipeline(name).version in page
    assert "| `fields.<name>.start` | string | no |" in page


# ------------------------------------------------------------------ the docs against the code

HAND_WRITTEN = [p for p in (REPO / "docs").rglob("*.md") if "_hooks" not in p.parts]


def _code_strings(pattern: str, folders=("lab_ci",)) -> set[str]:
    found = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".yml", ".yaml", ".sh"):
                found |= set(re.findall(pattern, path.read_text(encoding="utf-8")))
    return found


def test_every_environment_variable_the_code_reads_is_documented(pages):
    docs = "\n".join(p.read_text(encoding="utf-8") for p in HAND_WRITTEN) + "\n".join(pages.values())
    undocumented = sorted(v for v in _code_strings(r"[\"'](LAB_CI_[A-Z0-9_]+)[\"']") if v not in docs)
    assert not undocumented, f"environment variables with no documentation: {undocumented}"


def test_every_variable_and_metric_named_in_the_docs_exists():
    text = "\n".join(p.read_text(encoding="utf-8") for p in HAND_WRITTEN)
    code = _code_strings(r"LAB_CI_[A-Z0-9_]+", ("lab_ci", "scripts", "tests", "examples", "benchmarks"))
    stale = sorted(v for v in set(re.findall(r"\bLAB_CI_[A-Z0-9_]*[A-Z0-9]\b", text)) - code)
    assert not stale, f"documented variables the code does not read: {stale}"
    exported = {r.name for r in refgen.metric_records()}
    named = set(re.findall(r"\blabci_[a-z_]+[a-z]\b", text))
    unknown = sorted(
        n for n in named if re.sub(r"_(total|bucket|sum|count)$", "", n) not in exported and n not in exported
    )
    assert not unknown, f"metrics named in the docs that the bot does not export: {unknown}"
