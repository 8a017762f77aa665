"""attribution-empty: ``attribution.txt`` exists but says nothing.

A file holding only white space credits nobody.
"""

from __future__ import annotations

from collections.abc import Iterator

from lab_ci.check.rules.base import Problem, RuleContext
from lab_ci.check.rules.examples import SKILL

ID = "attribution-empty"
LEVEL = "warning"
SUMMARY = "attribution.txt says nothing"
PASSING = SKILL
FAILING = SKILL
EXAMPLE = {"failing_context": {"attribution": b"  \n"}}


def check(leaf, data, ctx: RuleContext) -> Iterator[Problem]:
    if leaf.attribution_kind == "file" and not (leaf.attribution or b"").strip():
        where = f"{leaf.leaf_dir}/attribution.txt" if leaf.leaf_dir else "attribution.txt"
        yield Problem(
            f"{where} is empty: credit the sources of this leaf there",
            hint="Write in it where the seed examples come from: the title, a link, the license and the creators "
            "of each source (`Title of work:`, `Link to work:`, `License of the work:`, `Creator names:`).",
        )
