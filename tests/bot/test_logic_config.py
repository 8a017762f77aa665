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
        ("version: 2\n", "version: unsupported config version 2"),
        ("flavour: x\n", ":1: flavour: unknown key"),
        ("check:\n  strict: yes-please\n", ":2: check.strict: must be true/false"),
        ("check:\n  stirct: true\n", ":2: check.stirct: unknown key"),
        ("check:\n  schema_version: 9\n", "must be 1, 2, 3"),
        ("preview:\n  samples: 50\n", "preview.samples: must be from 1 to max_samples"),
        ("preview:\n  max_samples: 100\n", "preview.max_samples: must be from 1 to 20"),
        ("preview:\n  samples: true\n", "preview.samples: must be a whole number"),
        ("build:\n  approvers:\n    permission: god\n", ":3: build.approvers.permission: must be one of"),
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
