"""Hostile leaves are answered within bounds: under 1 s of CPU and 100 MB of memory.

Each file of ``hostile_samples.HOSTILE`` is checked in a child process of its own, so
its peak resident memory (``ru_maxrss``) is its own; the child also runs under an
address-space and CPU limit, so that a regression fails this test instead of the
machine. CPU time (not wall time) is measured: the shared machines are noisy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_samples import HOSTILE, alias_bomb_mappings

from lab_ci.check import CheckOptions
from labtest import REPO_ROOT, commit_all, run_git, write_file

HERE = Path(__file__).parent
CPU_LIMIT_S = 1.0
RSS_LIMIT_MB = 100

CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
resource.setrlimit(resource.RLIMIT_CPU, (30, 30))
sys.path.insert(0, sys.argv[1])
from hostile_samples import HOSTILE
from checkleaf_samples import SKILL, leaf
from lab_ci.check import CheckOptions, check_leaf

options = CheckOptions()
check_leaf(leaf(SKILL), options)  # imports and validators: not the file's cost
data = HOSTILE[sys.argv[2]][0]
t0 = time.process_time()
result = check_leaf(leaf(data), options)
cpu = time.process_time() - t0
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"cpu": cpu, "rss_mb": rss_mb, "diagnostics": [d.to_dict() for d in result.diagnostics]}))
"""


def run_child(code: str, *args: str, timeout: float = 120) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, str(HERE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, f"child failed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_leaf_is_answered_within_bounds(name):
    data, rule = HOSTILE[name]
    out = run_child(CHILD, name)
    diags = out["diagnostics"]
    assert out["cpu"] < CPU_LIMIT_S, f"{name}: {out['cpu']:.2f} s of CPU"
    assert out["rss_mb"] < RSS_LIMIT_MB, f"{name}: peak RSS {out['rss_mb']:.0f} MB"
    for d in diags:
        assert d["line"] >= 1 and d["column"] >= 1 and d["message"], d
        assert d["rule"] != "internal", d
    if rule is None:
        return
    found = [d for d in diags if d["rule"] == rule]
    assert found, f"{name}: no yaml/{rule} in {[d['rule'] for d in diags]}"
    d = found[0]
    assert d["severity"] == "error" and d["source"] == "yaml", d
    lines = data.decode().split("\n")
    if rule == "alias-expansion":  # at the alias that goes over the budget
        assert lines[d["line"] - 1][d["column"] - 1] == "*", d
    elif rule == "nesting-depth":  # at the collection that goes too deep
        assert lines[d["line"] - 1][d["column"] - 1] in "[{-", d
    elif rule == "too-many-lines":  # at the first line past the limit
        assert d["line"] == CheckOptions().max_lines + 1, d
    else:  # at the value past the limit
        assert (d["line"], d["column"]) > (4, 1), d


MIXED = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
resource.setrlimit(resource.RLIMIT_CPU, (30, 30))
sys.path.insert(0, sys.argv[1])
from hostile_samples import alias_bomb_mappings
from lab_ci.taxonomy.leaf import LeafFile

leaf = LeafFile(path="knowledge/x/qna.yaml", data=alias_bomb_mappings())
where = sys.argv[2]
t0 = time.process_time()
try:
    if where == "sdg.seeds":
        from lab_ci.sdg.seeds import parse_leaf
        parse_leaf(leaf)
    elif where == "build.postcheck":
        from lab_ci.builds.postcheck import seed_questions
        seed_questions(leaf)
    elif where == "build.generate":
        from lab_ci.builds.generate import leaf_kind
        leaf_kind(leaf)
    error = None
except Exception as e:
    error = f"{type(e).__name__}: {e}"
cpu = time.process_time() - t0
print(json.dumps({"cpu": cpu, "error": error,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@pytest.mark.parametrize("where", ["sdg.seeds", "build.postcheck", "build.generate"])
def test_later_stages_read_leaves_through_the_bounded_reader(where):
    """The preview (seeds) and the build (post-check, generation) read leaf bytes too:
    a bomb is a clean, located error there, within the same bounds."""
    out = run_child(MIXED, where)
    assert out["cpu"] < CPU_LIMIT_S and out["rss_mb"] < RSS_LIMIT_MB, out
    assert out["error"] and "alias" in out["error"] and "line" in out["error"], out


def test_cli_answers_an_alias_bomb_pull_request(tmp_path: Path):
    """The reported attack end to end: a pull request adding a 600-byte bomb."""
    repo = tmp_path / "tax"
    repo.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    write_file(repo, "README.md", b"taxonomy\n")
    commit_all(repo, "base")
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    write_file(repo, "compositional_skills/bomb/qna.yaml", alias_bomb_mappings())
    write_file(repo, "compositional_skills/bomb/attribution.txt", b"me\n")
    commit_all(repo, "bomb")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
        "resource.setrlimit(resource.RLIMIT_CPU, (30, 30)); from lab_ci.cli import main; sys.exit(main())"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, "check", "--base", "main", "--head", "pr", "--format", "json"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1, p.stderr
    (f,) = json.loads(p.stdout)["files"]
    assert [d["rule"] for d in f["diagnostics"] if d["severity"] == "error"] == ["alias-expansion"]
