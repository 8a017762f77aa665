"""Leaf collection from real git repositories made in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab_ci.errors import LabCIError
from lab_ci.taxonomy.collect import collect_leaves
from lab_ci.taxonomy.gitrepo import GitTaxonomy
from lab_ci.taxonomy.leaf import git_blob_id
from labtest import commit_all as commit
from labtest import run_git
from labtest import write_file as write

QNA_A = b"version: 3\ntask_description: a\ncreated_by: me\n"
QNA_B = b"version: 3\ntask_description: b\ncreated_by: me\n"


def leaf(name: str) -> bytes:
    """Distinct contents per leaf, so git pairs renames unambiguously."""
    return QNA_A + f"document_outline: {name} ".encode() + name.encode() * 40 + b"\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "tax"
    r.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=r)
    for name in ("knowledge/a", "knowledge/b", "compositional_skills/c", "compositional_skills/d"):
        write(r, f"{name}/qna.yaml", leaf(name))
    write(r, "knowledge/a/attribution.txt", b"Title: a\n")
    write(r, "README.md", b"readme\n")
    commit(r, "base")
    return r


def by_path(leaves):
    return {leaf.path: leaf for leaf in leaves}


def test_added_modified_deleted_renamed_attribution(repo: Path):
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    write(repo, "knowledge/new/qna.yaml", QNA_B)  # added
    write(repo, "knowledge/b/qna.yaml", QNA_B)  # modified
    (repo / "compositional_skills/c/qna.yaml").unlink()  # deleted
    run_git("mv", "compositional_skills/d", "compositional_skills/d2", cwd=repo)  # renamed
    write(repo, "knowledge/a/attribution.txt", b"Title: a, revised\n")  # attribution only
    write(repo, "README.md", b"changed, not a leaf\n")
    commit(repo, "pr")
    leaves = by_path(collect_leaves(repo, base="main", head="pr"))
    assert {p: (x.change, x.old_path) for p, x in leaves.items()} == {
        "knowledge/new/qna.yaml": ("added", None),
        "knowledge/b/qna.yaml": ("modified", None),
        "compositional_skills/c/qna.yaml": ("deleted", None),
        "compositional_skills/d2/qna.yaml": ("renamed", "compositional_skills/d/qna.yaml"),
        "knowledge/a/qna.yaml": ("modified", None),
    }
    assert leaves["knowledge/new/qna.yaml"].data == QNA_B
    assert leaves["knowledge/new/qna.yaml"].blob_id == git_blob_id(QNA_B)
    assert leaves["knowledge/a/qna.yaml"].attribution == b"Title: a, revised\n"
    assert leaves["knowledge/a/qna.yaml"].attribution_kind == "file"
    assert leaves["knowledge/b/qna.yaml"].attribution_kind == "missing"
    gone = leaves["compositional_skills/c/qna.yaml"]
    assert gone.kind == "missing" and gone.data is None


def test_symlink_directory_and_submodule_leaves(repo: Path, tmp_path: Path):
    sub = tmp_path / "sub"
    sub.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=sub)
    write(sub, "x.txt", b"x\n")
    commit(sub)
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    os.makedirs(repo / "knowledge/link")
    os.symlink("../a/qna.yaml", repo / "knowledge/link/qna.yaml")
    write(repo, "knowledge/dir/qna.yaml/inner.yaml", QNA_A)
    run_git(
        "-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(sub), "knowledge/sm/qna.yaml", cwd=repo
    )
    commit(repo, "odd kinds")
    for head in ("pr", None):  # committed tree, and the same state on disk
        leaves = by_path(collect_leaves(repo, base="main", head=head))
        kinds = {p: (x.kind, x.change) for p, x in leaves.items()}
        assert kinds == {
            "knowledge/link/qna.yaml": ("symlink", "added"),
            "knowledge/dir/qna.yaml": ("directory", "added"),
            "knowledge/sm/qna.yaml": ("submodule", "added"),
        }, head
        assert all(x.data is None for x in leaves.values())
    whole = by_path(collect_leaves(repo, head="pr"))
    assert whole["knowledge/link/qna.yaml"].kind == "symlink"
    assert whole["knowledge/dir/qna.yaml"].kind == "directory"
    assert whole["knowledge/sm/qna.yaml"].kind == "submodule"
    assert "knowledge/dir/qna.yaml/inner.yaml" not in whole
    disk = by_path(collect_leaves(repo))
    assert {p: x.kind for p, x in disk.items()} == {p: x.kind for p, x in whole.items()}


def test_taxonomy_in_a_subfolder(tmp_path: Path):
    r = tmp_path / "proj"
    r.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=r)
    write(r, "taxonomy/knowledge/a/qna.yaml", QNA_A)
    write(r, "other/knowledge/z/qna.yaml", QNA_A)  # outside the taxonomy: never listed
    commit(r, "base")
    run_git("checkout", "--quiet", "-b", "pr", cwd=r)
    write(r, "taxonomy/knowledge/b/qna.yaml", QNA_B)
    write(r, "other/knowledge/y/qna.yaml", QNA_B)
    run_git("mv", "taxonomy/knowledge/a", "taxonomy/knowledge/a2", cwd=r)
    commit(r, "pr")
    tax = r / "taxonomy"
    assert GitTaxonomy.open(tax).prefix == "taxonomy/"
    leaves = by_path(collect_leaves(tax, base="main", head="pr"))
    assert {p: x.change for p, x in leaves.items()} == {
        "knowledge/b/qna.yaml": "added",
        "knowledge/a2/qna.yaml": "renamed",
    }
    assert leaves["knowledge/a2/qna.yaml"].old_path == "knowledge/a/qna.yaml"
    assert [x.path for x in collect_leaves(tax, head="main")] == ["knowledge/a/qna.yaml"]
    assert [x.path for x in collect_leaves(tax)] == ["knowledge/a2/qna.yaml", "knowledge/b/qna.yaml"]


def test_bare_clone(repo: Path, tmp_path: Path):
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    write(repo, "knowledge/b/qna.yaml", QNA_B)
    commit(repo)
    bare = tmp_path / "bare.git"
    run_git("clone", "--quiet", "--mirror", str(repo), str(bare))
    leaves = collect_leaves(bare, base="main", head="pr")
    assert [(x.path, x.change, x.data) for x in leaves] == [("knowledge/b/qna.yaml", "modified", QNA_B)]
    whole = collect_leaves(bare, head="main")
    assert len(whole) == 4 and all(x.kind == "file" for x in whole)
    only = collect_leaves(bare, head="pr", paths=["knowledge/a/attribution.txt"])
    assert [(x.path, x.attribution) for x in only] == [("knowledge/a/qna.yaml", b"Title: a\n")]


def test_base_not_an_ancestor_uses_the_merge_base(repo: Path):
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    write(repo, "knowledge/pr/qna.yaml", QNA_B)
    commit(repo, "pr change")
    run_git("checkout", "--quiet", "main", cwd=repo)
    write(repo, "knowledge/main-only/qna.yaml", QNA_B)  # landed on main after the fork
    (repo / "knowledge/b/qna.yaml").unlink()
    commit(repo, "main moves on")
    leaves = collect_leaves(repo, base="main", head="pr")
    # Like a pull request: main's later changes are not the PR's (no spurious deletions).
    assert [(x.path, x.change) for x in leaves] == [("knowledge/pr/qna.yaml", "added")]


def test_working_tree_with_uncommitted_and_untracked_changes(repo: Path):
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    write(repo, "knowledge/committed/qna.yaml", QNA_B)
    commit(repo)
    write(repo, "knowledge/b/qna.yaml", QNA_B)  # modified, not staged
    write(repo, "knowledge/untracked/qna.yaml", QNA_B)  # untracked
    write(repo, "knowledge/ignored/qna.yaml", QNA_B)  # ignored: not part of the change
    write(repo, ".gitignore", b"knowledge/ignored/\n")
    (repo / "compositional_skills/c/qna.yaml").unlink()  # deleted, not staged
    index_before = (repo / ".git/index").read_bytes()
    objects_before = sorted(p.name for p in (repo / ".git/objects").iterdir())
    leaves = by_path(collect_leaves(repo, base="main"))
    assert {p: x.change for p, x in leaves.items()} == {
        "knowledge/committed/qna.yaml": "added",
        "knowledge/b/qna.yaml": "modified",
        "knowledge/untracked/qna.yaml": "added",
        "compositional_skills/c/qna.yaml": "deleted",
    }
    assert leaves["knowledge/untracked/qna.yaml"].blob_id == git_blob_id(QNA_B)
    # The user's index and object store are untouched.
    assert (repo / ".git/index").read_bytes() == index_before
    assert sorted(p.name for p in (repo / ".git/objects").iterdir()) == objects_before


def test_paths_narrow_and_attribution_paths_map_to_their_leaf(repo: Path, monkeypatch):
    leaves = collect_leaves(repo, paths=["knowledge/a/attribution.txt", "compositional_skills"])
    assert [x.path for x in leaves] == [
        "compositional_skills/c/qna.yaml",
        "compositional_skills/d/qna.yaml",
        "knowledge/a/qna.yaml",
    ]
    assert leaves[-1].attribution == b"Title: a\n"
    # Relative to the current folder when run inside the taxonomy.
    monkeypatch.chdir(repo / "knowledge")
    assert [x.path for x in collect_leaves(repo, paths=["b/qna.yaml"])] == ["knowledge/b/qna.yaml"]
    at_rev = collect_leaves(repo, head="main", paths=["knowledge"])
    assert [x.path for x in at_rev] == ["knowledge/a/qna.yaml", "knowledge/b/qna.yaml"]
    changed = collect_leaves(repo, base="HEAD", paths=["knowledge"])
    assert changed == []


def test_clear_errors(repo: Path, tmp_path: Path):
    with pytest.raises(LabCIError, match="unknown revision 'nope'"):
        collect_leaves(repo, base="nope")
    with pytest.raises(LabCIError, match="invalid revision"):
        collect_leaves(repo, head="--output=/tmp/x")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(LabCIError, match="not inside a git repository"):
        collect_leaves(plain, base="main")
    with pytest.raises(LabCIError, match="does not exist"):
        collect_leaves(tmp_path / "missing")
    with pytest.raises(LabCIError, match="no such file"):
        collect_leaves(repo, paths=["knowledge/zzz/qna.yaml"])
    with pytest.raises(LabCIError, match="outside the taxonomy"):
        collect_leaves(repo, paths=[str(tmp_path)])
    with pytest.raises(LabCIError, match="no such file or folder at revision"):
        collect_leaves(repo, head="main", paths=["knowledge/zzz"])
    with pytest.raises(LabCIError, match="not valid UTF-8"):
        collect_leaves(repo, paths=["knowledge/\udcff"])
    orphan = "orphan"
    run_git("checkout", "--quiet", "--orphan", orphan, cwd=repo)
    run_git("commit", "--quiet", "-m", "unrelated", cwd=repo)
    with pytest.raises(LabCIError, match="no common ancestor"):
        collect_leaves(repo, base="main", head=orphan)


def test_misnamed_leaves_are_collected_from_every_source(repo: Path, tmp_path: Path):
    """qna.yml with its attribution.txt, movie_qna.yaml, QNA.yaml: seen by every way of
    collecting (a change between revisions, the working tree against a base, a whole
    tree, files on disk), each as the one added leaf of its folder; docs/ stays out."""
    from lab_ci.check.api import check_taxonomy

    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    write(repo, "knowledge/m/qna.yml", QNA_B)
    write(repo, "knowledge/m/attribution.txt", b"Title: m\n")
    write(repo, "knowledge/Movies/movie_qna.yaml", QNA_B)
    write(repo, "compositional_skills/u/QNA.yaml", QNA_B)
    write(repo, "docs/template_qna.yaml", QNA_B)
    want = {
        "compositional_skills/u/QNA.yaml": "added",
        "knowledge/Movies/movie_qna.yaml": "added",
        "knowledge/m/qna.yml": "added",
    }
    # Untracked, against a base: the working-tree snapshot hashes them.
    got = {x.path: x.change for x in collect_leaves(repo, base="main")}
    assert got == want
    commit(repo, "misnamed leaves")
    got = {x.path: x.change for x in collect_leaves(repo, base="main", head="pr")}
    assert got == want
    m = by_path(collect_leaves(repo, base="main", head="pr"))["knowledge/m/qna.yml"]
    assert m.data == QNA_B and m.attribution == b"Title: m\n"
    for kwargs in ({"head": "pr"}, {}):  # a whole tree, from git and from disk
        paths = {x.path for x in collect_leaves(repo, **kwargs)}
        assert set(want) <= paths and "docs/template_qna.yaml" not in paths, kwargs
    report = check_taxonomy(repo, base="main", head="pr", use_cache=False)
    assert report.exit_code == 1
    for f in report.files:
        assert f.change == "added" and "leaf-name" in [d.rule for d in f.diagnostics if d.severity == "error"]
