"""Document fetches end to end: real git over real HTTPS (``git http-backend`` behind a
threaded server on loopback, a certificate from a CA made here and trusted only through
the policy's CA file), under a test-only policy that permits one loopback address and
resolves names through a function instead of DNS. Nothing leaves the machine."""

from __future__ import annotations

import socket
import time

import pytest
from fetchlib import GitHttpsServer, Listener, make_tls, publish_docs

from lab_ci.taxonomy import gitrun
from lab_ci.taxonomy.documents import ADDRESS_NOT_ALLOWED, HOST_NOT_ALLOWED, DocumentError, DocumentFetcher, FetchPolicy

HOST = "docs.lab-ci.test"  # reserved for testing (RFC 6761): no DNS server knows it
DOCS = {
    "guide/intro.md": b"# Intro\n\nThe lighthouse keeper writes it all down.\n",
    "guide/deep/more.md": b"# More\n\nDeeper text.\n",
    "notes.txt": b"plain notes\n",
}


@pytest.fixture
def site(tmp_path):
    """An HTTPS git server on 127.0.0.1 with one documents repository."""
    root = tmp_path / "srv"
    root.mkdir()
    sha = publish_docs(root, "docs.git", DOCS)
    tls = make_tls(tmp_path / "tls", [HOST, "mirror.lab-ci.test"], ips=["127.0.0.1"])
    with GitHttpsServer(root, tls) as server:
        yield server, sha, tls, root


class Resolver:
    """Stands in for DNS: the first answer for a name, then (a rebinding attacker's
    move) a different one for every later question."""

    def __init__(self, first, later=("127.0.0.2",)):
        self.first, self.later, self.calls = list(first), list(later), []

    def __call__(self, host, port):
        self.calls.append((host, port))
        return self.first if len(self.calls) == 1 else self.later


def policy(port, resolver, tls=None, **kw) -> FetchPolicy:
    """The test-only policy: HOST on ``port`` allowed, 127.0.0.1 permitted, names
    resolved by ``resolver``, the test CA trusted."""
    base = dict(
        allowed_hosts=(f"{HOST}:{port}",),
        ca_file=str(tls["ca"]) if tls else None,
        resolver=resolver,
        permitted_addresses=frozenset({"127.0.0.1"}),
        timeout=60,
        connect_timeout=5,
    )
    return FetchPolicy(**{**base, **kw})


def failing(f: DocumentFetcher, url: str) -> tuple[DocumentError, float]:
    """The error a fetch of ``url`` raises, and how long it took."""
    t0 = time.monotonic()
    with pytest.raises(DocumentError) as e:
        f.fetch(url, "a" * 40, ["*.md"])
    return e.value, time.monotonic() - t0


def fetcher(tmp_path, pol, **kw) -> DocumentFetcher:
    return DocumentFetcher(cache_dir=tmp_path / "cache", policy=pol, **kw)


def test_pinned_fetch_works_and_a_second_resolution_is_never_used(site, tmp_path):
    server, sha, tls, _ = site
    resolver = Resolver(["127.0.0.1"], later=["127.0.0.2"])
    # Where a second resolution would send git: the same port on another loopback address.
    rebound = socket.socket()
    rebound.bind(("127.0.0.2", server.port))
    rebound.listen(8)
    rebound.settimeout(0.3)
    try:
        f = fetcher(tmp_path, policy(server.port, resolver, tls))
        docs = f.fetch(f"https://{HOST}:{server.port}/docs.git", sha, ["guide/**/*.md"])
        try:
            rebound.accept()[0].close()
            reached_rebound = True
        except TimeoutError:
            reached_rebound = False
    finally:
        rebound.close()
    assert [d.path for d in docs] == ["guide/deep/more.md", "guide/intro.md"]
    assert docs[1].text.startswith("# Intro")
    assert resolver.calls == [(HOST, server.port)]  # resolved once, by lab-ci
    assert not reached_rebound
    assert {peer for peer, _, _ in server.requests} == {"127.0.0.1"}
    assert any(path.endswith("/git-upload-pack") for _, _, path in server.requests)
    assert not list((tmp_path / "cache" / "tmp").iterdir())  # the scratch repository is gone
    # a second fetch is answered from the cache: no resolution, no git, no request
    seen = len(server.requests)
    again = fetcher(tmp_path, policy(server.port, Resolver(["10.0.0.1"]), tls))
    assert again.fetch(f"https://{HOST}:{server.port}/docs.git", sha, ["guide/**/*.md"]) == docs
    assert again.git_calls == 0 and len(server.requests) == seen


def test_abbreviated_sha_fetches_branches_through_the_same_pin(site, tmp_path):
    server, sha, tls, _ = site
    f = fetcher(tmp_path, policy(server.port, Resolver(["127.0.0.1"]), tls))
    docs = f.fetch(f"https://{HOST}:{server.port}/docs.git", sha[:10], ["*.txt"])
    assert [d.path for d in docs] == ["notes.txt"]


@pytest.mark.parametrize(
    "answer,why",
    [
        (["127.0.0.1", "10.1.2.3"], "private"),  # one bad address among good ones is enough
        (["169.254.169.254"], "link-local"),
        (["::ffff:127.0.0.2"], "loopback"),
        (["fd00:ec2::254"], "private"),
        (["0.0.0.0"], "unspecified"),
    ],
)
def test_a_name_resolving_to_a_refused_address_is_never_contacted(site, tmp_path, caplog, answer, why):
    server, sha, tls, _ = site
    f = fetcher(tmp_path, policy(server.port, Resolver(answer), tls))
    with pytest.raises(DocumentError) as e:
        f.fetch(f"https://{HOST}:{server.port}/docs.git", sha, ["*.md"])
    assert e.value.category == ADDRESS_NOT_ALLOWED and e.value.field == "document.repo"
    assert str(e.value) == "document.repo: could not fetch the document repository: address not allowed"
    assert f.git_calls == 0 and server.requests == []
    assert why in caplog.text and HOST in caplog.text  # the operator's log says which and why


def test_hosts_off_the_allow_list_are_not_even_resolved(site, tmp_path):
    server, sha, tls, _ = site
    resolver = Resolver(["127.0.0.1"])
    f = fetcher(tmp_path, policy(server.port, resolver, tls))
    for url in (
        f"https://evil.lab-ci.test:{server.port}/docs.git",
        f"https://{HOST}/docs.git",  # the allowed host, on another port
        f"https://sub.{HOST}:{server.port}/docs.git",
    ):
        with pytest.raises(DocumentError) as e:
            f.fetch(url, sha, ["*.md"])
        assert e.value.category == HOST_NOT_ALLOWED
    assert resolver.calls == [] and server.requests == []
    wildcard = fetcher(tmp_path, policy(server.port, resolver, tls, allowed_hosts=(f"*.lab-ci.test:{server.port}",)))
    assert wildcard.fetch(f"https://{HOST}:{server.port}/docs.git", sha, ["*.txt"])[0].path == "notes.txt"


def test_unknown_name_and_slow_resolver(site, tmp_path):
    server, sha, tls, _ = site

    def nxdomain(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    f = fetcher(tmp_path, policy(server.port, nxdomain, tls))
    with pytest.raises(DocumentError) as e:
        f.fetch(f"https://{HOST}:{server.port}/docs.git", sha, ["*.md"])
    assert e.value.category == gitrun.HOST_NOT_FOUND

    def slow(host, port):
        time.sleep(5)
        return ["127.0.0.1"]

    f = fetcher(tmp_path, policy(server.port, slow, tls, connect_timeout=0.5))
    t0 = time.monotonic()
    with pytest.raises(DocumentError) as e:
        f.fetch(f"https://{HOST}:{server.port}/docs.git", sha, ["*.md"])
    assert e.value.category == gitrun.TIMED_OUT and time.monotonic() - t0 < 3


def test_redirects_are_refused_and_never_followed(site, tmp_path):
    server, sha, tls, _ = site
    with Listener("127.0.0.1", mode="close") as target:
        server.redirects["/moved.git/info/refs"] = f"https://127.0.0.1:{target.port}/docs.git/info/refs"
        f = fetcher(tmp_path, policy(server.port, Resolver(["127.0.0.1"]), tls))
        with pytest.raises(DocumentError) as e:
            f.fetch(f"https://{HOST}:{server.port}/moved.git", sha, ["*.md"])
        time.sleep(0.3)
        assert target.accepted == []
    assert e.value.category == gitrun.REDIRECTED
    assert "127.0.0.1" not in str(e.value) and "moved" not in str(e.value)


def test_tls_verifies_the_real_host_name(site, tmp_path):
    server, sha, tls, _ = site
    other = "other.lab-ci.test"  # pinned to the same server, whose certificate does not name it
    pol = policy(server.port, Resolver(["127.0.0.1"]), tls, allowed_hosts=(f"{other}:{server.port}",))
    with pytest.raises(DocumentError) as e:
        fetcher(tmp_path, pol).fetch(f"https://{other}:{server.port}/docs.git", sha, ["*.md"])
    assert e.value.category == gitrun.TLS_FAILED
    untrusted = policy(server.port, Resolver(["127.0.0.1"]), tls, ca_file=None)  # the system store lacks our CA
    with pytest.raises(DocumentError) as e:
        fetcher(tmp_path / "b", untrusted).fetch(f"https://{HOST}:{server.port}/docs.git", sha, ["*.md"])
    assert e.value.category == gitrun.TLS_FAILED


def test_missing_repository_and_missing_commit(site, tmp_path):
    server, sha, tls, _ = site
    f = fetcher(tmp_path, policy(server.port, Resolver(["127.0.0.1"]), tls))
    with pytest.raises(DocumentError) as e:
        f.fetch(f"https://{HOST}:{server.port}/nope.git", sha, ["*.md"])
    assert e.value.category == gitrun.NOT_FOUND and e.value.field == "document.repo"
    f = fetcher(tmp_path, policy(server.port, Resolver(["127.0.0.1"]), tls))
    with pytest.raises(DocumentError) as e:
        f.fetch(f"https://{HOST}:{server.port}/docs.git", "f" * 40, ["*.md"])
    assert e.value.category == gitrun.COMMIT_NOT_FOUND and e.value.field == "document.commit"
    assert str(e.value) == "document.commit: could not fetch the document repository: commit not found"


def test_a_fetch_that_writes_too_much_is_stopped_and_cleaned_up(tmp_path):
    import os

    root = tmp_path / "srv"
    root.mkdir()
    sha = publish_docs(root, "big.git", {"a.md": b"# A\n", "blob.bin": os.urandom(6 * 1024 * 1024)})
    tls = make_tls(tmp_path / "tls", [HOST])
    with GitHttpsServer(root, tls) as server:
        pol = policy(server.port, Resolver(["127.0.0.1"]), tls, max_fetch_bytes=512 * 1024)
        f = fetcher(tmp_path, pol)
        with pytest.raises(DocumentError) as e:
            f.fetch(f"https://{HOST}:{server.port}/big.git", sha, ["*.md"])
        assert e.value.category == gitrun.TOO_LARGE
        assert not list((tmp_path / "cache" / "tmp").iterdir())
        roomy = fetcher(tmp_path / "roomy", policy(server.port, Resolver(["127.0.0.1"]), tls))
        assert roomy.fetch(f"https://{HOST}:{server.port}/big.git", sha, ["*.md"])[0].text == "# A\n"


def test_a_server_that_accepts_and_says_nothing_costs_the_timeout_only(tmp_path):
    with Listener("127.0.0.1", mode="stall") as stall:
        f = DocumentFetcher(cache_dir=tmp_path / "cache", policy=policy(stall.port, Resolver(["127.0.0.1"]), timeout=3))
        error, took = failing(f, f"https://{HOST}:{stall.port}/x.git")
    assert error.category == gitrun.TIMED_OUT
    assert 2.5 < took < 8, took
    assert not list((tmp_path / "cache" / "tmp").iterdir())


def test_connect_timeout_when_nothing_answers(tmp_path):
    # A listener whose backlog is full: the kernel drops further SYNs, so a connect
    # hangs exactly as it does towards a black-holed address.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.2)
    try:
        pol = policy(port, Resolver(["127.0.0.1"]), connect_timeout=1, timeout=30)
        f = DocumentFetcher(cache_dir=tmp_path / "cache", policy=pol)
        error, took = failing(f, f"https://{HOST}:{port}/x.git")
    finally:
        for s in fillers:
            s.close()
        full.close()
    assert error.category == gitrun.TIMED_OUT and f.git_calls == 0
    assert took < 4, took


def test_proxy_variables_of_the_environment_are_ignored(site, tmp_path, monkeypatch):
    server, sha, tls, _ = site
    with Listener("127.0.0.1", mode="close") as proxy:
        for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(var, f"http://127.0.0.1:{proxy.port}")
        f = fetcher(tmp_path, policy(server.port, Resolver(["127.0.0.1"]), tls))
        assert f.fetch(f"https://{HOST}:{server.port}/docs.git", sha, ["*.txt"])[0].path == "notes.txt"
        time.sleep(0.2)
        assert proxy.accepted == []


def test_an_operator_https_mirror_is_trusted(site, tmp_path):
    server, sha, tls, _ = site
    upstream = "https://github.com/lab-ci/example-documents.git"
    pol = FetchPolicy(ca_file=str(tls["ca"]), resolver=Resolver(["10.0.0.1"]), timeout=60)  # default host list
    f = DocumentFetcher(
        cache_dir=tmp_path / "cache", policy=pol, mirrors={upstream: f"https://127.0.0.1:{server.port}/docs.git"}
    )
    assert [d.path for d in f.fetch(upstream, sha, ["guide/*.md"])] == ["guide/intro.md"]
    assert pol.resolver.calls == []  # nothing about the mirror is checked against the contributor's policy


def test_inspect_reports_what_each_pattern_matches(site, tmp_path):
    server, sha, tls, root = site
    f = fetcher(tmp_path, policy(server.port, Resolver(["127.0.0.1"]), tls))
    tree = f.inspect(f"https://{HOST}:{server.port}/docs.git", sha[:12], ["guide/*.md", "missing/*.md", "*.txt"])
    assert tree.commit == sha
    assert [x.path for x in tree.matches("guide/*.md")] == ["guide/intro.md"]
    assert tree.unmatched_patterns() == ["missing/*.md"]
    assert {x.path: x.status for x in tree.files} == {"guide/intro.md": "ok", "notes.txt": "ok"}


def test_an_allowed_address_literal_is_fetched_without_a_name_to_pin(site, tmp_path):
    server, sha, tls, _ = site
    resolver = Resolver(["10.0.0.1"])
    pol = policy(server.port, resolver, tls, allowed_hosts=(f"127.0.0.1:{server.port}",))
    docs = fetcher(tmp_path, pol).fetch(f"https://127.0.0.1:{server.port}/docs.git", sha, ["*.txt"])
    assert [d.path for d in docs] == ["notes.txt"] and resolver.calls == []
