"""duplicate-question: the same question asked twice in one leaf.

Questions are compared ignoring case and runs of white space. A repeated seed question
adds nothing for the teacher and weighs that example twice. Questions asked about
different contexts are different questions: a grounded skill asks "Summarize this
commit message" of several contexts, so for skills the context is part of what is
compared. Knowledge questions are about one document, so they are compared across all
of the leaf's contexts.
"""

from __future__ import annotations

from collections.abc import Iterator

from lab_ci.check.messages import place
from lab_ci.check.rules.base import Problem, RuleContext, iter_questions
from lab_ci.check.rules.examples import SKILL
from lab_ci.taxonomy.limits import Related

ID = "duplicate-question"
LEVEL = "warning"
SUMMARY = "the same question twice in one leaf"
PASSING = SKILL
FAILING = SKILL.replace("{question: A rhyme for star, answer: Car.}", "{question: A rhyme for CAT, answer: Mat.}")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def check(leaf, data, ctx: RuleContext) -> Iterator[Problem]:
    first: dict[tuple[str, str], tuple] = {}
    for question, path, ypath in iter_questions(data):
        if not _norm(question):
            continue
        context = data["seed_examples"][path[1]].get("context") if len(path) == 3 else None
        key = (_norm(question), _norm(context) if isinstance(context, str) else "")
        if key in first:
            line, col = ctx.at(*path)
            earlier = first[key]
            yield Problem(
                f"{place(path[:-1])} asks the same question as {place(earlier[:-1])}",
                line,
                col,
                ypath,
                hint="Ask something different here, or remove one of the two; a repeated question weighs its "
                "example twice and teaches nothing new.",
                related=(Related(*ctx.at(*earlier), "the same question, first asked here"),),
            )
        else:
            first[key] = path
