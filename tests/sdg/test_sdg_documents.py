"""Document fetching: untrusted URLs, commits and patterns are refused before any git
call; real local git repositories work through allow_file or a mirror; the cache."""

import os
import subprocess

import pytest

from lab_ci.taxonomy.documents import DocumentError, DocumentFetcher, glob_match, parse_mirrors


def run_git(*args, cwd):
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def docs_repo(tmp_path):
    repo = tmp_path / "docs"
    (repo / "guide").mkdir(parents=True)
    (repo / "guide" / "intro.md").write_text("# Intro\n\nHello @world, this is the intro.\n")
    (repo / "guide" / "deep").mkdir()
    (repo / "guide" / "deep" / "more.md").write_text("# More\n\nDeeper text.\n")
    (repo / "notes.txt").write_text("plain notes\n")
    (repo / "image.md").write_bytes(b"\x89PNG\x00\x01binary")
    (repo / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    secret = tmp_path / "secret.md"
    secret.write_text("outside the repository")
    os.symlink(secret, repo / "guide" / "link.md")
    run_git("init", "--quiet", "--initial-branch=main", cwd=repo)
    run_git("add", "-A", cwd=repo)
    run_git("commit", "--quiet", "-m", "docs", cwd=repo)
    return repo, run_git("rev-parse", "HEAD", cwd=repo)


BAD_URLS = [
    "ext::sh -c touch% /tmp/pwned",
    "fd::17",
    "--upload-pack=touch /tmp/pwned",
    "-oProxyCommand=x",
    "ssh://github.com/a/b.git",
    "git://github.com/a/b.git",
    "git@github.com:a/b.git",
    "http://github.com/a/b.git",
    "https://user:token@github.com/a/b.git",
    "https://token@github.com/a/b.git",
    "https://github.com/a/b.git\n--upload-pack=x",
    "https://github.com/a b.git",
    "https://github.com/a/b.git?x=1",
    "file:///etc",
    "/tmp/somewhere",
    "",
    None,
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_repo_urls_are_refused_without_git(tmp_path, url):
    f = DocumentFetcher(cache_dir=tmp_path / "cache")
    with pytest.raises(DocumentError) as e:
        f.fetch(url, SHA, ["*.md"])
    assert e.value.field == "document.repo"
    assert f.git_calls == 0


@pytest.mark.parametrize(
    "commit", ["main", "HEAD", "-1", "--all", "abc", "0123456789abcdefg", "a" * 41, "", None, "deadbeef^{tree}"]
)
def test_bad_commits_are_refused_without_git(tmp_path, commit):
    f = DocumentFetcher(cache_dir=tmp_path / "cache")
    with pytest.raises(DocumentError, match="hex commit SHA") as e:
        f.fetch("https://github.com/lab-ci/x.git", commit, ["*.md"])
    assert e.value.field == "document.commit" and f.git_calls == 0


@pytest.mark.parametrize(
    "patterns",
    [[], ["../secret.md"], ["/etc/passwd"], ["a/../../b.md"], ["--output=x"], ["docs\\x.md"], [""], ["a\x00b"]],
)
def test_bad_patterns_are_refused_without_git(tmp_path, patterns):
    f = DocumentFetcher(cache_dir=tmp_path / "cache")
    with pytest.raises(DocumentError) as e:
        f.fetch("https://github.com/lab-ci/x.git", SHA, patterns)
    assert e.value.field == "document.patterns" and f.git_calls == 0


def test_error_names_the_leaf_and_field():
    err = DocumentError("bad", field="document.repo").for_leaf("knowledge/a/qna.yaml")
    assert str(err) == "knowledge/a/qna.yaml: document.repo: bad"


def test_glob_semantics():
    assert glob_match("a.md", "*.md") and not glob_match("d/a.md", "*.md")
    assert glob_match("d/e/a.md", "d/**/*.md") and glob_match("d/a.md", "d/**/*.md")
    assert glob_match("d/e/a.md", "**/*.md")


def test_local_repo_with_allow_file_reads_git_objects_only(tmp_path, docs_repo):
    repo, sha = docs_repo
    f = DocumentFetcher(cache_dir=tmp_path / "cache", allow_file=True)
    docs = f.fetch(str(repo), sha, ["guide/**/*.md", "*.md"])
    paths = [d.path for d in docs]
    # symlinks are never followed; binary and non-UTF-8 files are skipped
    assert paths == ["guide/deep/more.md", "guide/intro.md"]
    assert docs[1].text.startswith("# Intro")


def test_mirror_resolves_https_url_and_cache_skips_git(tmp_path, docs_repo):
    repo, sha = docs_repo
    url = "https://github.com/lab-ci/example-documents.git"
    f = DocumentFetcher(cache_dir=tmp_path / "cache", mirrors={url: str(repo)})
    docs = f.fetch(url, sha[:10], ["guide/*.md"])  # abbreviated SHA works too
    assert [d.path for d in docs] == ["guide/intro.md"]
    calls = f.git_calls
    assert calls > 0
    again = DocumentFetcher(cache_dir=tmp_path / "cache", mirrors={url: str(repo)})
    assert again.fetch(url, sha[:10], ["guide/*.md"]) == docs
    assert again.git_calls == 0
    # the same URL without a mirror and without allow_file is still an https fetch:
    # nothing about the mirror leaks to other URLs
    with pytest.raises(DocumentError):
        DocumentFetcher(cache_dir=tmp_path / "c2", allow_file=False).fetch(str(repo), sha, ["*.md"])


def test_unknown_commit_no_match_and_size_limits(tmp_path, docs_repo):
    repo, sha = docs_repo
    f = DocumentFetcher(cache_dir=tmp_path / "cache", allow_file=True)
    with pytest.raises(DocumentError, match="not found") as e:
        f.fetch(str(repo), "f" * 40, ["*.md"])
    assert e.value.field == "document.commit"
    with pytest.raises(DocumentError, match="match no files"):
        f.fetch(str(repo), sha, ["nothing/*.md"])
    small = DocumentFetcher(cache_dir=tmp_path / "cache2", allow_file=True, max_file_bytes=10)
    with pytest.raises(DocumentError, match="file limit"):
        small.fetch(str(repo), sha, ["guide/*.md"])
    total = DocumentFetcher(cache_dir=tmp_path / "cache3", allow_file=True, max_bytes=50)
    with pytest.raises(DocumentError, match="bytes, over the 50-byte limit"):
        total.fetch(str(repo), sha, ["guide/**/*.md"])


def test_parse_mirrors():
    assert parse_mirrors("https://a/x.git=/p;https://b=/q") == {"https://a/x.git": "/p", "https://b": "/q"}
    assert parse_mirrors(["https://a=/p"]) == {"https://a": "/p"}
    with pytest.raises(DocumentError, match="URL=PATH"):
        parse_mirrors(["nonsense"])
