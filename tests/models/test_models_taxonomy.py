"""The example taxonomy is valid under schema version 3 with zero errors and zero
warnings, judged by the reference oracle (instructlab-schema, yamllint relaxed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from labtest import EXAMPLE_TAXONOMY

LEAVES = sorted(EXAMPLE_TAXONOMY.rglob("qna.yaml"))


def _kind(path: Path) -> str:
    rel = path.relative_to(EXAMPLE_TAXONOMY)
    if rel.parts[0] == "knowledge":
        return "knowledge"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    grounded = all("context" in ex for ex in data["seed_examples"])
    return "grounded" if grounded else "freeform"


def test_models_taxonomy_has_the_promised_leaves():
    kinds = [_kind(p) for p in LEAVES]
    assert kinds.count("freeform") >= 3
    assert kinds.count("grounded") >= 1
    assert kinds.count("knowledge") >= 2
    for leaf in LEAVES:
        attribution = (leaf.parent / "attribution.txt").read_text(encoding="utf-8")
        for field in ("Title of work:", "Link to work:", "Revision:", "License of the work:", "Creator names:"):
            assert field in attribution, f"{leaf.parent}/attribution.txt lacks {field}"


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda p: str(p.relative_to(EXAMPLE_TAXONOMY).parent))
def test_models_taxonomy_leaf_is_clean_for_the_reference_oracle(leaf: Path, monkeypatch):
    from instructlab.schema.taxonomy import TaxonomyParser

    # the oracle shells out to yamllint: make the venv's copy findable
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = TaxonomyParser(message_format="standard").parse(leaf)
    assert result.version == 3
    assert (result.errors, result.warnings) == (0, 0)
