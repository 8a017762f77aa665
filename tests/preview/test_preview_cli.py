"""``lab-ci preview`` on a real git taxonomy with the real tiny teacher."""

import json
import os
import re
import subprocess

import pytest

from lab_ci.cli import main
from lab_ci.preview.model import MARKER
from lab_ci.preview.render import GITHUB_COMMENT_LIMIT

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


# ------------------------------------------------------------------ contributor feedback (issue 12)

SUMMARY = "compositional_skills/extraction/commit_messages/summary/qna.yaml"
EMPTY = "compositional_skills/linguistics/empty_for_now/qna.yaml"


def add_files(repo, files: dict[str, str], branch="change"):
    git("checkout", "--quiet", "-b", branch, cwd=repo)
    for path, text in files.items():
        p = repo / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text if not text.startswith("+") else p.read_text() + text[1:])
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "change", cwd=repo)


def test_one_preview_of_every_kind_of_leaf(example_taxonomy_repo, common, tiny_models, capsys, tmp_path):
    """A pull request touching a freeform, a grounded and a knowledge leaf and adding an
    empty one: one run, every finding of issue 12's "Preview output" list."""
    repo = example_taxonomy_repo
    add_files(
        repo,
        {
            ANTONYMS: "+\n# more\n",
            SUMMARY: "+\n# more\n",
            KESTREL: "+\n# more\n",
            EMPTY: "",
            EMPTY.replace("qna.yaml", "attribution.txt"): "Title of work: mine\n",
        },
    )
    # check accepts the empty leaf (a warning, as the reference validator does) ...
    assert main(["check", "--taxonomy", str(repo), "--base", "main", "--head", "change"]) == 0
    capsys.readouterr()
    md_path, json_path = tmp_path / "preview.md", tmp_path / "preview.json"
    args = ["--taxonomy", str(repo), "--base", "main", "--head", "change", *common, "--samples", "4"]
    args += ["--precheck-model", str(tiny_models["teacher"]), "-o", str(md_path), "--json-output", str(json_path)]
    code, out, err = run_cli(args, capsys)
    # ... so the preview does not fail on it either
    assert code == 0, err
    md, data = md_path.read_text(), json.loads(json_path.read_text())
    leaves = {l["path"]: l for l in data["leaves"]}
    assert leaves[EMPTY]["status"] == "empty"
    assert "**Not previewed: the file is empty.**" in md and "1 empty (nothing to generate from)" in md
    assert "3 leaves previewed" in md and "4 samples per leaf" in md and "(s)" not in md and "/leaves" not in md

    # the teacher by id and name, never by its local path (not in JSON either)
    folder = str(tiny_models["teacher"].parent)
    assert folder not in md and folder not in json_path.read_text()
    assert "path" not in data["teacher"]["details"] and data["teacher"]["id"].startswith("gguf:")

    # seeds counted from 1, in the JSON and the comment
    ids = [i for l in leaves.values() for r in l["accepted"] + l["rejected"] for i in r["metadata"]["seed_ids"]]
    ids += [p["seed_id"] for l in leaves.values() for p in l["precheck"]]
    assert ids and all(not i.startswith("0") and ".0" not in i for i in ids), ids
    assert "| 1 | What is the antonym of" in md

    # grounded samples: the generated context and the question apart
    grounded = leaves[SUMMARY]["accepted"] + leaves[SUMMARY]["rejected"]
    with_context = [r["fields"] for r in grounded if r["fields"].get("context") and r["fields"].get("question")]
    assert with_context, grounded
    for f in with_context:
        assert f["context"] not in f["question"]
    summary_md = md.split("### compositional\\_skills\\/extraction")[1].split("\n### ")[0]
    assert "\nContext:\n" in summary_md and "\nQuestion:\n" in summary_md

    # knowledge samples: which document chunk and heading they come from
    k = leaves[KESTREL]
    sources = [r["fields"].get("document_source") for r in k["accepted"] + k["rejected"]]
    assert any(sources), k
    assert "Document passage: kestrel\\-island\\/" in md and ", chunk " in md and ", section “" in md

    # no empty "Rejected samples (0)" block, and no pipeline tags in any accepted sample
    for l in leaves.values():
        if not l["rejected"]:
            assert "<summary>Rejected samples (0)" not in md
        for r in l["accepted"]:
            assert not re.search(r"\[(?:start|end) of|\[(?:question|answer|end)\]", json.dumps(r["messages"]), re.I)


def test_output_in_a_missing_folder_fails_before_generating(example_taxonomy_repo, common, capsys, tmp_path):
    repo = example_taxonomy_repo
    branch_with(repo, {KESTREL: "+\n# a comment\n"})
    target = tmp_path / "missing" / "dir" / "x.md"
    code, out, err = run_cli(["--taxonomy", str(repo), "--base", "main", *common, "-o", str(target)], capsys)
    assert code == 2 and out == ""
    assert err == f"lab-ci: error: --output {target}: the folder {target.parent} does not exist\n"
    assert not (tmp_path / "doc-cache").exists()  # nothing was fetched or generated
    code, out, err = run_cli(
        ["--taxonomy", str(repo), "--base", "main", *common, "--json-output", str(tmp_path)], capsys
    )
    assert code == 2 and err == f"lab-ci: error: --json-output {tmp_path}: is a folder, not a file\n"


def test_no_teacher_is_named_when_nothing_needed_one(example_taxonomy_repo, tiny_models, capsys):
    repo = example_taxonomy_repo
    git("checkout", "--quiet", "-b", "change", cwd=repo)
    git("rm", "--quiet", HAIKU, cwd=repo)
    git("commit", "--quiet", "-m", "rm", cwd=repo)
    code, out, err = run_cli(
        ["--taxonomy", str(repo), "--base", "main", "--teacher", str(tiny_models["teacher"])], capsys
    )
    assert code == 0, err
    assert "Deleted: nothing to preview." in out
    assert "Teacher:" not in out and str(tiny_models["teacher"]) not in out  # it printed the path here


@pytest.fixture
def corpus_checkout(corpus_mirror, tmp_path):
    dest = tmp_path / "corpus"
    git("clone", "--quiet", "--no-checkout", str(corpus_mirror), str(dest), cwd=tmp_path)
    return dest


def test_real_pr_712_fits_githubs_comment_limit(corpus_checkout, capsys, tmp_path):
    """pr/712 adds 203 leaves, all invalid: the comment was 68,132 characters (GitHub
    refuses more than 65,536); now it fits and still names every leaf."""
    code, out, err = run_cli(
        ["--taxonomy", str(corpus_checkout), "--base", "origin/pr/712^", "--head", "origin/pr/712", "--teacher", "x"],
        capsys,
    )
    assert code == 1, err
    assert len(out) <= GITHUB_COMMENT_LIMIT
    assert out.count("\n### ") == 203 and "203 invalid (not previewed)" in out
    assert "Run `lab-ci check` for every problem of the invalid leaves." in out


def test_real_pr_586_lists_structural_errors_before_trailing_spaces(corpus_checkout, capsys):
    """pr/586's first errors by line were trailing spaces, and the schema errors
    (unknown keys from line 45 on) were cut off; now they come first."""
    code, out, err = run_cli(
        ["--taxonomy", str(corpus_checkout), "--base", "origin/pr/586^", "--head", "origin/pr/586", "--teacher", "x"],
        capsys,
    )
    assert code == 1, err
    listed = [line for line in out.splitlines() if line.startswith("- ")]
    assert len(listed) == 6
    assert not any("trailing" in line for line in listed[:5])
    assert listed[0].startswith("- line 1, column 1: \\'version\\' is a required property")
    assert listed[-1].startswith("- … and 30 more errors not shown:") and "trailing\\-spaces × 8" in listed[-1]
