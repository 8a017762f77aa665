"""``lab-ci eval`` end to end through the real CLI (a subprocess): the example taxonomy
in a real git repository with one knowledge and one skill leaf changed, the real tiny
teacher (llama.cpp) writing questions and judging, the real tiny student scored with
transformers on CPU; gates both ways; a second run computes nothing; bad input exits 2
with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eval_helpers import ANTONYMS, EXAMPLE_DOCS_URL, LIGHTHOUSE

from labtest import REPO_ROOT, commit_all

WORK = ("eval: questions:", "scoring", "answering", "judging")


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lab_ci", "eval", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def change(tmp_path_factory, tiny_models, example_docs_repo):
    """A taxonomy repository whose last commit changes the lighthouse and antonyms leaves."""
    import shutil

    from labtest import EXAMPLE_TAXONOMY, run_git

    repo = tmp_path_factory.mktemp("tax") / "taxonomy"
    shutil.copytree(EXAMPLE_TAXONOMY, repo)
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    commit_all(repo, "example taxonomy")
    for path, old, new in (
        (ANTONYMS, '"hot"', '"warm"'),
        (LIGHTHOUSE, "How far away can the light be seen?", "From how far away can the light be seen?"),
    ):
        p = repo / path
        p.write_text(p.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    commit_all(repo, "change two leaves")
    return {"repo": repo, "models": tiny_models, "docs": example_docs_repo}


def common(change, out: Path, *extra: str) -> list[str]:
    m = change["models"]
    return [
        "--taxonomy",
        str(change["repo"]),
        "--base",
        "HEAD~1",
        "--head",
        "HEAD",
        "--candidate",
        str(m["student"]),
        "--baseline",
        str(m["student"]),
        "--teacher",
        str(m["teacher"]),
        "--document-mirror",
        f"{EXAMPLE_DOCS_URL}={change['docs']}",
        "--document-cache",
        str(out.parent / "docs"),
        "--questions",
        "8",
        "--guard-skills",
        "1",
        "--max-new-tokens",
        "32",
        "--out",
        str(out),
        *extra,
    ]


def test_eval_end_to_end_then_cached_then_gated(change, tmp_path):
    import jsonschema

    out = tmp_path / "eval"
    first = run_cli(*common(change, out))
    assert first.returncode == 0, first.stderr[-3000:]
    assert all(w in first.stderr for w in WORK), first.stderr  # it did the work
    results = json.loads((out / "results.json").read_text())
    schema = json.loads((REPO_ROOT / "lab_ci" / "eval" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(results)
    k = {r["leaf"]: r for r in results["knowledge"]["leaves"]}
    s = {r["leaf"]: r for r in results["skills"]["leaves"]}
    assert k[LIGHTHOUSE]["role"] == "changed" and s[ANTONYMS]["role"] == "changed"
    assert [r["role"] for r in s.values()].count("guard") == 1  # --guard-skills 1
    lighthouse = k[LIGHTHOUSE]
    assert lighthouse["questions_by_origin"]["seed"] == 15 and lighthouse["questions_generated"] == 8
    assert all(len(i["options"]) == 4 for i in lighthouse["items"])
    assert {i["origin"] for i in lighthouse["items"]} <= {"seed", "teacher"}
    # the same model as candidate and baseline: every paired difference is zero
    assert lighthouse["delta"] == 0 and lighthouse["ci"] == [0, 0] and lighthouse["n"] == len(lighthouse["items"])
    # the tiny teacher writes no rating (docs/maintainers/evaluation.md): skills are reported
    # as not evaluated, each answer with the judge's reply and why it is not a score
    for row in s.values():
        assert row["status"] == "unevaluated" and row["reason"] == "no answer pair was rated by the judge"
        assert row["unjudged"] == len(row["items"]) > 0
        assert all(i["candidate"]["error"].startswith("unparseable") for i in row["items"])
    assert results["gates"] == {**results["gates"], "passed": True, "active": False}
    report = (out / "report.md").read_text()
    assert "## Evaluation: candidate vs baseline" in report and "### Knowledge (MMLU-Branch)" in report
    assert (out / "deltas.png").read_bytes()[:4] == b"\x89PNG"
    assert "gates: none set" in first.stdout

    # the same evaluation again: everything comes from the cache, the same numbers
    second = run_cli(*common(change, out))
    assert second.returncode == 0, second.stderr[-3000:]
    assert not any(w in second.stderr for w in WORK), second.stderr
    again = json.loads((out / "results.json").read_text())
    assert {k: v for k, v in again.items() if k != "timings_s"} == {
        k: v for k, v in results.items() if k != "timings_s"
    }

    # gates both ways: no changed knowledge leaf dropped: passes
    ok = run_cli(*common(change, out, "--gate", "knowledge.max_leaf_drop=0.1"))
    assert ok.returncode == 0 and "gates: passed (1 checks)" in ok.stdout, ok.stdout + ok.stderr[-2000:]
    # a skills gate on leaves that could not be evaluated fails (unevaluated: fail)...
    skills = run_cli(*common(change, out, "--gate", "skills.max_leaf_drop=1"))
    assert skills.returncode == 1 and "gates: FAILED" in skills.stdout, skills.stdout
    assert f"{ANTONYMS}: not evaluated (no answer pair was rated by the judge)" in skills.stdout
    # ...unless the maintainer says to let them pass
    lenient = run_cli(*common(change, out, "--gate", "skills.max_leaf_drop=1", "--gate", "unevaluated=pass"))
    assert lenient.returncode == 0, lenient.stdout
    # the change must gain 0.1 in knowledge accuracy: it does not (the same model), exit 1
    gates_file = tmp_path / "lab-ci.yaml"
    gates_file.write_text("eval:\n  gates:\n    knowledge:\n      min_changed_gain: 0.1\n")
    bad = run_cli(*common(change, out, "--gates", str(gates_file)))
    assert bad.returncode == 1, bad.stdout + bad.stderr[-2000:]
    assert "gates: FAILED" in bad.stdout and "did not gain +0.1" in bad.stdout
    failed = json.loads((out / "results.json").read_text())["gates"]
    assert not failed["passed"] and failed["failures"][0]["gate"] == "knowledge.min_changed_gain"
    assert "Gates: **failed**" in (out / "report.md").read_text()
    # none of these runs computed anything again
    assert not any(w in r.stderr for r in (ok, skills, lenient, bad) for w in WORK)


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--gate", "knowledge.max_leaf_drop=lots"), "--gate knowledge.max_leaf_drop: must be a number"),
        (("--gate", "speed.max=1"), "--gate speed.max"),
        (("--questions", "0"), "--questions must be"),
        (("--pipeline-dir", "/nonexistent"), "--pipeline-dir /nonexistent: no such folder"),
    ],
)
def test_bad_options_exit_2_with_one_line(change, tmp_path, extra, message):
    r = run_cli(*common(change, tmp_path / "eval", *extra), timeout=120)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_models_and_gates_file_are_named(change, tmp_path):
    args = common(change, tmp_path / "eval")
    missing = list(args)
    missing[missing.index("--candidate") + 1] = str(tmp_path / "no-model")
    r = run_cli(*missing, timeout=120)
    assert r.returncode == 2 and "no-model" in r.stderr and "not a folder" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    gates = tmp_path / "gates.yaml"
    gates.write_text("eval:\n  gates:\n    knowledge:\n      max_leaf_drop: 3\n")
    r = run_cli(*args, "--gates", str(gates), timeout=120)
    assert r.returncode == 2 and f"{gates}: eval.gates.knowledge.max_leaf_drop: must be between 0 and 1" in r.stderr
