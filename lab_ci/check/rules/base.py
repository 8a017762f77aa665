"""What a taxonomy rule receives and yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab_ci.check.options import CheckOptions
from lab_ci.taxonomy.limits import Related

if TYPE_CHECKING:
    import yaml


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of a rule; the engine turns it into a Diagnostic at the rule's level."""

    message: str
    line: int = 1
    column: int = 1
    yaml_path: str | None = None
    hint: str | None = None
    related: tuple[Related, ...] = ()


@dataclass(frozen=True)
class RuleContext:
    """The leaf as parsed once by the engine."""

    options: CheckOptions
    root: yaml.Node | None  # node tree with positions; None if the file did not parse
    schema_name: str  # "compositional_skills" or "knowledge"
    version: Any  # the schema version the file is checked against

    def at(self, *path) -> tuple[int, int]:
        """(line, column) of the node at ``path`` (keys and indexes)."""
        from lab_ci.taxonomy import yamlsrc

        return yamlsrc.position(yamlsrc.node_at(self.root, path))


def iter_questions(data: Any):
    """(question, json path elements, yaml path) for every question in the leaf."""
    if not isinstance(data, dict):
        return
    seeds = data.get("seed_examples")
    if not isinstance(seeds, list):
        return
    for i, ex in enumerate(seeds):
        if not isinstance(ex, dict):
            continue
        if isinstance(ex.get("question"), str):
            yield ex["question"], ("seed_examples", i, "question"), f".seed_examples[{i}].question"
        qas = ex.get("questions_and_answers")
        if isinstance(qas, list):
            for j, qa in enumerate(qas):
                if isinstance(qa, dict) and isinstance(qa.get("question"), str):
                    yield (
                        qa["question"],
                        ("seed_examples", i, "questions_and_answers", j, "question"),
                        f".seed_examples[{i}].questions_and_answers[{j}].question",
                    )
