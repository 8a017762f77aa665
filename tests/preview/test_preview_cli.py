"""``lab-ci preview`` on a real git taxonomy with the real tiny teacher."""

import json
import os
import subprocess

import pytest

from lab_ci.cli import main
from lab_ci.preview.model import MARKER

EXAMPLE_DOCS_URL = "https://github.com/lab-ci/example-documents.git"
ANTONYMS = "compositional_skills/linguistics/antonyms/qna.yaml"
HAIKU = "compositional_skills/writing/freeform/haiku/qna.yaml"
KESTREL = "knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml"


def git(*args, cwd):
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def branch_with(repo, edits: dict[str, str]):
    git("checkout", "--quiet", "-b", "change", cwd=repo)
    for path, text in edits.items():
        p = repo / path
        p.write_text(text if not text.startswith("+") else p.read_text() + text[1:])
    git("commit", "--quiet", "-am", "change", cwd=repo)


def run_cli(args, capsys):
    code = main(["preview", "--quiet", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def common(tiny_models, tmp_path, example_docs_repo):
    return [
        "--teacher",
        str(tiny_models["teacher"]),
        "--samples",
        "2",
        "--max-tokens",
        "32",
        "--document-cache",
        str(tmp_path / "doc-cache"),
        "--document-mirror",
        f"{EXAMPLE_DOCS_URL}={example_docs_repo}",
    ]


def test_preview_only_the_changed_leaf(example_taxonomy_repo, common, capsys):
    repo = example_taxonomy_repo
    branch_with(repo, {ANTONYMS: (repo / ANTONYMS).read_text().replace("version: 3", "version: 3\n# tweak", 1)})
    code, out, err = run_cli(["--taxonomy", str(repo), "--base", "main", "--head", "change", *common], capsys)
    assert code == 0, err
    assert out.startswith(MARKER)
    assert "### compositional\\_skills\\/linguistics\\/antonyms\\/qna\\.yaml" in out
    assert "haiku" not in out and "kestrel" not in out
    assert "1 leaf previewed." in out
    assert "<summary>Accepted samples (" in out or "No sample was accepted." in out
    assert "Teacher: " in out and "(gguf\\:" in out  # the teacher's name and id (':' escaped)


def test_invalid_changed_leaf_is_not_previewed(example_taxonomy_repo, common, capsys):
    repo = example_taxonomy_repo
    broken = (repo / HAIKU).read_text().replace("seed_examples:", "seed_examplez:", 1)
    branch_with(repo, {HAIKU: broken})
    code, out, err = run_cli(["--taxonomy", str(repo), "--base", "main", "--head", "change", *common], capsys)
    assert code == 1
    assert "**Not previewed: the leaf is invalid.**" in out
    assert "haiku" in out and "0 leaves previewed, 1 invalid (not previewed)" in out


def test_json_output_to_file_and_determinism(example_taxonomy_repo, common, capsys, tmp_path):
    repo = example_taxonomy_repo
    branch_with(repo, {KESTREL: "+\n# a comment at the end\n"})
    outs = []
    for i in range(2):
        target = tmp_path / f"preview{i}.json"
        code, out, err = run_cli(
            ["--taxonomy", str(repo), "--base", "main", "--format", "json", "--output", str(target), *common], capsys
        )
        assert code == 0, err
        assert out == ""
        outs.append(json.loads(target.read_text()))
    data = outs[0]
    assert [l["path"] for l in data["leaves"]] == [KESTREL]
    leaf = data["leaves"][0]
    assert leaf["status"] == "previewed" and leaf["pipeline"] == "knowledge"
    assert len(leaf["accepted"]) + len(leaf["rejected"]) == leaf["stats"]["candidates"] == 2
    assert data["teacher"]["id"].startswith("gguf:")
    strip = lambda d: [(l["accepted"], l["rejected"]) for l in d["leaves"]]  # noqa: E731
    assert strip(outs[0]) == strip(outs[1])


def test_precheck_compares_seed_answers(example_taxonomy_repo, common, tiny_models, capsys):
    repo = example_taxonomy_repo
    branch_with(repo, {ANTONYMS: "+\n# more\n"})
    code, out, err = run_cli(
        ["--taxonomy", str(repo), "--base", "main", "--precheck-model", str(tiny_models["teacher"]), *common], capsys
    )
    assert code == 0, err
    assert "Precheck: what" in out and "| Seed | Question | F1 | ROUGE-L |" in out
    assert "Your answer:" in out and "Current model:" in out


def test_missing_teacher_is_a_clear_error(example_taxonomy_repo, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("LAB_CI_TEACHER", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["--taxonomy", str(example_taxonomy_repo)], capsys)
    assert code == 2
    assert "lab-ci: error: no teacher model" in err and "build_tiny_models.py" in err
    code, out, err = run_cli(
        ["--taxonomy", str(example_taxonomy_repo), "--teacher", str(tmp_path / "nope.gguf")], capsys
    )
    assert code == 2 and "lab-ci: error: cannot load model" in err
    code, out, err = run_cli(
        ["--taxonomy", str(example_taxonomy_repo), "--teacher", "x.gguf", "--document-mirror", "nonsense"], capsys
    )
    assert code == 2 and "URL=PATH" in err


def test_untrusted_document_url_fails_that_leaf_only(example_taxonomy_repo, common, capsys):
    repo = example_taxonomy_repo
    text = (repo / KESTREL).read_text().replace(EXAMPLE_DOCS_URL, "https://bot:s3cret@github.com/lab-ci/x.git")
    branch_with(repo, {KESTREL: text})
    code, out, err = run_cli(["--taxonomy", str(repo), "--base", "main", *common], capsys)
    assert code == 1
    assert "Not previewed: generation failed" in out
    assert "document\\.repo" in out and "credentials" in out
    assert "s3cret" not in out
