"""Hostile trees on real git repositories: huge blobs, bare repositories with no
revision, special files (fifos) as leaves, untracked files that must not be hashed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lab_ci.check.api import check_taxonomy
from lab_ci.check.options import CheckOptions
from lab_ci.errors import LabCIError
from lab_ci.taxonomy.collect import collect_leaves
from lab_ci.taxonomy.gitrepo import GitTaxonomy, leaf_pathspecs
from lab_ci.taxonomy.leaf import git_blob_id
from labtest import commit_all as commit
from labtest import run_git
from labtest import write_file as write

QNA = b"version: 3\ntask_description: a\ncreated_by: me\n"
LIMIT = 4096
HUGE = 3 * 1024 * 1024  # far over LIMIT: must never be read whole


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "tax"
    r.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=r)
    write(r, "knowledge/a/qna.yaml", QNA)
    write(r, "knowledge/a/attribution.txt", b"Title: a\n")
    commit(r, "base")
    return r


def huge_bytes() -> bytes:
    return b"# " + b"x" * (HUGE - 3) + b"\n"


def test_huge_blobs_are_read_only_up_to_the_limit(repo: Path, tmp_path: Path):
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    big = huge_bytes()
    write(repo, "knowledge/big/qna.yaml", big)
    write(repo, "knowledge/big/attribution.txt", big)
    commit(repo, "huge leaf")
    bare = tmp_path / "bare.git"
    run_git("clone", "--quiet", "--mirror", str(repo), str(bare))
    for where, kwargs in [
        (repo, {"head": "pr"}),  # one revision's tree (ls-tree -l sizes)
        (repo, {"base": "main", "head": "pr"}),  # a change between revisions
        (bare, {"base": "main", "head": "pr"}),  # the bot's bare mirror
        (repo, {}),  # files on disk
        (repo, {"base": "main"}),  # the working tree against a base
    ]:
        leaves = {x.path: x for x in collect_leaves(where, max_bytes=LIMIT, **kwargs)}
        leaf = leaves["knowledge/big/qna.yaml"]
        assert leaf.kind == "file" and len(leaf.data) == LIMIT + 1, kwargs
        assert leaf.data == big[: LIMIT + 1]
        assert len(leaf.attribution) == LIMIT + 1
        if kwargs.get("head"):  # from git: the real blob id, read or not
            assert leaf.blob_id == git_blob_id(big)
        small = leaves.get("knowledge/a/qna.yaml")
        if small is not None:
            assert small.data == QNA and small.blob_id == git_blob_id(QNA)
    # The engine's size check fires on what was read: an error, no parsing.
    report = check_taxonomy(repo, base="main", head="pr", options=CheckOptions(max_file_bytes=LIMIT), use_cache=False)
    (f,) = report.files
    assert not f.valid and [d.rule for d in f.diagnostics] == ["file-too-large"]
    # Under a limit it fits, the same file is read whole.
    leaves = collect_leaves(repo, head="pr", paths=["knowledge/big/qna.yaml"], max_bytes=HUGE)
    assert leaves[0].data == big


def test_read_blob_head_stops_the_reader(repo: Path):
    big = huge_bytes()
    p = write(repo, "big.bin", big)
    sha = (
        subprocess.run(["git", "hash-object", "-w", str(p)], cwd=repo, capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )
    with GitTaxonomy.open(repo) as gt:
        assert gt.blob_sizes([sha]) == {sha: len(big)}
        assert gt.read_blob_head(sha, 10) == big[:10]
        assert gt.read_blobs([sha], max_bytes=99) == {sha: big[:100]}
        assert gt.read_blobs([sha], max_bytes=len(big)) == {sha: big}
        with pytest.raises(LabCIError, match="cannot read git object"):
            gt.read_blobs(["0" * 39 + "1"], max_bytes=10)


def test_bare_repository_without_a_revision_is_an_error(repo: Path, tmp_path: Path):
    bare = tmp_path / "bare.git"
    run_git("clone", "--quiet", "--bare", str(repo), str(bare))
    with pytest.raises(LabCIError, match="is a bare repository.*--head REV"):
        collect_leaves(bare)
    with pytest.raises(LabCIError, match="bare repository"):
        collect_leaves(bare, paths=["knowledge/a/qna.yaml"])
    assert [x.path for x in collect_leaves(bare, head="main")] == ["knowledge/a/qna.yaml"]
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    p = subprocess.run(
        [sys.executable, "-m", "lab_ci", "check", "--taxonomy", str(bare)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert p.returncode == 2 and p.stdout == b""
    err = p.stderr.decode().strip()
    assert err.startswith("lab-ci: error: ") and "bare repository" in err and "Traceback" not in err


def test_working_tree_snapshot_hashes_only_leaf_files(repo: Path, tmp_path: Path):
    # A clean filter runs whenever git hashes a file: it logs what was hashed.
    log = tmp_path / "hashed.log"
    run_git("config", "filter.spy.clean", f'sh -c \'printf "%s\\n" "$1" >> {log}; cat\' -- %f', cwd=repo)
    write(repo, ".gitattributes", b"* filter=spy\n")
    commit(repo, "attributes")
    log.unlink(missing_ok=True)
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    write(repo, "knowledge/new/qna.yaml", QNA + b"document_outline: new\n")  # untracked leaf
    write(repo, "knowledge/a/attribution.txt", b"Title: a, revised\n")  # modified attribution
    write(repo, "knowledge/new/big-data.bin", b"\0" * 200_000)  # untracked non-leaf files
    write(repo, "scratch/notes.txt", b"notes\n")
    leaves = collect_leaves(repo, base="main")
    assert [(x.path, x.change) for x in leaves] == [
        ("knowledge/a/qna.yaml", "modified"),
        ("knowledge/new/qna.yaml", "added"),
    ]
    hashed = set(log.read_text().split())
    # The new leaf files were hashed; the untracked non-leaf files never were (a
    # multi-GB file there costs nothing). Tracked files git finds racily clean may be
    # re-hashed by git itself, so only these are asserted.
    assert {"knowledge/new/qna.yaml", "knowledge/a/attribution.txt"} <= hashed
    assert not hashed & {"knowledge/new/big-data.bin", "scratch/notes.txt"}
    # The user's index is untouched.
    assert run_git("status", "--porcelain", cwd=repo).count("??") == 2
    assert leaf_pathspecs("sub/", folders=("knowledge",)) == [
        ":(glob)sub/**/qna.yaml",
        ":(glob)sub/**/qna.yaml/**",
        ":(glob)sub/**/attribution.txt",
        ":(glob,icase)sub/knowledge/**/*.yaml",
        ":(glob,icase)sub/knowledge/**/*.yml",
    ]


def _no_hang(fn, timeout: float = 60):
    """Run ``fn`` in a thread; fail (rather than hang the suite) if it blocks."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "reading a fifo blocked"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos on this platform")
def test_fifo_leaf_and_attribution_are_per_file_errors(repo: Path):
    write(repo, "knowledge/t/qna.yaml", QNA)
    commit(repo, "a tracked leaf")
    run_git("checkout", "--quiet", "-b", "pr", cwd=repo)
    (repo / "knowledge/t/qna.yaml").unlink()
    os.mkfifo(repo / "knowledge/t/qna.yaml")  # a tracked leaf replaced by a fifo
    os.mkfifo(repo / "knowledge/a/attribution.txt.tmp")
    (repo / "knowledge/a/attribution.txt").unlink()
    os.rename(repo / "knowledge/a/attribution.txt.tmp", repo / "knowledge/a/attribution.txt")
    fifo_leaf = repo / "knowledge/f/qna.yaml"
    fifo_leaf.parent.mkdir(parents=True)
    os.mkfifo(fifo_leaf)
    for kwargs in ({}, {"paths": ["knowledge/f/qna.yaml"]}, {"base": "main"}):
        leaves = {x.path: x for x in _no_hang(lambda kw=kwargs: collect_leaves(repo, **kw))}
        if "paths" not in kwargs:
            a = leaves["knowledge/a/qna.yaml"]
            assert a.kind == "file" and a.attribution is None and a.attribution_kind == "fifo"
        if "base" not in kwargs:  # git does not see a new fifo: no change to report
            f = leaves["knowledge/f/qna.yaml"]
            assert f.kind == "fifo" and f.data is None
        if "paths" not in kwargs:
            t = leaves["knowledge/t/qna.yaml"]
            assert t.kind == "fifo" and t.data is None
            assert t.change == ("modified" if "base" in kwargs else "checked")
    report = _no_hang(lambda: check_taxonomy(repo, use_cache=False))
    by_path = {f.path: f for f in report.files}
    assert not by_path["knowledge/f/qna.yaml"].valid
    (d,) = by_path["knowledge/f/qna.yaml"].diagnostics
    assert d.rule == "not-a-file" and "fifo" in d.message
    assert any("fifo" in x.message for x in by_path["knowledge/a/qna.yaml"].diagnostics)
