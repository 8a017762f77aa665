"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning (``upload-sarif``).

One run; ``tool.driver.rules`` lists every rule that fired (id ``source/rule``); each
result has ``ruleId``/``ruleIndex``, ``level``, ``message.text`` (the message, then the
hint on a line of its own) and one physical location whose ``artifactLocation.uri`` is
repository-relative (``root_display`` is the taxonomy's folder inside the repository)
and percent-encoded; a related location (where the construct that failed began) is a
``relatedLocations`` entry; ``properties`` carry ``yamlPath``, ``hint`` and the
reference validator's words (``referenceMessage``). Deleted and renamed leaves are
reported as tool execution notifications of the invocation.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from ... import __version__
from ..catalog import rule_doc
from ..diagnostics import Report
from . import rule_id

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"

#: Descriptions of the rule families whose ids are not our own taxonomy rules.
SOURCE_DESCRIPTIONS = {
    "yaml": "YAML syntax and hygiene",
    "yamllint": "yamllint",
    "schema": "InstructLab qna.yaml JSON Schema",
    "taxonomy": "lab-ci taxonomy rule",
}


def _describe(source: str, rule: str) -> str:
    """A rule's one-line description: its summary in the rule catalog
    (:func:`lab_ci.check.catalog.rule_docs`), else the family and the rule name."""
    from ..catalog import rule_summary

    return rule_summary(source, rule) or f"{SOURCE_DESCRIPTIONS.get(source, source)}: {rule}"


def _uri(path: str) -> str:
    return quote(path.encode("utf-8", "surrogateescape"), safe="/")


def _location(path: str, line: int, column: int) -> dict:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": _uri(path)},
            "region": {"startLine": max(1, line), "startColumn": max(1, column)},
        }
    }


def to_sarif(report: Report, *, root_display: str = "") -> dict:
    rules: list[dict] = []
    index: dict[str, int] = {}
    results: list[dict] = []
    notes: list[dict] = []
    for f in report.files:
        path = root_display + f.path
        if f.change == "deleted":
            notes.append({"level": "note", "message": {"text": f"{path}: leaf deleted"}})
            continue
        if f.change == "renamed" and f.old_path:
            notes.append({"level": "note", "message": {"text": f"{path}: renamed from {root_display}{f.old_path}"}})
        for d in f.diagnostics:
            rid = rule_id(d.source, d.rule)
            if rid not in index:
                index[rid] = len(rules)
                entry = {
                    "id": rid,
                    "name": d.rule,
                    "shortDescription": {"text": _describe(d.source, d.rule)},
                    "defaultConfiguration": {"level": d.severity},
                    "properties": {"source": d.source},
                }
                doc = rule_doc(d.source, d.rule)
                if doc is not None:
                    entry["fullDescription"] = {"text": doc.description}
                rules.append(entry)
            result = {
                "ruleId": rid,
                "ruleIndex": index[rid],
                "level": d.severity,
                "message": {"text": d.message + (f"\nHint: {d.hint}" if d.hint else "")},
                "locations": [_location(path, d.line, d.column)],
            }
            if d.related:
                result["relatedLocations"] = [
                    {**_location(path, r.line, r.column), "id": i, "message": {"text": r.message}}
                    for i, r in enumerate(d.related, 1)
                ]
            props = {"yamlPath": d.yaml_path, "hint": d.hint, "referenceMessage": d.reference_message}
            props = {k: v for k, v in props.items() if v}
            if props:
                result["properties"] = props
            results.append(result)
    invocation: dict = {"executionSuccessful": True}
    if notes:
        invocation["toolExecutionNotifications"] = notes
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "lab-ci",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "invocations": [invocation],
                "results": results,
            }
        ],
    }


def render(report: Report, *, root_display: str = "") -> str:
    return json.dumps(to_sarif(report, root_display=root_display), indent=2) + "\n"
