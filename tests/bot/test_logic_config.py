"""`.github/lab-ci.yaml` parsing and validation (pure)."""

import pytest

from lab_ci.bot.config import DEFAULT, ConfigError, RepoConfig, parse


def test_no_file_or_empty_gives_defaults():
    assert parse("") == DEFAULT
    assert parse("# only a comment\n") == DEFAULT
    assert DEFAULT.approvers.permission == "maintain"
    assert DEFAULT.executor == "actions" and DEFAULT.workflow == "lab-ci-build-dispatch.yml"
    assert DEFAULT.samples == 3 and DEFAULT.max_samples == 10


def test_full_file():
    cfg = parse(
        """
version: 1
check:
  strict: true
  schema_version: 3
  paths: ["compositional_skills/**"]
preview:
  enabled: false
  teacher: tiny-q4
  samples: 2
  max_samples: 4
build:
  enabled: true
  approvers:
    permission: admin
    teams: [Release-Team, trainers]
  executor: local
  workflow: my-build.yaml
"""
    )
    assert cfg.strict and cfg.schema_version == 3 and cfg.paths == ("compositional_skills/**",)
    assert not cfg.preview_enabled and cfg.teacher == "tiny-q4"
    assert (cfg.samples, cfg.max_samples) == (2, 4)
    assert cfg.approvers.permission == "admin" and cfg.approvers.teams == ("release-team", "trainers")
    assert cfg.executor == "local" and cfg.workflow == "my-build.yaml"
    assert RepoConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("check: [1, 2\n", ".github/lab-ci.yaml:2:1: invalid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("version: 2\n", ":1:10: version: unsupported config version (this bot reads version 1), got 2"),
        ("flavour: x\n", ":1:1: flavour: unknown key"),
        ("check:\n  strict: yes-please\n", ':2:11: check.strict: must be true/false, got "yes-please"'),
        ("check:\n  stirct: true\n", ":2:3: check.stirct: unknown key (expected strict, schema_version, paths)"),
        ("check:\n  schema_version: 9\n", "must be one of 1, 2, 3, latest, declared, null, got 9"),
        ("preview:\n  samples: 12\n", ":2:12: preview.samples: must be from 1 to max_samples (10), got 12"),
        ("preview:\n  samples: 50\n", "preview.samples: must be from 1 to 20, got 50"),
        ("preview:\n  max_samples: 100\n", "preview.max_samples: must be from 1 to 20"),
        ("preview:\n  samples: true\n", "preview.samples: must be a whole number"),
        ("build:\n  approvers:\n    permission: god\n", ":3:17: build.approvers.permission: must be one of"),
        ("build:\n  approvers:\n    teams: team\n", "build.approvers.teams"),
        ("build:\n  approvers:\n    users: [me]\n", "build.approvers.users: unknown key"),
        ("build:\n  executor: kubernetes\n", "build.executor: must be one of actions, local"),
        ("build:\n  workflow: ../../evil.yml\n", "build.workflow: must be a workflow file name"),
        ("preview: 3\n", "preview: must be a mapping"),
    ],
)
def test_broken_config_names_file_line_and_key(text, fragment):
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert fragment in str(e.value)
    assert str(e.value).startswith(".github/lab-ci.yaml")


def test_config_error_is_a_labci_error():
    from lab_ci.errors import LabCIError

    assert issubclass(ConfigError, LabCIError)


# -- the JSON Schema behind it --------------------------------------------------------------
def _schema_keys(node, prefix=""):
    for key, sub in (node.get("properties") or {}).items():
        yield prefix + key, sub
        yield from _schema_keys(sub, prefix + key + ".")


def test_every_key_of_the_schema_has_a_description_and_the_default_the_code_uses():
    from lab_ci.bot.config import TEACHER_KEY, schema

    s = schema()
    keys = dict(_schema_keys(s))
    assert set(keys) >= {"version", "check.strict", "preview.teacher", "build.approvers.teams", "build.workflow"}
    for key, sub in keys.items():
        assert sub.get("description"), f"{key} has no description"
        assert "default" in sub, f"{key} has no default"
    defaults = {k: v["default"] for k, v in keys.items() if not isinstance(v["default"], dict)}
    built = parse("")  # no file: every default
    assert defaults["check.strict"] is built.strict and defaults["preview.samples"] == built.samples
    assert defaults["preview.max_samples"] == built.max_samples and defaults["build.executor"] == built.executor
    assert defaults["build.workflow"] == built.workflow
    assert defaults["build.approvers.permission"] == built.approvers.permission
    assert keys["preview.teacher"]["pattern"] == TEACHER_KEY.pattern


def test_every_problem_is_listed_in_file_order_with_line_and_column():
    text = "build:\n  executor: k8s\ncheck:\n  strict: maybe\n  bogus: 1\n"
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert str(e.value).splitlines() == [
        '.github/lab-ci.yaml:2:13: build.executor: must be one of actions, local, got "k8s"',
        '.github/lab-ci.yaml:4:11: check.strict: must be true/false, got "maybe"',
        ".github/lab-ci.yaml:5:3: check.bogus: unknown key (expected strict, schema_version, paths)",
    ]


def test_duplicate_keys_are_errors_not_silently_the_last_one():
    with pytest.raises(ConfigError, match=r":3:3: preview.samples: duplicate key|:3:3: samples: duplicate key"):
        parse("preview:\n  samples: 2\n  samples: 5\n")


def test_the_parse_is_bounded():
    import time

    from lab_ci.bot.config import MAX_BYTES, MAX_NODES

    names = "abcdefghij"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{n}: &{n} [" + ", ".join([f"*{p}"] * 10) + "]" for p, n in zip(names, names[1:])]
    bomb = "\n".join(lines) + "\ncheck:\n  paths: *j\n"
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as e:
        parse(bomb)
    assert time.monotonic() - t0 < 1.0
    assert f"more than {MAX_NODES} values" in str(e.value)
    with pytest.raises(ConfigError, match=f"the most lab-ci reads is {MAX_BYTES}"):
        parse("# " + "x" * MAX_BYTES + "\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        parse("check: " + "[" * 5000 + "]" * 5000 + "\n")
    # anchors and aliases within the bounds are fine
    ok = parse("build:\n  approvers:\n    teams: &t [a-team]\ncheck:\n  paths: *t\n")
    assert ok.approvers.teams == ("a-team",) and ok.paths == ("a-team",)
