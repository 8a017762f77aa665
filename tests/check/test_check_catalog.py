"""The rule catalog (lab_ci.check.catalog.rule_docs): every rule documented, every
example true. The docs helper generates the rules reference page from it."""

from __future__ import annotations

import pytest
import yaml

from lab_ci.check import CheckOptions, check_leaf
from lab_ci.check.catalog import rule_docs, rule_summary
from lab_ci.check.documents import DocumentFinding
from lab_ci.check.rules import RULES
from lab_ci.taxonomy.leaf import LeafFile

DOCS = rule_docs()


class _MoonOnly:
    """The document repository of the examples holds moon.md and nothing else."""

    def verify(self, ref):
        return [
            DocumentFinding("patterns", f"`{p}` matches no file at that commit", "Fix the pattern.", index=i)
            for i, p in enumerate(ref.patterns)
            if p != "moon.md"
        ]


def run(doc, text, context=None):
    context = context or {}
    data = text.encode() if isinstance(text, str) else text
    kind = context.get("kind", "file")
    attribution = context.get("attribution", doc.attribution)
    leaf = LeafFile(
        path=context.get("path", doc.path),
        data=data if kind == "file" else None,
        kind=kind,
        attribution=attribution,
        attribution_kind="file" if attribution is not None else "missing",
    )
    verifier = _MoonOnly() if doc.rule == "document-fetch" else None
    return check_leaf(leaf, CheckOptions(**doc.options), verifier)


def test_records_are_complete_and_ids_unique():
    ids = [d.id for d in DOCS]
    assert len(ids) == len(set(ids)) >= 45
    for d in DOCS:
        assert d.id == f"{d.source}/{d.rule}" and d.source in ("yaml", "yamllint", "schema", "taxonomy")
        assert d.level in ("error", "warning") and d.summary and d.description, d.id
        assert d.passing is not None and (d.failing is not None or d.id == "yaml/internal"), d.id
    assert {f"taxonomy/{r}" for r in RULES} <= set(ids)
    assert rule_summary("schema", "required") == "a required field is missing" and rule_summary("x", "y") is None


@pytest.mark.parametrize("doc", DOCS, ids=[d.id for d in DOCS])
def test_passing_example_is_clean(doc):
    yaml.load(doc.passing, Loader=yaml.SafeLoader)  # the reference's reader takes it too
    result = run(doc, doc.passing)
    assert result.diagnostics == [], [(d.rule, d.message) for d in result.diagnostics]


@pytest.mark.parametrize("doc", [d for d in DOCS if d.failing is not None], ids=[d.id for d in DOCS if d.failing])
def test_failing_example_yields_that_rule_and_no_other(doc):
    result = run(doc, doc.failing, doc.failing_context)
    found = {(d.source, d.rule, d.severity) for d in result.diagnostics}
    assert found == {(doc.source, doc.rule, doc.level)}, [(d.rule, d.message) for d in result.diagnostics]
    for d in result.diagnostics:
        assert d.hint, d  # and says what to change


def test_every_rule_the_corpus_triggers_is_documented(corpus_mirror):
    """Both schema modes, strict or not, over every contributed file of the corpus."""
    from checkcorpus_util import corpus_files

    documented = {(d.source, d.rule) for d in DOCS}
    seen = set()
    for f in corpus_files(corpus_mirror):
        leaf = LeafFile(
            path=f.path,
            data=f.data,
            attribution=f.attribution,
            attribution_kind="file" if f.attribution is not None else "missing",
        )
        for options in (CheckOptions(), CheckOptions(schema_version="declared")):
            seen |= {(d.source, d.rule) for d in check_leaf(leaf, options).diagnostics}
    assert len(seen) > 25 and seen <= documented, sorted(seen - documented)
