"""placement: a qna.yaml must sit inside a recognised taxonomy tree.

The first folder of the path (relative to the taxonomy root) must be one of the
taxonomy folders (``compositional_skills``, ``knowledge``), with at least one folder
below it naming the leaf, e.g. ``knowledge/science/chemistry/qna.yaml``. A file
elsewhere is never picked up by data generation, and its schema is guessed from its
contents.
"""

from __future__ import annotations

from collections.abc import Iterator

from lab_ci.check.rules.base import Problem, RuleContext
from lab_ci.check.rules.examples import SKILL

ID = "placement"
LEVEL = "warning"
SUMMARY = "a leaf outside the taxonomy folders, or directly in one"
PASSING = SKILL
FAILING = SKILL
EXAMPLE = {"failing_context": {"path": "docs/rhymes/qna.yaml"}}


def check(leaf, data, ctx: RuleContext) -> Iterator[Problem]:
    parts = leaf.path.split("/")
    folders = ctx.options.taxonomy_folders
    if parts[0] not in folders:
        yield Problem(
            f"qna.yaml is outside the taxonomy trees ({', '.join(f + '/' for f in folders)}); "
            "generation will not see it",
            hint="Move the leaf into compositional_skills/ (a skill) or knowledge/ (knowledge), in folders "
            "naming its topic, e.g. knowledge/astronomy/moon/qna.yaml.",
        )
    elif len(parts) < 3:
        yield Problem(
            f"qna.yaml sits directly in {parts[0]}/; put it in a folder naming the leaf",
            hint=f"Move it into a folder naming its topic, e.g. {parts[0]}/<topic>/qna.yaml.",
        )
