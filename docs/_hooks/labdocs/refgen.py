"""The generated reference pages: what the code can say about itself, it says here.

Each ``*_reference()`` function returns one Markdown page, built from the code at
``mkdocs build`` time (see ``docs/_hooks/hooks.py``): the command line from the argparse
parsers, check rules from the rule catalog, file formats from their JSON Schemas, the
bot's settings and metrics from the objects that read and export them, pipeline blocks
from the block registry and the packaged pipeline files. :data:`PAGES` maps each page's
path under ``docs/`` to its function.

The renderers take plain records (:class:`Setting`, :class:`MetricDoc`, :class:`RuleDoc`
or any object or mapping with those fields); the ``*_records()`` adapters read them
from today's code, so a change of where the code keeps them touches only an adapter.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import inspect
import json
import os
import re
import shlex
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from . import schema_md

REPO = Path(__file__).resolve().parents[3]

GENERATED_NOTE = (
    "<!-- Generated at build time by docs/_hooks/labdocs/refgen.py from the code: edit the code, not this page. -->"
)


# ----------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def reproducible_env() -> Iterator[None]:
    """No ``LAB_CI_*``/``XDG_*`` variables (parsers read some as defaults) and a fixed
    terminal width for argparse's usage lines, so every build writes the same page."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("LAB_CI_", "XDG_")) or k == "COLUMNS"}
    for k in saved:
        del os.environ[k]
    os.environ["COLUMNS"] = "100"
    try:
        yield
    finally:
        os.environ.pop("COLUMNS", None)
        os.environ.update(saved)  # nested use: the outer call restores its own saved values


def page(title: str, intro: str, *parts: str) -> str:
    """A generated page: the generated-file note, the title, an introduction, the parts."""
    return "\n\n".join([GENERATED_NOTE, f"# {title}", intro, *parts])


table = schema_md.markdown_table


def get(record: Any, name: str, default: Any = None) -> Any:
    """A field of a record that is a mapping or an object."""
    if isinstance(record, dict):
        return record.get(name, default)
    return getattr(record, name, default)


def rst_to_md(text: str) -> str:
    """Docstring markup (reStructuredText) to Markdown: ``x`` and :role:`~a.b` to code spans."""
    text = re.sub(r":\w+:`~([\w.]+\.)?([^`]+)`", r"`\2`", text)
    text = re.sub(r":\w+:`([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def docstring(obj: Any) -> str:
    return rst_to_md(inspect.cleandoc(obj.__doc__ or "")) if obj is not None else ""


def cell(text: Any) -> str:
    """Text for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def display(value: Any) -> str:
    """A default value as an operator reads it."""
    if value is None:
        return "unset"
    if value is True:
        return "on"
    if value is False:
        return "off"
    if isinstance(value, (tuple, list)):
        if not value:
            return "none"
        words = ["python" if v == sys.executable else str(v) for v in value]
        return f"`{shlex.join(words)}`" if all(isinstance(v, str) for v in value) else f"`{words}`"
    if isinstance(value, bytes):
        return "set"
    return f"`{value}`"


# ----------------------------------------------------------------------------- CLI


def _option_name(action: argparse.Action) -> str:
    if action.option_strings:
        return ", ".join(f"`{s}`" for s in action.option_strings)
    name = action.metavar or action.dest
    suffix = {"*": " ...", "+": " ...", "?": ""}.get(action.nargs, "")
    return f"`{name}{suffix}`"


def _option_value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        return f"`{action.metavar}`" if action.option_strings else ""
    if action.choices:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    return f"`{action.dest.upper()}`" if action.option_strings else ""


def _option_default(action: argparse.Action) -> str:
    if isinstance(action, argparse._StoreTrueAction):
        return "off"
    if isinstance(action, argparse._StoreFalseAction):
        return "on"
    default = action.default
    if default in (None, "", argparse.SUPPRESS) or (isinstance(default, list) and not default):
        return ""
    if isinstance(default, Path):
        default = str(default)
    return f"`{default}`"


def _option_help(parser: argparse.ArgumentParser, action: argparse.Action, groups: dict) -> str:
    """The option's help as written, then what the parser adds: required, choices, repeatable, exclusive."""
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    notes = []
    if action.option_strings and action.required:
        notes.append("Required.")
    if action.choices and action.metavar is not None:
        notes.append("One of " + ", ".join(f"`{c}`" for c in action.choices) + ".")
    repeatable = isinstance(action, (argparse._AppendAction, argparse._CountAction)) and action.option_strings
    if repeatable and "repeatable" not in text.lower():
        notes.append("Repeatable.")
    others = [o for o in groups.get(id(action), ()) if o is not action]
    if others:
        notes.append("Not together with " + ", ".join(f"`{o.option_strings[0]}`" for o in others) + ".")
    if text and notes and not text.endswith("."):
        text += "."
    return " ".join([text, *notes]).strip()


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            out += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return out


def parser_section(parser: argparse.ArgumentParser, title: str, *, summary: str = "", level: int = 2) -> str:
    """One command: heading, description, usage, a table of options, sub-commands, epilog."""
    anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    parts = [f"{'#' * level} `{title}` {{ #{anchor} }}"]
    if summary:
        parts.append(summary[:1].upper() + summary[1:].rstrip(".") + ".")
    if parser.description and parser.description != summary:
        parts.append(parser.description)
    parts.append("```text\n" + parser.format_usage().strip() + "\n```")
    groups: dict[int, list] = {}
    for group in parser._mutually_exclusive_groups:
        for action in group._group_actions:
            groups[id(action)] = group._group_actions
    rows = [
        [_option_name(a), _option_value(a), _option_default(a), cell(_option_help(parser, a, groups))]
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and a.help != argparse.SUPPRESS
    ]
    if rows:
        parts.append(table(["Option", "Value", "Default", "Description"], rows))
    subs = _subcommands(parser)
    if subs:
        parts.append(
            table(["Command", "What it does"], [[f"[`{title} {n}`](#{anchor}-{n})", cell(h)] for n, h, _ in subs])
        )
    if parser.epilog:
        parts.append(parser.epilog[:1].upper() + parser.epilog[1:] + ("" if parser.epilog.endswith(".") else "."))
    return "\n\n".join(parts)


def cli_parsers() -> list[tuple[str, str, argparse.ArgumentParser]]:
    """``(title, summary, parser)`` of every command: ``lab-ci``, each sub-command, and
    the training entry point ``python -m lab_ci.train.run``."""
    with reproducible_env():
        from lab_ci.cli import build_parser

        top = build_parser()
        out = [("lab-ci", "", top)]
        out += [(f"lab-ci {name}", summary, sub) for name, summary, sub in _subcommands(top)]
        train = importlib.import_module("lab_ci.train.run")
        if hasattr(train, "build_parser"):
            out.append((train.build_parser().prog, "", train.build_parser()))
    return out


def cli_reference() -> str:
    with reproducible_env():  # argparse reads the terminal width when it formats usage
        sections = [parser_section(p, title, summary=summary) for title, summary, p in cli_parsers()]
    return page(
        "Command line",
        "Every command and option of `lab-ci`, read from its argparse parsers when this site "
        "was built (`lab-ci COMMAND --help` prints the same). Options that read an environment "
        "variable say so; the bot's variables are in [bot settings](bot-settings.md). "
        "Commands print `lab-ci: error: ...` and exit 2 on a usage error, never a traceback "
        "(`LAB_CI_DEBUG=1` shows one for an internal error).",
        *sections,
    )


# ----------------------------------------------------------------------------- check rules


@dataclass
class RuleDoc:
    id: str
    source: str
    level: str
    summary: str
    description: str = ""
    passing: Any = None
    failing: Any = None


def rule_records() -> list[RuleDoc]:
    """Every diagnostic the checker documents: ``lab_ci.check.catalog.rule_docs()``."""
    from lab_ci.check.catalog import rule_docs

    return [RuleDoc(**{f.name: get(r, f.name, f.default) for f in dataclasses.fields(RuleDoc)}) for r in rule_docs()]


def _full_id(rule: RuleDoc) -> str:
    return rule.id if "/" in rule.id else f"{rule.source}/{rule.id}"


def _examples(title: str, value: Any) -> list[str]:
    if not value:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [f"{title}:", *(f"```yaml\n{str(v).rstrip()}\n```" for v in items)]


def rules_reference(records: Iterable[Any] | None = None) -> str:
    rules = [r if isinstance(r, RuleDoc) else RuleDoc(**{f.name: get(r, f.name) for f in dataclasses.fields(RuleDoc)})
             for r in (rule_records() if records is None else records)]  # fmt: skip
    by_source: dict[str, list[RuleDoc]] = {}
    for r in rules:
        by_source.setdefault(r.source, []).append(r)
    index = []
    body = []
    for source, items in by_source.items():
        body.append(f"## Source `{source}`")
        for r in items:
            full = _full_id(r)
            anchor = full.replace("/", "-")
            index.append([f"[`{full}`](#{anchor})", r.level, cell(r.summary)])
            body += [f"### `{full}` {{ #{anchor} }}", f"**Level:** {r.level}. {r.summary[:1].upper() + r.summary[1:]}"]
            if r.description:
                body.append(r.description)
            body += _examples("Passes", r.passing) + _examples("Fails", r.failing)
    return page(
        "Check rules",
        "Every rule `lab-ci check` applies, with its id (`source/rule`, as printed in every "
        "report), its level, and what it catches, read from the checker's code when this site "
        "was built. Warnings never change the verdict unless `--strict` is given. How a leaf "
        "is checked, and how lab-ci differs from the reference validator: "
        "[what is checked](../contributors/what-is-checked.md).",
        table(["Rule", "Level", "What it catches"], index),
        *body,
    )


# ----------------------------------------------------------------------------- qna.yaml


def schema_dir() -> Path:
    return Path(str(files("lab_ci") / "schemas"))


_FOLDER_TITLES = {"compositional_skills": "Skill leaf", "knowledge": "Knowledge leaf"}
_EXAMPLES = {
    "compositional_skills": "taxonomy/compositional_skills/linguistics/antonyms/qna.yaml",
    "knowledge": "taxonomy/knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml",
}


def qna_reference() -> str:
    root = schema_dir()
    versions = sorted((int(p.name[1:]) for p in root.glob("v[0-9]*") if p.is_dir()), reverse=True)
    parts = [
        "The keys a leaf's `qna.yaml` may hold, for every format version, generated from the "
        "JSON Schemas `lab-ci check` validates against (`schemas/v<N>/`). A file under "
        "`knowledge/` is a knowledge leaf, any other a skill leaf (a skill whose seed examples "
        "have a `context` is a *grounded* skill). Files are checked against the newest version "
        "by default; `lab-ci check --schema-version declared` uses the `version:` each file "
        "declares. Beside the `qna.yaml`, an `attribution.txt` credits the sources. What else "
        "is checked: [check rules](rules.md).",
    ]
    for v in versions:
        parts.append(f"## Version {v}")
        for path in sorted((root / f"v{v}").glob("*.json")):
            if path.stem == "version":
                continue
            schema, resolver = schema_md.load(path)
            title = _FOLDER_TITLES.get(path.stem, path.stem)
            parts += [f"### {title} (version {v}) {{ #v{v}-{path.stem} }}", schema_md.to_markdown(schema, resolver)]
            example = REPO / _EXAMPLES.get(path.stem, "-")
            if v == versions[0] and example.is_file():
                text = example.read_text(encoding="utf-8").rstrip()
                parts.append(
                    f'??? example "Example: `{example.relative_to(REPO)}`"\n\n'
                    + textwrap.indent(f"```yaml\n{text}\n```", "    ")
                )
    return page("Taxonomy format: `qna.yaml`", *parts)


def schema_page(title: str, intro: str, schema_path: str | Path) -> str:
    """A reference page for any configuration file described by a JSON Schema."""
    schema, resolver = schema_md.load(schema_path)
    return page(title, intro, schema_md.to_markdown(schema, resolver))


def repo_config_reference() -> str:
    return schema_page(
        "Repository configuration (.github/lab-ci.yaml)",
        "The keys of a taxonomy repository's `.github/lab-ci.yaml`, which the bot reads from "
        "the default branch only, generated from the JSON Schema it is validated against "
        "(`lab_ci/bot/repo-config.schema.json`). How approvals and builds use them: "
        "[approvals and configuration](../maintainers/approvals.md).",
        Path(str(files("lab_ci"))) / "bot" / "repo-config.schema.json",
    )


def build_recipe_reference() -> str:
    return schema_page(
        "Build recipe",
        "The keys of a `lab-ci build --config` recipe, generated from the JSON Schema it is "
        "validated against (`lab_ci/builds/recipe.schema.json`). A recipe is merged into the "
        "defaults key by key; `lab-ci build --print-recipe` prints the effective one. The "
        "`train` key takes the [training options](training-options.md). How builds run: "
        "[building a release](../maintainers/builds.md).",
        Path(str(files("lab_ci"))) / "builds" / "recipe.schema.json",
    )


def training_options_reference() -> str:
    return schema_page(
        "Training options",
        "The options of a training run (a recipe's `train` key, `python -m lab_ci.train.run "
        "--set KEY=VALUE`), generated from `lab_ci/train/config.schema.json`. How training "
        "works: [training](../maintainers/training.md).",
        Path(str(files("lab_ci"))) / "train" / "config.schema.json",
    )


# ----------------------------------------------------------------------------- pipelines


def pipeline_blocks_reference() -> str:
    from lab_ci.sdg import pipeline as P
    from lab_ci.sdg.blocks import BLOCK_TYPES

    schema = json.loads(Path(P.SCHEMA_PATH).read_text(encoding="utf-8"))
    resolver = schema_md.resolver_for(schema)
    configs: dict[str, Any] = {}
    for cond, then, res in schema_md.conditional_branches(schema["$defs"]["block"], resolver):
        block_type = cond.get("properties", {}).get("type", {}).get("const")
        configs[block_type] = (then.get("properties", {}).get("config", {}), res)
    parts = [
        "A generation pipeline is a YAML file: a list of small blocks, each a type from the "
        "registry below with its `config`. Files are validated against "
        "`lab_ci/sdg/pipeline.schema.json` when loaded. This page is generated from the block "
        "registry (`lab_ci.sdg.blocks.BLOCK_TYPES`), that schema and the packaged pipeline "
        "files; how to override them and how the method compares with instructlab-sdg: "
        "[generation pipelines](../developers/pipelines.md).",
        "## Pipeline file",
        schema_md.to_markdown({k: v for k, v in schema.items() if k != "description"}, resolver),
        "## Block types",
    ]
    for name, cls in BLOCK_TYPES.items():
        parts += [f"### `{name}` {{ #block-{name} }}", docstring(cls)]
        config, res = configs.get(name, ({}, resolver))
        rows = schema_md.rows(config, res)
        parts.append(f"`config` keys:\n\n{schema_md.table(rows)}" if rows else "No `config` keys.")
    parts.append("## Packaged pipelines")
    for name in P.BUILTIN_NAMES:
        pipe = P.load_pipeline_file(P.BUILTIN_PIPELINES / f"{name}.yaml")
        rows = []
        for i, b in enumerate(pipe.blocks, 1):
            settings = ", ".join(f"`{k}`: {_short(v)}" for k, v in b.config.items() if k != "fields")
            if "fields" in b.config:
                settings += (", " if settings else "") + "fields " + ", ".join(f"`{f}`" for f in b.config["fields"])
            rows.append([str(i), f"`{b.name}`", f"[`{b.type}`](#block-{b.type})", cell(settings)])
        parts += [
            f"### `{name}` {{ #pipeline-{name} }}",
            f"{pipe.description} Version `{pipe.version}` (`lab_ci/sdg/pipelines/{name}.yaml`).",
            table(["#", "Block", "Type", "Settings"], rows, align="|---:|---|---|---|"),
        ]
    return page("Pipeline blocks", *parts)


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return f"`{text[: limit - 1]}…`" if len(text) > limit else f"`{text}`"


# ----------------------------------------------------------------------------- bot settings


@dataclass
class Setting:
    name: str
    env: str | None
    default: Any
    description: str
    flag: str | None = None
    secret: bool = False


def bot_setting_records() -> list[Setting]:
    """The settings of ``lab-ci serve`` (``lab_ci.bot.settings.settings_fields()``), with
    the ``serve`` flag that overrides each, where there is one."""
    from lab_ci.bot.settings import settings_fields

    flags = {}
    for title, _, parser in cli_parsers():
        if title == "lab-ci serve":
            for a in parser._actions:
                if a.option_strings:
                    flags[a.dest] = a.option_strings[0]
                    for env in re.findall(r"\$(LAB_CI_\w+)", a.help or ""):
                        flags[env] = a.option_strings[0]
    return [
        Setting(
            f.name,
            f.env,
            f.default if f.literal else None,
            f.help if f.literal else f"{f.help} (default: {f.default})",
            flags.get(f.name) or flags.get(f.env),
            f.secret,
        )
        for f in settings_fields()
    ]


def bot_settings_reference(records: Iterable[Any] | None = None) -> str:
    records = bot_setting_records() if records is None else list(records)
    rows = []
    for r in records:
        env, flag = get(r, "env"), get(r, "flag")
        text = get(r, "description") or ""
        if get(r, "secret"):
            text = "**Secret.** " + text
        rows.append([f"`{env}`" if env else "", f"`{flag}`" if flag else "", display(get(r, "default")), text])
    return page(
        "Bot settings",
        "Every setting of `lab-ci serve`, read from the settings objects of the bot's code "
        "when this site was built. Each is an environment variable; a `lab-ci serve` flag, "
        "where there is one, overrides it. Secrets are never logged: the start-up log line "
        "only says whether each is set. How to deploy the bot: [deploying the bot]"
        "(../operators/deploy.md); a repository's own `.github/lab-ci.yaml`: "
        "[approvals and configuration](../maintainers/approvals.md).",
        table(["Variable", "`lab-ci serve` flag", "Default", "Description"], [[cell(c) for c in r] for r in rows]),
    )


# ----------------------------------------------------------------------------- metrics


@dataclass
class MetricDoc:
    name: str
    type: str
    labels: tuple[str, ...]
    help: str


def metric_records() -> list[MetricDoc]:
    """Every metric ``GET /metrics`` exports, as the bot declares them
    (``lab_ci.bot.metrics.metric_families()``)."""
    from lab_ci.bot.metrics import metric_families

    return [MetricDoc(m.name, m.type, tuple(m.labels), m.help) for m in metric_families()]


def metrics_reference(records: Iterable[Any] | None = None) -> str:
    records = metric_records() if records is None else list(records)
    rows = []
    for r in records:
        name, kind = get(r, "name"), get(r, "type")
        shown = f"{name}_total" if kind == "counter" and not name.endswith("_total") else name
        labels = ", ".join(f"`{label}`" for label in get(r, "labels") or ())
        rows.append([f"`{shown}`", kind, labels, cell(get(r, "help") or "")])
    return page(
        "Metrics",
        "Every metric `lab-ci serve` exports on `GET /metrics` (Prometheus text format), read "
        "from the bot's code when this site was built. Histograms also export `_bucket`, "
        "`_sum` and `_count` series. What to watch and alert on: "
        "[metrics and alerts](../operators/metrics.md).",
        table(["Metric", "Type", "Labels", "Meaning"], rows),
    )


# ----------------------------------------------------------------------------- pages

#: page under docs/ -> its generator. Add new generated pages here
#: (and to docs/reference/index.md and the nav of mkdocs.yml).
PAGES: dict[str, Callable[[], str]] = {
    "reference/cli.md": cli_reference,
    "reference/rules.md": rules_reference,
    "reference/qna-yaml.md": qna_reference,
    "reference/pipeline-blocks.md": pipeline_blocks_reference,
    "reference/repo-config.md": repo_config_reference,
    "reference/build-recipe.md": build_recipe_reference,
    "reference/training-options.md": training_options_reference,
    "reference/bot-settings.md": bot_settings_reference,
    "reference/metrics.md": metrics_reference,
}


def generate() -> dict[str, str]:
    """Every generated page: path under ``docs/`` -> Markdown."""
    return {uri: make() for uri, make in PAGES.items()}
