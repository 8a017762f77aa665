"""The JSON Schemas ship inside the package, as real files (issue 11): a wheel built
from the sources holds every ``lab_ci/schemas/v*/*.json``, and a checker installed from
that wheel alone (no source tree beside it) validates a leaf."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from labtest import REPO_ROOT

SCHEMAS = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "lab_ci" / "schemas").glob("v*/*.json"))


def test_schemas_are_real_files_and_the_top_level_folder_points_at_them():
    assert len(SCHEMAS) == 9  # v1-v3: compositional_skills, knowledge, version
    schemas = REPO_ROOT / "lab_ci" / "schemas"
    assert schemas.is_dir() and not schemas.is_symlink()
    assert not any(p.is_symlink() for p in schemas.rglob("*"))
    top = REPO_ROOT / "schemas"
    assert top.is_symlink() and top.resolve() == schemas.resolve()


def test_a_built_wheel_contains_the_schemas_and_checks_without_the_sources(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, src / name)
    # Links are copied as links: a package that needed one (lab_ci/schemas -> ../schemas
    # as it used to be) would lose its schemas here.
    shutil.copytree(
        REPO_ROOT / "lab_ci", src / "lab_ci", symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = wheels.glob("lab_ci-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SCHEMAS) <= names, sorted(set(SCHEMAS) - names)

    # The wheel alone, unpacked on an empty path: the checker finds its schemas there.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import lab_ci; "
        "from lab_ci.check import CheckOptions, check_leaf; from lab_ci.taxonomy.leaf import LeafFile; "
        "r = check_leaf(LeafFile('knowledge/x/qna.yaml', b'version: 3\\ncreated_by: me\\n'), CheckOptions()); "
        "print(json.dumps([lab_ci.__file__, [d.rule for d in r.diagnostics]]))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(site)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    where, found = json.loads(out.stdout)
    assert Path(where).is_relative_to(site)
    assert "required" in found and "schema-version" not in found
