"""The outbound fetch policy, pure parts: which addresses a document fetch may connect
to (a table from the IANA special-purpose registries), host allow-list matching, and the
operator's settings read from the environment."""

from __future__ import annotations

import ipaddress

import pytest

from lab_ci.errors import LabCIError
from lab_ci.taxonomy.documents import (
    DEFAULT_ALLOWED_HOSTS,
    POLICY_ENV,
    DocumentFetcher,
    FetchPolicy,
    address_problem,
    glob_match,
)

REFUSED = [
    # IPv4
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private"),  # shared address space (carrier-grade NAT)
    ("100.100.100.200", "private"),  # Alibaba Cloud metadata
    ("169.254.169.254", "link-local"),  # AWS, GCP, Azure, OpenStack metadata
    ("169.254.0.1", "link-local"),
    ("168.63.129.16", "metadata"),  # Azure platform endpoint (a public address)
    ("192.0.0.192", "reserved"),  # Oracle Cloud metadata
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "reserved"),
    ("198.51.100.7", "reserved"),
    ("203.0.113.9", "reserved"),
    ("198.18.0.1", "reserved"),
    ("192.88.99.1", "reserved"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fd00:ec2::254", "private"),  # AWS metadata over IPv6
    ("fc00::1", "private"),
    ("fec0::1", "private"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "reserved"),
    ("3fff::1", "reserved"),
    ("2001::1", "reserved"),  # Teredo
    ("2001:2::1", "reserved"),  # benchmarking
    ("100::1", "reserved"),  # discard-only
    ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
    ("64:ff9b:1::a00:1", "private"),  # local-use NAT64
    ("5f00::1", "reserved"),
    # IPv4 inside IPv6, judged as IPv4
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
]

ALLOWED = [
    "140.82.112.3",  # github.com
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",  # just outside 172.16/12
    "100.128.0.1",  # just outside 100.64/10
    "2606:50c0:8000::153",  # GitHub over IPv6
    "2a00:1450:4001:82a::200e",
    "::ffff:140.82.112.3",  # IPv4-mapped public
    "64:ff9b::8c52:7003",  # NAT64 of 140.82.112.3 (an IPv6-only host with DNS64)
]


@pytest.mark.parametrize("address,why", REFUSED)
def test_refused_addresses(address, why):
    got = address_problem(address)
    assert got is not None and got.startswith(why), got


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses(address):
    assert address_problem(address) is None


def test_the_table_refuses_everything_the_standard_library_calls_private():
    # ipaddress's own view, for the addresses where it is right on every Python we
    # support; ours must never be more permissive.
    for a, _ in REFUSED:
        ip = ipaddress.ip_address(a)
        if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
            assert address_problem(a) is not None, a
    assert address_problem("not an address") == "not an IP address"


def test_permitted_addresses_are_a_test_seam_only():
    pol = FetchPolicy(permitted_addresses=frozenset({"127.0.0.1"}))
    assert pol.address_problem("127.0.0.1") is None and pol.address_problem("127.0.0.2") == "loopback"
    assert "permitted" not in " ".join(POLICY_ENV)  # no variable can open it


def test_allow_list_matching():
    pol = FetchPolicy(allowed_hosts=("github.com", "*.example.org", "git.internal.test:8443", "[2001:db8::1]:443"))
    assert pol.host_allowed("github.com", 443) and pol.host_allowed("GitHub.com.", 443)
    assert not pol.host_allowed("github.com", 8443)
    assert not pol.host_allowed("evilgithub.com", 443) and not pol.host_allowed("github.com.evil.test", 443)
    assert pol.host_allowed("docs.example.org", 443) and not pol.host_allowed("example.org", 443)
    assert pol.host_allowed("git.internal.test", 8443) and not pol.host_allowed("git.internal.test", 443)
    assert pol.host_allowed("[2001:db8:0::1]", 443)
    anything = FetchPolicy(allowed_hosts=("*",))
    assert anything.host_allowed("whatever.test", 443) and not anything.host_allowed("whatever.test", 22)
    assert not FetchPolicy(allowed_hosts=()).host_allowed("github.com", 443)
    assert (
        FetchPolicy().allowed_hosts
        == DEFAULT_ALLOWED_HOSTS
        == ("github.com", "gitlab.com", "codeberg.org", "bitbucket.org")
    )
    with pytest.raises(LabCIError, match="is not HOST"):
        FetchPolicy(allowed_hosts=("https://github.com",))


def test_settings_from_the_environment():
    env = {
        "LAB_CI_DOCUMENT_HOSTS": "github.com, git.example.org:8443  gitlab.com",
        "LAB_CI_DOCUMENT_TIMEOUT": "30",
        "LAB_CI_DOCUMENT_CONNECT_TIMEOUT": "2.5",
        "LAB_CI_DOCUMENT_LOW_SPEED_LIMIT": "500",
        "LAB_CI_DOCUMENT_LOW_SPEED_TIME": "10",
        "LAB_CI_DOCUMENT_MAX_FETCH_BYTES": "64M",
        "LAB_CI_DOCUMENT_MAX_BYTES": "4MiB",
        "LAB_CI_DOCUMENT_MAX_FILE_BYTES": "1048576",
        "LAB_CI_DOCUMENT_PROXY": "http://proxy.internal:3128",
        "LAB_CI_DOCUMENT_CA_FILE": "/etc/ssl/corp.pem",
    }
    pol = FetchPolicy.from_env(env)
    assert pol.allowed_hosts == ("github.com", "git.example.org:8443", "gitlab.com")
    assert (pol.timeout, pol.connect_timeout, pol.low_speed_limit, pol.low_speed_time) == (30, 2.5, 500, 10)
    assert (pol.max_fetch_bytes, pol.max_bytes, pol.max_file_bytes) == (64 << 20, 4 << 20, 1 << 20)
    assert pol.proxy == "http://proxy.internal:3128" and pol.ca_file == "/etc/ssl/corp.pem"
    assert FetchPolicy.from_env({}) == FetchPolicy()
    assert FetchPolicy.from_env({"LAB_CI_DOCUMENT_HOSTS": "none"}).allowed_hosts == ()
    for var, bad in [
        ("LAB_CI_DOCUMENT_TIMEOUT", "soon"),
        ("LAB_CI_DOCUMENT_TIMEOUT", "0"),
        ("LAB_CI_DOCUMENT_MAX_FETCH_BYTES", "lots"),
        ("LAB_CI_DOCUMENT_LOW_SPEED_TIME", "-1"),
        ("LAB_CI_DOCUMENT_PROXY", "socks5://x:1"),
    ]:
        with pytest.raises(LabCIError) as e:
            FetchPolicy.from_env({var: bad})
        assert var in str(e.value) or "PROXY" in str(e.value)


def test_fetcher_reads_the_environment_and_keeps_its_old_keywords(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_CI_DOCUMENT_HOSTS", "git.example.org")
    monkeypatch.setenv("LAB_CI_DOCUMENT_TIMEOUT", "45")
    f = DocumentFetcher(cache_dir=tmp_path, max_file_bytes=10)
    assert f.policy.allowed_hosts == ("git.example.org",) and f.policy.timeout == 45
    assert f.max_file_bytes == 10 and f.max_bytes == 8 << 20
    assert DocumentFetcher(cache_dir=tmp_path, timeout=5).policy.timeout == 5


def test_glob_is_not_exponential():
    import time

    path = "/".join(["d"] * 40) + "/x.md"
    t0 = time.perf_counter()
    assert not glob_match(path, "/".join(["**"] * 30) + "/y.md")
    assert glob_match(path, "/".join(["**"] * 30) + "/*.md")
    assert time.perf_counter() - t0 < 1
