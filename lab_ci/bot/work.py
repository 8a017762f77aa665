"""The work the bot does on untrusted input, as functions a job process runs.

Each function takes a JSON-able request and returns a JSON-able result; it runs inside
the limited child process of :func:`lab_ci.bot.isolation.run_isolated` (never in the
bot's own process). They read only the bare mirror the worker fetched; they never hold a
GitHub token.

``preview`` reaches its teacher through a *spec*. Under ``lab-ci serve`` it is always the
URL of the bot's teacher service on loopback (:class:`lab_ci.bot.services.SharedTeachers`),
with the job's own bearer token in ``LAB_CI_TEACHER_API_KEY``: the child talks to it
with the OpenAI backend and never loads a model. Called directly, it loads or connects
to whatever the spec names (a GGUF path or an OpenAI-compatible URL).
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, replace

from lab_ci.bot.suggestions import file_fixes
from lab_ci.check.api import collect_leaves
from lab_ci.check.diagnostics import Diagnostic, FileResult, Report
from lab_ci.check.options import CheckOptions
from lab_ci.preview.api import run_preview
from lab_ci.preview.render import render_markdown
from lab_ci.teacher import load_teacher

#: The job-process entry points (``module:function``) of :func:`run_isolated`.
CHECK_TARGET = "lab_ci.bot.work:check"
PREVIEW_TARGET = "lab_ci.bot.work:preview"


@dataclass(frozen=True)
class CheckWork:
    """Check the leaves a pull request changes: ``base..head`` in the bare mirror
    ``taxonomy``, with the repository's check options and path globs.

    ``document_errors``: the document rules are errors (the bot's default: a leaf
    whose documents cannot be fetched must fail before its preview); ``documents``:
    also fetch each knowledge leaf's documents (the safe fetch, ``LAB_CI_DOCUMENT_*``
    policy and mirrors from the environment, cache in ``document_cache``);
    ``fixes``: also compute the safe ``--fix`` edits of at most this many files (the
    suggested changes)."""

    taxonomy: str
    base: str
    head: str
    schema_version: int | str = "latest"
    strict: bool = False
    paths: list[str] = field(default_factory=list)
    document_errors: bool = False
    documents: bool = False
    document_cache: str | None = None
    fixes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PreviewWork:
    """Preview the leaves a pull request changes with the teacher ``teacher`` (a spec:
    GGUF path or OpenAI-compatible URL; the bot hands the child its teacher service's
    URL)."""

    taxonomy: str
    base: str
    head: str
    teacher: str
    samples: int = 3
    seed: int = 0
    #: the served teacher's ``{"id", "name"}`` when ``teacher`` is the bot's teacher
    #: service: what the comment names (the model, not the loopback URL)
    teacher_info: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def report_to_dict(report: Report) -> dict:
    return {
        "files": [
            {
                "path": f.path,
                "change": f.change,
                "old_path": f.old_path,
                "blob_id": f.blob_id,
                "diagnostics": [d.to_dict() for d in f.diagnostics],
            }
            for f in report.files
        ]
    }


def report_from_dict(data: dict) -> Report:
    return Report(
        [
            FileResult(
                path=f["path"],
                diagnostics=[Diagnostic.from_dict(d) for d in f["diagnostics"]],
                change=f.get("change", "checked"),
                old_path=f.get("old_path"),
                blob_id=f.get("blob_id"),
            )
            for f in data["files"]
        ]
    )


def check(request: dict) -> dict:
    """:class:`CheckWork` -> the report (``report_to_dict``), with ``"fixes"``: the
    :class:`lab_ci.bot.suggestions.FileFix` dictionaries of the files ``--fix`` changes."""
    from lab_ci.check.engine import check_leaves

    work = CheckWork(**request)
    options = CheckOptions(schema_version=work.schema_version, strict=work.strict, document_errors=work.document_errors)
    leaves = collect_leaves(
        work.taxonomy,
        base=work.base,
        head=work.head,
        max_bytes=options.max_file_bytes,
        folders=options.taxonomy_folders,
    )
    if work.paths:
        leaves = [leaf for leaf in leaves if any(fnmatch.fnmatch(leaf.path, g) for g in work.paths)]
    report = check_leaves(leaves, options, documents=_verifier(work) if work.documents else None)
    raise_if_out_of_memory(report)
    out = report_to_dict(report)
    out["fixes"] = []
    data = {leaf.path: leaf.data for leaf in leaves if leaf.kind == "file" and leaf.change != "deleted"}
    for f in report.files:
        if len(out["fixes"]) >= work.fixes:
            break
        if data.get(f.path) is not None:
            fix = file_fixes(f.path, data[f.path], f.diagnostics, options.read_limits())
            if fix is not None:
                out["fixes"].append(fix.to_dict())
    return out


def _verifier(work: CheckWork):
    from lab_ci.check.documents import FetchingVerifier
    from lab_ci.taxonomy.documents import DocumentFetcher, mirrors_from_env

    return FetchingVerifier(DocumentFetcher(cache_dir=work.document_cache, mirrors=mirrors_from_env()))


def raise_if_out_of_memory(report: Report) -> None:
    """The checker reports any exception of its own as a diagnostic of the file
    (``internal``, or ``construct`` while building YAML values); in a job process a
    MemoryError there is this process's address-space limit, not the file: raise it."""
    for f in report.files:
        if any(d.rule in ("internal", "construct") and "MemoryError" in d.message for d in f.diagnostics):
            raise MemoryError(f.path)


def preview(request: dict) -> dict:
    """:class:`PreviewWork` -> ``{"markdown": the rendered preview}``."""
    work = PreviewWork(**request)
    teacher = work.teacher
    if work.teacher_info:  # the bot's teacher service: name the model it serves
        teacher = load_teacher(work.teacher)
        teacher.info = replace(teacher.info, id=str(work.teacher_info["id"]), name=str(work.teacher_info["name"]))
    try:
        result = run_preview(
            work.taxonomy, base=work.base, head=work.head, teacher=teacher, samples=work.samples, seed=work.seed
        )
    finally:
        if teacher is not work.teacher:
            teacher.close()
    return {"markdown": render_markdown(result)}
