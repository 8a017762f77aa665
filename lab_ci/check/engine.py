"""Check taxonomy leaves: YAML hygiene, yamllint, JSON Schema and taxonomy rules.

``check_leaf`` is pure (bytes in, diagnostics out) and never raises. By default its
verdict (valid: no error) is the reference validator's
(``instructlab.schema.taxonomy.TaxonomyParser``, latest schema): everything we add on
top is a warning, except where the reference itself fails (it crashes on broken YAML;
we report an error there). The README (what is checked) lists every difference.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lab_ci.check.diagnostics import Diagnostic, FileResult, Report
from lab_ci.check.options import CheckOptions
from lab_ci.check.rules import DOCUMENT_RULES, RULES, RuleContext
from lab_ci.taxonomy.leaf import QNA, LeafFile, misnamed_leaf

if TYPE_CHECKING:
    from lab_ci.check.cache import ResultCache
    from lab_ci.check.documents import DocumentVerifier

LEAF_NAME = QNA


def _err(source: str, rule: str, message: str, line: int = 1, column: int = 1, yaml_path=None, **kw) -> Diagnostic:
    return Diagnostic("error", source, rule, message, line, column, yaml_path, **kw)


def _warn(source: str, rule: str, message: str, line: int = 1, column: int = 1, yaml_path=None, **kw) -> Diagnostic:
    return Diagnostic("warning", source, rule, message, line, column, yaml_path, **kw)


def schema_name_for(path: str, data: Any, folders: tuple[str, ...]) -> str:
    """The schema a leaf is checked against, chosen as the reference chooses it: the
    right-most folder of the path that is a taxonomy folder, else ``knowledge`` when
    the file has a ``document`` key, else ``compositional_skills``."""
    for part in reversed(path.split("/")):
        if part in folders:
            return part
    return "knowledge" if isinstance(data, Mapping) and "document" in data else "compositional_skills"


def resolve_version(options: CheckOptions, data: Mapping) -> tuple[Any, str | None]:
    """The schema version to check against, with the reference's fallbacks for a
    declared version that is not an integer (a number-like string is converted, other
    values mean 1). A number too large for ``int`` (``.inf``) crashes the reference:
    it is an error here."""
    version: Any = options.reference_version()
    if version >= 1:
        return version, None
    declared = data.get("version", 1)
    if isinstance(declared, int):
        return declared, None
    try:
        return int(declared), None
    except (ValueError, TypeError):
        return 1, None
    except Exception:  # noqa: BLE001 - OverflowError for .inf
        return None, f"version {declared!r} is not a usable number"


_NOT_A_FILE = {
    "directory": ("a folder", "Put the leaf in a file named qna.yaml inside its folder, not in a folder of that name."),
    "symlink": (
        "a symbolic link (lab-ci reads git objects and does not follow links)",
        "Replace the link with the file itself.",
    ),
    "submodule": ("a git submodule", "Put the leaf's files in the taxonomy repository itself."),
    "missing": ("missing", "Add the qna.yaml beside its attribution.txt, or remove the attribution.txt."),
}


def _not_a_file(leaf: LeafFile) -> Diagnostic:
    if leaf.kind == "file":
        return _err(
            "taxonomy",
            "not-a-file",
            f"{leaf.path}: the file's contents could not be read",
            hint="Check that the file is readable and try again.",
        )
    what, hint = _NOT_A_FILE.get(leaf.kind, (f"a {leaf.kind}", "Replace it with a regular file."))
    return _err("taxonomy", "not-a-file", f"{leaf.path} is {what}, not a regular file", hint=hint)


def _leaf_name(path: str) -> Diagnostic:
    folder, _, name = path.rpartition("/")
    target = f"{folder}/{LEAF_NAME}"
    return Diagnostic(
        "error",
        "taxonomy",
        "leaf-name",
        f'this file looks like a leaf but is named "{name}"; lab-ci, the preview and data generation '
        f'read only files named "{LEAF_NAME}"',
        hint=f"Rename it: git mv '{path}' '{target}' (if that folder already has a {LEAF_NAME}, "
        "give this leaf a folder of its own).",
        reference_message=f'Taxonomy file must be named "{LEAF_NAME}"; "{name}" is not a valid name',
    )


def _run_rules(leaf: LeafFile, data: Any, ctx: RuleContext, out: list[Diagnostic]) -> None:
    for rule_id, rule in RULES.items():
        if rule_id in ctx.options.disable:
            continue
        level = "error" if ctx.options.document_errors and rule_id in DOCUMENT_RULES else rule.LEVEL
        for p in rule.check(leaf, data, ctx):
            out.append(
                Diagnostic(
                    level,
                    "taxonomy",
                    rule_id,
                    p.message,
                    p.line,
                    p.column,
                    p.yaml_path,
                    hint=p.hint,
                    related=p.related,
                )
            )


_TOP_LEVEL = "The file is not valid. The top-level element is not an object with key-value pairs."
_CONVERT = (
    "Convert it to format 3: `version: 3`; `document_outline:` instead of `task_description:`; at least 5 seed "
    "examples, each with `context:` (a passage from the document) and `questions_and_answers:` (3 "
    "`question:`/`answer:` pairs about that passage)."
)


@functools.cache
def _modules():
    """YAML, yamllint and jsonschema load on the first leaf that is not in the cache."""
    from lab_ci.check import lint, messages, schema
    from lab_ci.taxonomy import yamlsrc

    return lint, messages, schema, yamlsrc


def _check(leaf: LeafFile, options: CheckOptions, documents: DocumentVerifier | None = None) -> list[Diagnostic]:
    lint, messages, schema, yamlsrc = _modules()

    out: list[Diagnostic] = []
    if leaf.kind != "file" or leaf.data is None:
        return [_not_a_file(leaf)]
    name = leaf.path.rsplit("/", 1)[-1]
    if name != LEAF_NAME:
        if not misnamed_leaf(leaf.path, options.taxonomy_folders):
            return [
                _err(
                    "taxonomy",
                    "file-name",
                    f'"{name}" is not a leaf: leaves are files named "{LEAF_NAME}"',
                    hint=f"Check only {LEAF_NAME} files (and attribution.txt files, which stand for their leaf).",
                    reference_message=f'Taxonomy file must be named "{LEAF_NAME}"; "{name}" is not a valid name',
                )
            ]
        out.append(_leaf_name(leaf.path))
    src = yamlsrc.parse(leaf.data, options.read_limits())
    out.extend(
        Diagnostic(
            p.severity,
            "yaml",
            p.rule,
            p.message,
            p.line,
            p.column,
            hint=p.hint,
            reference_message=p.parser_message,
            related=p.related,
        )
        for p in src.problems
    )
    if src.text is None and src.problems and src.problems[0].rule == "file-too-large":
        return out
    data = src.data if src.ok else None
    ctx = RuleContext(options, src.node, schema_name_for(leaf.path, data, options.taxonomy_folders), None)
    if not src.ok:
        _run_rules(leaf, None, ctx, out)
        return out
    if not data:
        out.append(
            _warn(
                "yaml",
                "empty",
                "the file is empty",
                hint="Write the leaf's fields (`version: 3`, `created_by:`, `seed_examples:` ...) or delete the file.",
                reference_message="The file is empty",
            )
        )
        _run_rules(leaf, None, ctx, out)
        return out
    if not isinstance(data, Mapping):
        line, col = yamlsrc.position(src.node)
        kind = "a list" if isinstance(data, list) else "a single value"
        out.append(
            _err(
                "schema",
                "type",
                f"the file holds {kind} at the top; a qna.yaml is a mapping of fields (`version: 3`, `created_by: ...`)",
                line,
                col,
                hint="Write the fields at the start of their lines, without a leading `- `: `version: 3`, "
                "`created_by: <you>`, then `seed_examples:` with the examples indented below it.",
                reference_message=_TOP_LEVEL,
            )
        )
        _run_rules(leaf, None, ctx, out)
        return out

    version, problem = resolve_version(options, data)
    if problem is not None:
        vnode = yamlsrc.find_key(src.node, "version")
        line, col = yamlsrc.position(vnode[1] if vnode else src.node)
        out.append(
            _err(
                "schema",
                "version",
                f"`version` is {problem.removeprefix('version ').removesuffix(' is not a usable number')}, "
                "which is not a usable number",
                line,
                col,
                ".version",
                hint="Write `version: 3`.",
            )
        )
        return out
    ctx = RuleContext(options, src.node, ctx.schema_name, version)

    if version > 1:  # the reference lints only files checked against version 2 or later
        out.extend(lint.lint(src.text))
    else:
        for key_node, key in yamlsrc.duplicate_keys(src.node):
            line, col = yamlsrc.position(key_node)
            out.append(
                _warn(
                    "yaml",
                    "duplicate-key",
                    f"`{key}` appears twice in this mapping; only the last value counts",
                    line,
                    col,
                    hint=f"Remove one `{key}` or rename it; to write two examples, start each with `- `.",
                )
            )

    name = ctx.schema_name
    if not schema.schema_exists(version, name):
        vnode = yamlsrc.find_key(src.node, "version")
        out.append(
            _err(
                "schema",
                "schema-version",
                f"`version` is {version!r}, a format lab-ci does not know (it knows 1, 2 and 3)",
                *yamlsrc.position(vnode[1] if vnode else src.node),
                hint="Write `version: 3` (the current format).",
            )
        )
    else:
        s = schema.schema(version, name)
        if s.get("deprecated"):
            vnode = yamlsrc.find_key(src.node, "version")
            out.append(
                _err(
                    "schema",
                    "deprecated",
                    f"{name.replace('_', ' ')} leaves of format {version} are no longer read; "
                    "the oldest format still supported is 3",
                    *yamlsrc.position(vnode[1] if vnode else src.node),
                    hint=_CONVERT if name == "knowledge" else "Write `version: 3` and follow format 3.",
                    reference_message=s.get("description") or f"{name} schema version {version} is deprecated",
                )
            )
        else:
            found = schema.validate(data, src.node, version, name)
            if found:
                seeds = yamlsrc.find_key(src.node, "seed_examples")
                at = yamlsrc.position(seeds[0] if seeds else src.node)
                found = messages.fold_old_format(found, data, name, at)
            out.extend(found)
    _run_rules(leaf, data, ctx, out)
    if documents is not None and not any(d.rule in DOCUMENT_RULES for d in out):
        out.extend(_verify_documents(documents, data, ctx))
    return out


def _verify_documents(verifier: DocumentVerifier, data: Any, ctx: RuleContext) -> list[Diagnostic]:
    """The online verifier's findings as ``taxonomy/document-fetch`` errors."""
    from lab_ci.check import documents as docs

    ref = docs.document_ref(data)
    if ref is None:
        return []
    try:
        findings = verifier.verify(ref)
    except Exception as e:  # noqa: BLE001 - a verifier's failure is this leaf's error, not a crash
        line, col = ctx.at("document")
        return [
            _err(
                "taxonomy",
                docs.ID,
                f"the document repository could not be checked ({type(e).__name__})",
                line,
                col,
                ".document",
                hint="Try again later; if it keeps failing, check that the repository is public.",
            )
        ]
    out = []
    for f in findings:
        path = ("document", f.field) if f.index is None else ("document", f.field, f.index)
        ypath = ".document." + f.field + (f"[{f.index}]" if f.index is not None else "")
        out.append(_err("taxonomy", docs.ID, f.message, *ctx.at(*path), ypath, hint=f.hint))
    return out


def check_leaf(leaf: LeafFile, options: CheckOptions, documents: DocumentVerifier | None = None) -> FileResult:
    """Check one leaf. Pure (no I/O) unless a ``documents`` verifier is given
    (:mod:`lab_ci.check.documents`); never raises, whatever the bytes."""
    result = FileResult(path=leaf.path, change=leaf.change, old_path=leaf.old_path, blob_id=leaf.blob_id)
    if leaf.change == "deleted":
        return result
    try:
        diags = _check(leaf, options, documents)
    except RecursionError:
        diags = [_err("yaml", "syntax", "the document is nested too deeply to check")]
    except Exception as e:  # noqa: BLE001 - a bug in lab-ci must not hide the file
        diags = [_err("yaml", "internal", f"lab-ci could not check this file ({type(e).__name__}: {e})"[:300])]
    if options.strict:
        diags = [d.with_severity("error") if d.severity == "warning" else d for d in diags]
    result.diagnostics = diags
    return result.sorted()


def _check_chunk(args: tuple[list[LeafFile], CheckOptions]) -> list[FileResult]:
    leaves, options = args
    return [check_leaf(leaf, options) for leaf in leaves]


def _map_parallel(leaves: list[LeafFile], options: CheckOptions, jobs: int) -> list[FileResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    size = max(1, min(64, len(leaves) // (jobs * 4) or 1))
    chunks = [(leaves[i : i + size], options) for i in range(0, len(leaves), size)]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        out: list[FileResult] = []
        for part in pool.map(_check_chunk, chunks):
            out.extend(part)
    return out


def check_leaves(
    leaves: Iterable[LeafFile],
    options: CheckOptions,
    *,
    jobs: int = 1,
    cache: ResultCache | None = None,
    documents: DocumentVerifier | None = None,
) -> Report:
    """Check many leaves, in order. ``jobs`` > 1 checks in that many processes
    (``jobs`` <= 0: one per CPU). With a cache, results of unchanged leaves are reused.
    With a ``documents`` verifier (:mod:`lab_ci.check.documents`) knowledge leaves'
    document references are verified online too, in this process, without the cache."""
    leaves = list(leaves)
    if documents is not None:
        return Report(files=[check_leaf(leaf, options, documents) for leaf in leaves])
    results: list[FileResult | None] = [None] * len(leaves)
    todo: list[int] = []
    for i, leaf in enumerate(leaves):
        if leaf.change == "deleted":
            results[i] = check_leaf(leaf, options)
            continue
        if cache is not None:
            hit = cache.get(leaf, options)
            if hit is not None:
                results[i] = hit
                continue
        todo.append(i)
    if jobs <= 0:
        jobs = os.cpu_count() or 1
    batch = [leaves[i] for i in todo]
    if jobs > 1 and len(batch) > 8:
        computed = _map_parallel(batch, options, min(jobs, len(batch)))
    else:
        computed = [check_leaf(leaf, options) for leaf in batch]
    for i, res in zip(todo, computed):
        results[i] = res
        if cache is not None:
            cache.put(leaves[i], options, res)
    return Report(files=[r for r in results if r is not None])
