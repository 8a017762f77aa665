"""What a generation pipeline needs from a leaf: its kind and its own seed examples.

Reads every ``qna.yaml`` schema version (1-3): skills have ``seed_examples`` of
``question``/``answer`` (and ``context`` for grounded skills); knowledge leaves of
version 3 nest ``questions_and_answers`` under each seed ``context``, older ones list
``question``/``answer`` directly. Pure: takes bytes, returns values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import yaml

from ..taxonomy.leaf import LeafFile
from ..taxonomy.yamlsrc import load as load_leaf_yaml
from .errors import EmptyLeafError, SeedError


@dataclass(frozen=True, slots=True)
class SeedExample:
    id: str  # counted from 1, as a reader counts: "3" for the third skill seed example,
    # "2.1" for the first Q/A of the second knowledge context
    question: str
    answer: str
    context: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentRef:
    repo: str
    commit: str
    patterns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeafSeeds:
    path: str
    kind: str  # "knowledge" | "skill"
    task_description: str
    examples: tuple[SeedExample, ...]
    document: DocumentRef | None = None
    domain: str | None = None
    document_outline: str | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def grounded(self) -> bool:
        return self.kind == "skill" and any(e.context for e in self.examples)

    @property
    def default_pipeline(self) -> str:
        if self.kind == "knowledge":
            return "knowledge"
        return "grounded_skills" if self.grounded else "freeform_skills"

    def choose(self, rng: random.Random, k: int) -> list[SeedExample]:
        """k seed examples of this leaf only (local-leaf sampling), in a seeded order."""
        k = max(1, min(k, len(self.examples)))
        return rng.sample(list(self.examples), k)


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def parse_leaf(leaf: LeafFile) -> LeafSeeds:
    """The seeds of one leaf; :class:`SeedError` naming the file when there are none."""
    if leaf.data is None:
        raise SeedError(f"{leaf.path}: no file content to read seed examples from")
    try:
        doc = load_leaf_yaml(leaf.data)  # bounded: aliases, depth, size
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise SeedError(f"{leaf.path}: cannot read YAML: {e}") from None
    if not doc:  # what check calls empty (a warning there)
        raise EmptyLeafError(f"{leaf.path}: the file is empty: no seed examples to generate from")
    if not isinstance(doc, dict):
        raise SeedError(f"{leaf.path}: top level is not a mapping")
    kind = "knowledge" if leaf.path.startswith("knowledge/") else "skill"
    examples: list[SeedExample] = []
    for i, seed in enumerate(doc.get("seed_examples") or []):
        if not isinstance(seed, dict):
            continue
        context = _text(seed.get("context")) or None
        qas = seed.get("questions_and_answers")
        if isinstance(qas, list):
            for j, qa in enumerate(qas):
                if isinstance(qa, dict) and _text(qa.get("question")) and _text(qa.get("answer")):
                    examples.append(
                        SeedExample(f"{i + 1}.{j + 1}", _text(qa["question"]), _text(qa["answer"]), context)
                    )
        elif _text(seed.get("question")) and _text(seed.get("answer")):
            examples.append(SeedExample(str(i + 1), _text(seed["question"]), _text(seed["answer"]), context))
    if not examples:
        raise SeedError(f"{leaf.path}: seed_examples: no question/answer pairs to generate from")
    document = None
    d = doc.get("document")
    if kind == "knowledge" and isinstance(d, dict):
        patterns = d.get("patterns") or []
        if isinstance(patterns, str):
            patterns = [patterns]
        document = DocumentRef(
            repo=str(d.get("repo") or ""),
            commit=str(d.get("commit") or ""),
            patterns=tuple(str(p) for p in patterns),
        )
    task = _text(doc.get("task_description")) or _text(doc.get("document_outline"))
    if not task:
        task = leaf.leaf_dir.replace("/", " > ").replace("_", " ")
    return LeafSeeds(
        path=leaf.path,
        kind=kind,
        task_description=task,
        examples=tuple(examples),
        document=document,
        domain=_text(doc.get("domain")) or None,
        document_outline=_text(doc.get("document_outline")) or None,
        raw=doc,
    )
