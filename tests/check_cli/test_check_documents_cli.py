"""``lab-ci check --documents`` end to end: a real taxonomy repository, a real documents
repository served to the safe fetcher as an operator's mirror of its github.com URL
(what ``LAB_CI_DOCUMENT_MIRRORS`` does in production), nothing on the network."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from test_check_cli_e2e import add_leaf, assert_clean_error, lab_ci, text

from lab_ci.check.documents import DocumentRef, FetchingVerifier
from lab_ci.taxonomy.documents import DocumentFetcher, FetchPolicy
from labtest import commit_all, run_git

URL = "https://github.com/octocat/moon"
LEAF = "knowledge/astronomy/moon/qna.yaml"


def docs_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "moon-docs"
    repo.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    add_leaf(repo, "moon.md", b"# The Moon\n\nThe Moon is Earth's only natural satellite.\n")
    add_leaf(repo, "scan.pdf", b"%PDF-1.4\n\x00\x01\x02\xff binary\n")
    add_leaf(repo, "latin1.md", "caf\u00e9 au lait\n".encode("latin-1"))
    return repo, commit_all(repo, "documents")


def knowledge_leaf(commit: str, patterns: list[str], repo: str = URL) -> bytes:
    pats = "\n".join(f"    - '{p}'" for p in patterns)
    seeds = "".join(
        f"  - context: Fact {i} about the Moon.\n    questions_and_answers:\n"
        + "".join(f"      - question: Q{i}{x}\n        answer: A{x}.\n" for x in "abc")
        for i in range(1, 6)
    )
    return (
        "version: 3\ncreated_by: octocat\ndomain: astronomy\ndocument_outline: Facts about the Moon.\n"
        f"document:\n  repo: {repo}\n  commit: {commit}\n  patterns:\n{pats}\nseed_examples:\n{seeds}"
    ).encode()


def taxonomy(tmp_path: Path, leaf: bytes) -> Path:
    repo = tmp_path / "tax"
    repo.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    add_leaf(repo, LEAF, leaf)
    add_leaf(repo, "knowledge/astronomy/moon/attribution.txt", b"Title of work: Moon\n")
    commit_all(repo, "leaf")
    return repo


def check(repo: Path, docs: Path, *extra: str, env: dict | None = None):
    p = lab_ci("--documents", "--document-mirror", f"{URL}={docs}", "--format", "json", *extra, cwd=repo, env=env)
    out, err = text(p)
    assert "Traceback" not in err, err
    return p, json.loads(out) if out.strip() else None


def diags(report: dict) -> list[dict]:
    return [d for f in report["files"] for d in f["diagnostics"] if d["rule"] == "document-fetch"]


def test_a_leaf_whose_documents_are_there_passes(tmp_path: Path):
    docs, sha = docs_repo(tmp_path)
    repo = taxonomy(tmp_path, knowledge_leaf(sha, ["moon.md", "*.md"]))
    p, report = check(repo, docs)
    assert p.returncode == 0, report
    assert diags(report) == []


def test_missing_commit_is_an_error_on_the_commit_line(tmp_path: Path):
    docs, _ = docs_repo(tmp_path)
    missing = "0123456789abcdef0123456789abcdef01234567"
    repo = taxonomy(tmp_path, knowledge_leaf(missing, ["moon.md"]))
    p, report = check(repo, docs)
    assert p.returncode == 1
    [d] = diags(report)
    assert (d["line"], d["column"], d["severity"]) == (7, 11, "error")  # `commit:` value on line 7
    assert d["message"] == "could not fetch the document repository: commit not found"
    assert "Push the commit" in d["hint"]
    assert p.stderr == b""  # git's words go to the log, shown only with lab-ci -v
    # the same run without --documents is clean: the static rules are satisfied
    assert lab_ci("--no-cache", cwd=repo).returncode == 0


def test_patterns_matching_nothing_or_only_unreadable_files(tmp_path: Path):
    docs, sha = docs_repo(tmp_path)
    repo = taxonomy(tmp_path, knowledge_leaf(sha, ["moon.md", "sun.md", "*.pdf", "latin1.md"]))
    p, report = check(repo, docs)
    assert p.returncode == 1
    found = {(d["line"], d["column"]): d for d in diags(report)}
    assert sorted(found) == [(10, 7), (11, 7), (12, 7)]  # patterns 2, 3, 4: their own lines
    assert found[(10, 7)]["message"].startswith("the pattern `sun.md` matches no file of the repository at commit ")
    assert found[(11, 7)]["message"] == "the pattern `*.pdf` matches only files lab-ci cannot read: `scan.pdf` (binary)"
    assert "(not UTF-8 text)" in found[(12, 7)]["message"]
    assert all(d["hint"] for d in found.values())
    # text output: file:line:col, the message, the hint on a second line; never git's words
    t = lab_ci("--documents", "--document-mirror", f"{URL}={docs}", cwd=repo)
    out, _ = text(t)
    assert f"{LEAF}:10:7: error [taxonomy/document-fetch] the pattern `sun.md` matches no file" in out
    assert "fatal:" not in out and "error: pathspec" not in out


def test_an_unsafe_repository_is_refused_without_a_connection(tmp_path: Path):
    """A code-host name the static rules accept, but not on the fetch allow-list: refused
    before any name resolution; and a host on the list that resolves to loopback is
    refused before any connection (the listener sees nothing)."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = taxonomy(tmp_path, knowledge_leaf(sha, ["moon.md"], repo="https://gitlab.internal.example/ops/moon"))
    p = lab_ci("--documents", "--format", "json", "--no-cache", cwd=repo)
    [d] = diags(json.loads(p.stdout))
    assert p.returncode == 1 and (d["line"], d["column"]) == (6, 9)  # `repo:` value
    assert d["message"] == "could not fetch the document repository: host not allowed"
    assert "github.com" in d["hint"]

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        policy = FetchPolicy(
            allowed_hosts=(f"github.com:{port}",), resolver=lambda host, port: ["127.0.0.1"], timeout=10
        )
        verifier = FetchingVerifier(DocumentFetcher(cache_dir=tmp_path / "c", policy=policy))
        [f] = verifier.verify(DocumentRef(f"https://github.com:{port}/octocat/moon", sha, ("moon.md",)))
        assert (f.field, f.message) == ("repo", "could not fetch the document repository: address not allowed")
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


def test_documents_flags_are_usage_errors_alone(tmp_path: Path):
    repo = taxonomy(tmp_path, knowledge_leaf("0" * 40, ["moon.md"]))
    assert_clean_error(lab_ci("--document-mirror", f"{URL}=/x", cwd=repo), "go with --documents")
    assert_clean_error(lab_ci("--documents", "--document-mirror", "nonsense", cwd=repo), "is not URL=PATH")


def test_the_verifier_over_real_https(tmp_path: Path):
    """The remote path: real git over real HTTPS on loopback (tests/fetch's server and
    throwaway CA), permitted only through the policy's test seams."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fetch"))
    from fetchlib import GitHttpsServer, make_tls, publish_docs

    host = "docs.lab-ci.test"
    root = tmp_path / "srv"
    root.mkdir()
    sha = publish_docs(root, "moon.git", {"moon.md": b"# The Moon\n", "scan.pdf": b"%PDF\x00\x01"})
    tls = make_tls(tmp_path / "tls", [host])
    with GitHttpsServer(root, tls) as server:
        policy = FetchPolicy(
            allowed_hosts=(f"{host}:{server.port}",),
            ca_file=str(tls["ca"]),
            resolver=lambda h, p: ["127.0.0.1"],
            permitted_addresses=frozenset({"127.0.0.1"}),
            timeout=60,
        )
        verifier = FetchingVerifier(DocumentFetcher(cache_dir=tmp_path / "cache", policy=policy))
        url = f"https://{host}:{server.port}/moon.git"
        assert verifier.verify(DocumentRef(url, sha, ("moon.md",))) == []
        [f] = verifier.verify(DocumentRef(url, "89abcdef" * 5, ("moon.md",)))
        assert (f.field, f.message) == ("commit", "could not fetch the document repository: commit not found")
        found = verifier.verify(DocumentRef(url, sha, ("moon.md", "sun.md", "*.pdf")))
        assert [(f.field, f.index) for f in found] == [("patterns", 1), ("patterns", 2)]
        [f] = verifier.verify(DocumentRef(f"https://{host}:{server.port}/nothing.git", sha, ("moon.md",)))
        assert (f.field, f.message) == ("repo", "could not fetch the document repository: not found")
        assert "public" in f.hint
