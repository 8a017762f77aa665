"""attribution-missing: every leaf needs an ``attribution.txt`` beside its qna.yaml.

The community taxonomy asks each contribution to credit its sources (title, link,
license) in ``attribution.txt`` in the same folder.
"""

from __future__ import annotations

from collections.abc import Iterator

from lab_ci.check.rules.base import Problem, RuleContext
from lab_ci.check.rules.examples import SKILL

ID = "attribution-missing"
LEVEL = "warning"
SUMMARY = "no attribution.txt beside the qna.yaml"
PASSING = SKILL
FAILING = SKILL
EXAMPLE = {"failing_context": {"attribution": None}}
HINT = (
    "Add attribution.txt next to qna.yaml saying where the seed examples come from: the title, a link, "
    "the license and the creators of each source (`Title of work:`, `Link to work:`, `License of the work:`, "
    "`Creator names:`)."
)


def check(leaf, data, ctx: RuleContext) -> Iterator[Problem]:
    where = f"{leaf.leaf_dir}/attribution.txt" if leaf.leaf_dir else "attribution.txt"
    if leaf.attribution_kind == "missing":
        yield Problem(f"{where} is missing: credit the sources of this leaf there", hint=HINT)
    elif leaf.attribution_kind != "file":
        yield Problem(
            f"{where} is a {leaf.attribution_kind}, not a regular file",
            hint="Replace it with a plain text file. " + HINT,
        )
