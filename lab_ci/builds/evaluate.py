"""The build's ``evaluate`` stage: its inputs (the baseline, the changed leaves, the
gates) and its verdict, apart from the side effects in :mod:`.runner`.

The stage compares the release candidate with the **baseline**: the model of the
previous release in ``<out>/release`` (when it was built from another commit), else
the base student. The leaves are the ones changed since ``--since`` (else since the
previous release's commit; on a first build, every leaf), plus the seeded regression
guard (:func:`lab_ci.eval.runner.plan_eval`). When the trainer kept several phase
models, the one released is chosen by the recipe's ``eval.select`` metric
(:func:`lab_ci.eval.runner.select_checkpoint`).

The **gates** come from the taxonomy repository's ``.github/lab-ci.yaml``
(``eval.gates``, read from the built commit: the maintainers' policy is versioned with
the taxonomy), then the recipe's ``eval.gates`` (a key set there wins). A failing gate
stops the build before the release (exit 3, the reasons in one block) unless the
maintainer accepts the regression (``--accept-regression REASON``, recorded in
``release.json``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LabCIError
from ..eval.gates import GateConfigError, Gates
from ..taxonomy import yamlsrc
from ..taxonomy.gitrepo import GitTaxonomy
from .config import merge
from .store import read_json

REPO_CONFIG = ".github/lab-ci.yaml"
MAX_REPO_CONFIG_BYTES = 64 * 1024  # as the bot reads it


class GatesFailed(LabCIError):
    """The evaluation's gates failed: the release was not published (exit 3)."""

    exit_code = 3


def read_repo_config(taxonomy: Path, commit: str | None) -> tuple[bytes | None, str]:
    """(the bytes of ``.github/lab-ci.yaml`` at ``commit`` or on disk, where it was read)."""
    if commit is None:
        path = Path(taxonomy) / REPO_CONFIG
        if not path.is_file():
            return None, str(path)
        with open(path, "rb") as f:
            return f.read(MAX_REPO_CONFIG_BYTES + 1), str(path)
    with GitTaxonomy.open(taxonomy) as gt:
        entries = [e for e in gt.ls_tree(commit, ".github") if e.path == REPO_CONFIG and e.kind == "file"]
        if not entries:
            return None, f"{commit[:12]}:{REPO_CONFIG}"
        e = entries[0]
        data = gt.read_blobs([e.sha], sizes={e.sha: e.size}, max_bytes=MAX_REPO_CONFIG_BYTES)[e.sha]
        return data, f"{commit[:12]}:{REPO_CONFIG}"


def gates_from_yaml(data: bytes | None, where: str, section: tuple[str, ...] = ("eval", "gates")) -> dict:
    """The ``eval.gates`` mapping of a YAML file (bounded read), or {}; errors located."""
    if data is None:
        return {}
    if len(data) > MAX_REPO_CONFIG_BYTES:
        raise LabCIError(f"{where}: larger than {MAX_REPO_CONFIG_BYTES} bytes")
    src = yamlsrc.parse(data)
    errors = [d for d in src.diagnostics if d.severity == "error"]
    if errors:
        d = errors[0]
        raise LabCIError(f"{where}:{d.line}:{d.column}: {d.message}")
    node, value = src.node, src.data
    for key in section:
        if not isinstance(value, dict) or value.get(key) is None:
            return {}
        value = value[key]
    if not isinstance(value, dict):
        line, col = yamlsrc.position(yamlsrc.node_at(node, section))
        raise LabCIError(f"{where}:{line}:{col}: {'.'.join(section)}: must be a mapping")
    _check(value, where, node, section)
    return value


def _check(mapping: dict, where: str, root, section: tuple[str, ...]) -> None:
    try:
        Gates.from_dict(mapping, ".".join(section) + ".")
    except GateConfigError as e:
        path = tuple(e.key.split("."))
        node = yamlsrc.node_at(root, path) if root is not None else None
        if node is None:
            raise LabCIError(f"{where}: {e}") from None
        line, col = yamlsrc.position(node)
        raise LabCIError(f"{where}:{line}:{col}: {e}") from None


def effective_gates(repo: dict, recipe: dict, where: str = "build recipe") -> tuple[Gates, dict]:
    """The gates of the repository's file with the recipe's keys on top, and where each
    part came from (for ``release.json``)."""
    merged = merge(repo or {}, recipe or {})
    try:
        gates = Gates.from_dict(merged, "eval.gates.")
    except GateConfigError as e:  # both parts were checked alone: only their mix is wrong
        raise LabCIError(f"{where}: {e}") from None
    return gates, {"repository": repo or {}, "recipe": recipe or {}}


def previous_release(out: Path) -> dict | None:
    """The release in ``<out>/release`` before this build replaces it: its commit and
    model folder, or None."""
    prov = read_json(Path(out) / "release" / "release.json")
    model = Path(out) / "release" / "model"
    if not isinstance(prov, dict) or not model.is_dir():
        return None
    commit = (prov.get("taxonomy") or {}).get("commit")
    return {"name": prov.get("name"), "commit": commit, "model": model}


def gate_failure_message(results: dict, results_path: Path) -> str:
    """The one readable block a failed gate stops the build with."""
    lines = [f"the evaluation's gates failed; the release was NOT published ({results_path}):"]
    lines += [f"  - {f['message']}" for f in results["gates"]["failures"]]
    lines.append(
        "Fix the data and build again, or publish anyway with --accept-regression REASON "
        "(recorded in release.json); the evaluation is cached, so only the release is redone."
    )
    return "\n".join(lines)


def card_lines(ev: dict) -> str:
    """The model card's lines on what was released and why: the chosen phase model,
    the baseline, the gates' verdict (and an accepted regression, loudly)."""
    from ..eval.report import cell

    lines = ["## Release decision", ""]
    sel = ev.get("selection")
    if sel:
        lines.append(f"- Released model: phase `{cell(sel['best'])}`: {cell(sel['reason'], 500)}")
        lines += [
            f"  - `{cell(r['name'])}`: {'n/a' if r['value'] is None else format(r['value'], '.3f')}"
            + (f" (95% {r['ci'][0]:.3f} to {r['ci'][1]:.3f}, {r['n']} answers)" if r.get("ci") else "")
            for r in sel["scores"]
        ]
    else:
        lines.append("- Released model: the last phase's")
    lines.append(f"- Baseline: {cell(ev['baseline'].get('source'), 300)}")
    g = ev["gates"]
    if not g["active"]:
        lines.append("- Gates: none set (`eval.gates` in `.github/lab-ci.yaml` or the recipe)")
    elif g["passed"]:
        lines.append("- Gates: **passed**")
    else:
        lines.append(
            "- Gates: **FAILED**" + (", published anyway (`--accept-regression`)" if g.get("accepted") else "")
        )
        lines += [f"  - {cell(m, 500)}" for m in g["failures"]]
        if g.get("accepted"):
            lines.append(f"  - accepted because: {cell(g['accepted']['reason'], 500)}")
    return "\n".join(lines) + "\n"
