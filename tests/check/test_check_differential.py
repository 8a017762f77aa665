"""lab-ci's checker against the reference validator on every contributed qna.yaml of
the real taxonomy history (the ``pr/N`` branches of the corpus).

Oracle: ``instructlab.schema.taxonomy.TaxonomyParser`` (instructlab-schema 0.4.2), run
on real files laid out at their taxonomy paths, in "latest" (schema_version=None) and
"declared" (schema_version=0) modes. For every file we require:

- the same verdict (valid = no error; a reference crash counts as invalid);
- the same set of (line, column, rule, yamllint's words) for yamllint problems (ours
  keep yamllint's words as ``reference_message``);
- the same set of (yaml path, message) for JSON Schema errors: our
  ``reference_message`` is the reference's message; the errors a ``schema/old-format``
  summary stands for are compared through its ``covers``.

The reference runs yamllint as a command per file, so the corpus is split in shards
that pytest-xdist runs in parallel.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from checkcorpus_util import corpus_files, lay_out

from lab_ci.check import CheckOptions, check_leaf
from lab_ci.taxonomy.leaf import LeafFile

SHARDS = 8
MODES = {"latest": (None, "latest"), "declared": (0, "declared")}

_REFERENCE_LOGGER = "instructlab.schema.taxonomy"
_LINT_MESSAGE = re.compile(r"^%s:%s:%s (?P<text>.*) \((?P<rule>[a-z0-9-]+)\)$", re.S)


@dataclass
class Outcome:
    valid: bool
    crashed: bool = False
    lint: set = field(default_factory=set)  # {(line, column, rule, text)}
    schema_paths: set = field(default_factory=set)  # {(yaml_path, message)}


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def run_reference(parser, path: Path, capture: _Capture) -> Outcome:
    from instructlab.schema.taxonomy import TaxonomyReadingException

    capture.records.clear()
    try:
        taxonomy = parser.parse(path)
    except TaxonomyReadingException:
        return Outcome(valid=False, crashed=True)
    out = Outcome(valid=taxonomy.errors == 0)
    for r in capture.records:
        args = r.args if isinstance(r.args, tuple) else ()
        if len(args) < 3:
            continue  # not a taxonomy message
        if r.msg.startswith("%s:%s:%s [%s] "):
            # The reference passes its message as the format string: with no arguments
            # of its own the message is the raw text (a '%' in a value would break
            # formatting); "Value must have at least %s items" has one.
            raw = r.msg[len("%s:%s:%s [%s] ") :]
            message = (raw % args[4:]) if len(args) > 4 else raw
            out.schema_paths.add((args[3], message))
            continue
        m = _LINT_MESSAGE.match(r.msg)
        if m and len(args) == 3:
            out.lint.add((int(args[1]), int(args[2]), m.group("rule"), m.group("text")))
    return out


def run_ours(leaf: LeafFile, options: CheckOptions) -> Outcome:
    result = check_leaf(leaf, options)
    schema = {(d.yaml_path, d.reference_message) for d in result.diagnostics if d.source == "schema" and d.yaml_path}
    for d in result.diagnostics:  # what a summary (schema/old-format) stands for
        schema |= {(c.yaml_path, c.reference_message) for c in d.covers}
    schema.discard((".seed_examples", None))  # the summary itself
    for d in result.diagnostics:  # every schema and syntax problem says what to change
        assert d.hint or d.source not in ("schema", "yaml"), d
    return Outcome(
        valid=result.valid,
        lint={(d.line, d.column, d.rule, d.reference_message) for d in result.diagnostics if d.source == "yamllint"},
        schema_paths=schema,
    )


@pytest.fixture(scope="session")
def corpus_laid_out(corpus_mirror, tmp_path_factory):
    files = corpus_files(corpus_mirror)
    root = tmp_path_factory.mktemp("corpus-files")
    return files, lay_out(files, root)


@pytest.fixture
def yamllint_on_path(monkeypatch):
    """The reference runs the ``yamllint`` command: use the one of this interpreter."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("shard", range(SHARDS))
def test_check_matches_reference(corpus_laid_out, yamllint_on_path, shard, mode):
    from instructlab.schema.taxonomy import TaxonomyMessageFormat, TaxonomyParser

    files, paths = corpus_laid_out
    assert len(files) > 1900, "the corpus should hold about 1950 contributed qna.yaml files"
    ref_version, our_version = MODES[mode]
    parser = TaxonomyParser(schema_version=ref_version, message_format=TaxonomyMessageFormat.LOGGING)
    parser.yq_available = False  # lines come from yq when installed; we compare paths only
    options = CheckOptions(schema_version=our_version)

    logger = logging.getLogger(_REFERENCE_LOGGER)
    capture = _Capture()
    logger.addHandler(capture)
    old_propagate, logger.propagate = logger.propagate, False
    mismatches: list[str] = []
    stats = {"files": 0, "valid": 0, "crashed": 0, "lint": 0, "schema": 0}
    try:
        for i in range(shard, len(files), SHARDS):
            f, path = files[i], paths[i]
            ref = run_reference(parser, path, capture)
            leaf = LeafFile(
                path=f.path,
                data=f.data,
                blob_id=f.blob_id,
                attribution=f.attribution,
                attribution_kind="file" if f.attribution is not None else "missing",
            )
            ours = run_ours(leaf, options)
            stats["files"] += 1
            stats["valid"] += ref.valid
            stats["crashed"] += ref.crashed
            stats["lint"] += len(ref.lint)
            stats["schema"] += len(ref.schema_paths)
            where = f"pr/{f.pr}:{f.path}"
            if ours.valid != ref.valid:
                mismatches.append(f"{where}: verdict ours={ours.valid} reference={ref.valid} (crashed={ref.crashed})")
            if not ref.crashed:
                if ours.lint != ref.lint:
                    mismatches.append(
                        f"{where}: yamllint ours-only={sorted(ours.lint - ref.lint)} reference-only={sorted(ref.lint - ours.lint)}"
                    )
                if ours.schema_paths != ref.schema_paths:
                    mismatches.append(
                        f"{where}: schema paths ours-only={sorted(ours.schema_paths - ref.schema_paths)} "
                        f"reference-only={sorted(ref.schema_paths - ours.schema_paths)}"
                    )
    finally:
        logger.removeHandler(capture)
        logger.propagate = old_propagate
    print(
        f"\n[{mode} shard {shard}/{SHARDS}] files={stats['files']} reference valid={stats['valid']} "
        f"crashed={stats['crashed']} lint problems={stats['lint']} schema paths={stats['schema']} "
        f"mismatching checks={len(mismatches)}"
    )
    assert stats["files"] > 0
    assert not mismatches, "\n".join(mismatches[:30])
