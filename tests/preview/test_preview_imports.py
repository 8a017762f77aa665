"""The preview and sdg stages import lab_ci's own modules at module top (issue 11), and
the preview's data model does not import its renderer (no model <-> render cycle)."""

import ast
from pathlib import Path

import lab_ci

PACKAGE = Path(lab_ci.__file__).parent

#: the sub-command module defers its stage so `lab-ci check` does not import the preview
#: stack when building the parser (measured: +0.12 s on every lab-ci command)
DEFERRED_OK = {("preview/cli.py", "run")}


def own_imports(tree: ast.AST, module: str) -> list[tuple[ast.AST, str]]:
    """(node, imported lab_ci module) for every import of a lab_ci module."""
    pkg = module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                out.append((node, f"{base}.{node.module}" if node.module else base))
            elif (node.module or "").startswith("lab_ci"):
                out.append((node, node.module))
        elif isinstance(node, ast.Import):
            out += [(node, a.name) for a in node.names if a.name.startswith("lab_ci")]
    return out


def test_no_function_level_imports_of_lab_ci_modules():
    offenders = []
    for stage in ("preview", "sdg"):
        for path in sorted((PACKAGE / stage).glob("*.py")):
            rel = f"{stage}/{path.name}"
            tree = ast.parse(path.read_text("utf-8"))
            for func in ast.walk(tree):
                if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                if (rel, func.name) in DEFERRED_OK:
                    continue
                module = f"lab_ci.{stage}.{path.stem}"
                for node, target in own_imports(func, module):
                    offenders.append(f"{rel}:{node.lineno} in {func.name}(): {target}")
    assert not offenders, offenders


def test_model_does_not_import_render():
    tree = ast.parse((PACKAGE / "preview" / "model.py").read_text("utf-8"))
    targets = [t for _, t in own_imports(tree, "lab_ci.preview.model")]
    assert not any(t.startswith("lab_ci.preview.render") for t in targets), targets


def test_importing_sdg_api_reads_no_pipeline_file():
    import subprocess
    import sys

    code = (
        "import sys, lab_ci.sdg.api as a, lab_ci.sdg.pipeline as p;"
        "assert p.builtin_versions.cache_info().currsize == 0;"
        "assert 'jsonschema' not in sys.modules, 'jsonschema imported';"
        "assert set(a.PIPELINE_VERSION) == set(p.BUILTIN_NAMES)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
