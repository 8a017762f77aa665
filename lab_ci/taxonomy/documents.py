"""Fetch a knowledge leaf's documents from git: untrusted input, handled defensively.

A leaf names ``document.repo`` (a URL), ``document.commit`` and ``document.patterns``.
All three come from a contributor, so before any git call:

* the URL must be ``https://`` (``file://`` or a local path only with ``allow_file``);
  ``ssh``, ``git://``, ``ext::``/``fd::`` transports, ``-``-leading values (option
  injection), embedded credentials (they would leak into logs and comments),
  whitespace and control characters are refused;
* the commit must be a hex SHA (7-40 digits), never a ref name;
* patterns are repository-relative globs: no absolute paths, no ``..``, no ``-`` lead.

Then the outbound fetch policy (:class:`FetchPolicy`, operator settings):

* the host (and port, 443 unless listed) must be on the operator's allow-list
  (default :data:`DEFAULT_ALLOWED_HOSTS`);
* lab-ci resolves the host itself and refuses it when ANY address is loopback,
  private, link-local, multicast, reserved, unspecified or a cloud metadata address
  (:func:`address_problem`; IPv4 and IPv6, IPv4 inside IPv4-mapped, NAT64 and 6to4
  addresses included), whatever the allow-list says;
* it opens a TCP connection to a validated address (the connect timeout), and git is
  pinned to exactly that address (``http.curloptResolve=HOST:PORT:ADDR``), so git never
  resolves the name again (no DNS-rebinding gap) while TLS still verifies the real host
  name; redirects are refused, only the https transport is allowed;
* one wall-clock limit covers the whole fetch, curl gives up on a transfer slower than
  ``low_speed_limit`` bytes/s for ``low_speed_time`` s, and git is stopped when the
  fetch has written more than ``max_fetch_bytes`` to disk.

A failure reads ``could not fetch the document repository: <category>`` (host not
allowed, address not allowed, host not found, timed out, connection failed, TLS
verification failed, redirected, not found, commit not found, too large, git failed);
git's own words go to the log only. Git runs through :mod:`.gitrun` (isolated profile)
into a temporary bare repository, deleted afterwards. Files are read from git objects
(no checkout): regular blobs only (no symlinks, no submodules), UTF-8 text only, under
a per-file and a total size limit.

A *mirror* maps a leaf's URL to a trusted repository (operator configuration): a local
repository is read in place, an ``https://`` one is fetched without the host and address
checks. Results are cached by (repo, commit, patterns, limits) as JSON, so a second
fetch runs no git at all.

:meth:`DocumentFetcher.inspect` is the API for a checker: which files each pattern
matches at the commit and whether each is readable, without raising for a pattern that
matches nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import LabCIError
from . import gitrun
from .gitrun import ISOLATED, LOCAL, GitError, GitRunner

log = logging.getLogger(__name__)

MIRRORS_ENV = "LAB_CI_DOCUMENT_MIRRORS"
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$")
MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 1000

#: The prefix of every fetch failure shown to a contributor.
FETCH_FAILED = "could not fetch the document repository"

# Categories of a failed fetch (the rest come from :mod:`.gitrun`).
HOST_NOT_ALLOWED = "host not allowed"
ADDRESS_NOT_ALLOWED = "address not allowed"
CATEGORIES = (
    HOST_NOT_ALLOWED,
    ADDRESS_NOT_ALLOWED,
    gitrun.HOST_NOT_FOUND,
    gitrun.TIMED_OUT,
    gitrun.CONNECTION_FAILED,
    gitrun.TLS_FAILED,
    gitrun.REDIRECTED,
    gitrun.NOT_FOUND,
    gitrun.COMMIT_NOT_FOUND,
    gitrun.TOO_LARGE,
    gitrun.FAILED,
)

#: Public code hosts that serve git over https anonymously. github.com is where
#: InstructLab's taxonomy asks knowledge documents to live (303 of the 309 https
#: document URLs in the shared corpus' 1620 distinct qna.yaml versions); the others
#: are the large public alternatives.
DEFAULT_ALLOWED_HOSTS = ("github.com", "gitlab.com", "codeberg.org", "bitbucket.org")


class DocumentError(LabCIError):
    """A knowledge document reference is unsafe or cannot be fetched.

    ``field`` names the leaf field at fault (``document.repo``, ``document.commit``,
    ``document.patterns``) when known; ``leaf`` the leaf file, once the caller knows it.
    ``category`` is set for fetch failures (one of :data:`CATEGORIES`), ``detail``
    holds what git or the resolver said (for logs, never for comments).
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        leaf: str | None = None,
        category: str | None = None,
        detail: str = "",
    ):
        self.reason = message
        self.field = field
        self.leaf = leaf
        self.category = category
        self.detail = detail
        super().__init__(self._text())

    def _text(self) -> str:
        where = ": ".join(x for x in (self.leaf, self.field) if x)
        return f"{where}: {self.reason}" if where else self.reason

    def for_leaf(self, leaf: str) -> DocumentError:
        return DocumentError(self.reason, field=self.field, leaf=leaf, category=self.category, detail=self.detail)


@dataclass(frozen=True, slots=True)
class Document:
    path: str
    text: str


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lab-ci" / "documents"


def parse_mirrors(items) -> dict[str, str]:
    """``URL=PATH`` strings (a list, or one ``;``-separated string) to a mapping."""
    if isinstance(items, str):
        items = [x for x in items.split(";")]
    out: dict[str, str] = {}
    for item in items or ():
        item = item.strip()
        if not item:
            continue
        url, sep, target = item.partition("=")
        if not sep or not url.strip() or not target.strip():
            raise DocumentError(f"document mirror {item!r} is not URL=PATH")
        out[url.strip()] = target.strip()
    return out


def mirrors_from_env(env=None) -> dict[str, str]:
    return parse_mirrors((env or os.environ).get(MIRRORS_ENV, ""))


def _norm_url(url: str) -> str:
    u = url.strip().rstrip("/")
    return u[:-4] if u.endswith(".git") else u


# ---------------------------------------------------------------- validation (pure)


def validate_repo_url(url, *, allow_file: bool = False) -> str:
    """The URL as git should see it, or :class:`DocumentError` (field ``document.repo``)."""

    def bad(why: str, echo: bool = True) -> DocumentError:
        return DocumentError(f"{why}: {str(url)[:200]!r}" if echo else why, field="document.repo")

    if not isinstance(url, str) or not url:
        raise bad("missing repository URL")
    if _CONTROL.search(url):
        raise bad("repository URL contains whitespace or control characters")
    if url.startswith("-"):
        raise bad("repository URL may not start with '-'")
    if "::" in url.split("/", 1)[0] or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*::", url):
        raise bad("git remote helpers (ext::, fd::, ...) are not allowed")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise bad("repository URL may not embed credentials (not shown)", echo=False)
        host = parts.hostname or ""
        if not host or not (_HOST.match(host) or _ip_literal(host) is not None):
            raise bad("repository URL has no valid host")
        if parts.query or parts.fragment:
            raise bad("repository URL may not have a query or fragment")
        try:
            _ = parts.port  # raises on a bad port
        except ValueError:
            raise bad("repository URL has an invalid port") from None
        return url
    if scheme == "file" or (not scheme and (url.startswith("/") or url.startswith("."))):
        if not allow_file:
            raise bad("file repositories are only allowed with --allow-file-documents")
        path = parts.path if scheme == "file" else url
        if parts.netloc not in ("", "localhost"):
            raise bad("file URL with a host")
        return "file://" + str(Path(path).resolve())
    if scheme in ("http", "ssh", "git", "git+ssh", "ssh+git", "ftp", "ftps"):
        raise bad(f"{scheme}:// repositories are not allowed (use https://)")
    if re.match(r"^[^/:]+@[^:]+:", url) or re.match(r"^[^/:]+:", url):
        raise bad("scp-style (ssh) repository addresses are not allowed (use https://)")
    raise bad("only https:// repository URLs are allowed")


def validate_commit(commit) -> str:
    if not isinstance(commit, str) or not _SHA.match(commit or ""):
        raise DocumentError(
            f"commit must be a hex commit SHA (7-40 hex digits), not {str(commit)[:60]!r}",
            field="document.commit",
        )
    return commit.lower()


def validate_patterns(patterns) -> tuple[str, ...]:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise DocumentError("no file patterns given", field="document.patterns")
    if not isinstance(patterns, (list, tuple)) or len(patterns) > MAX_PATTERNS:
        raise DocumentError(f"at most {MAX_PATTERNS} file patterns", field="document.patterns")
    out = []
    for p in patterns:
        if not isinstance(p, str) or not p.strip():
            raise DocumentError(f"empty pattern {p!r}", field="document.patterns")
        why = None
        if len(p) > MAX_PATTERN_LENGTH:
            why = f"is longer than {MAX_PATTERN_LENGTH} characters"
        elif _CONTROL.search(p.replace(" ", "")):
            why = "contains control characters"
        elif p.startswith("-"):
            why = "may not start with '-'"
        elif p.startswith("/") or re.match(r"^[A-Za-z]:", p) or "\\" in p:
            why = "must be relative to the repository root"
        elif ".." in p.split("/"):
            why = "may not contain '..'"
        if why:
            raise DocumentError(f"pattern {p[:100]!r} {why}", field="document.patterns")
        out.append(p.lstrip("./") if p.startswith("./") else p)
    return tuple(out)


def glob_match(path: str, pattern: str) -> bool:
    """Glob from the repository root: ``*``/``?``/``[..]`` within one path part,
    ``**`` across parts (as ``glob.glob(root/pattern, recursive=True)``). Memoised, so
    a pattern of many ``**`` costs (path parts x pattern parts), not an exponential."""
    pp, gp = path.split("/"), pattern.split("/")

    @cache
    def match(i: int, j: int) -> bool:
        if j == len(gp):
            return i == len(pp)
        if gp[j] == "**":
            return match(i, j + 1) or (i < len(pp) and match(i + 1, j))
        return i < len(pp) and fnmatch.fnmatchcase(pp[i], gp[j]) and match(i + 1, j + 1)

    return match(0, 0)


# ---------------------------------------------------------------- addresses (pure)


def _nets(rows) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(n), why) for n, why in rows)


#: IPv4 ranges a document fetch never connects to (IANA special-purpose registry, RFC 6890
#: and successors), and why. The metadata services of the large clouds live at
#: 169.254.169.254 (link-local), 100.100.100.200 (shared space), 192.0.0.192 (IETF
#: assignments) and Azure's platform endpoint, which is a public address.
_V4_REFUSED = _nets(
    [
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "private (shared address space)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
        ("192.0.2.0/24", "reserved (documentation)"),
        ("192.88.99.0/24", "reserved (6to4 relay)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved (benchmarking)"),
        ("198.51.100.0/24", "reserved (documentation)"),
        ("203.0.113.0/24", "reserved (documentation)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("168.63.129.16/32", "metadata (Azure platform endpoint)"),
    ]
)
#: IPv6 ranges refused outright. Everything outside 2000::/3 (global unicast) is
#: refused too, except the forms that embed an IPv4 address (checked as IPv4).
_V6_REFUSED = _nets(
    [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "private (local-use NAT64)"),
        ("2001::/23", "reserved (IETF protocol assignments, Teredo)"),
        ("2001:db8::/32", "reserved (documentation)"),
        ("3fff::/20", "reserved (documentation)"),
        ("5f00::/16", "reserved (SRv6)"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private (site-local)"),
        ("ff00::/8", "multicast"),
    ]
)
_V6_GLOBAL = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_problem(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a fetch may not connect to ``address`` (e.g. ``"loopback"``), or None when
    it may: a public unicast address. IPv4 inside IPv4-mapped (``::ffff:a.b.c.d``),
    NAT64 (``64:ff9b::/96``) and 6to4 (``2002::/16``) addresses is judged as IPv4.
    Written out from the IANA registries rather than ``ipaddress.is_global``, whose
    answers for these forms differ between Python releases."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "not an IP address"
    if ip.version == 4:
        return next((why for net, why in _V4_REFUSED if ip in net), None)
    if ip.scope_id:
        return "link-local (scoped)"
    embedded = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
    if embedded is not None:
        why = address_problem(embedded)
        return f"{why} (IPv4 {embedded} inside {ip})" if why else None
    why = next((why for net, why in _V6_REFUSED if ip in net), None)
    if why is None and ip not in _V6_GLOBAL:
        why = "reserved"
    return why


# ---------------------------------------------------------------- the policy


def _parse_host_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``*.domain``, ``[v6]:port`` or ``*`` to (host, port)."""
    entry = entry.strip().lower().rstrip(".")
    m = re.fullmatch(r"\[([0-9a-f:.]+)\](?::(\d+))?", entry)
    if m:
        return str(ipaddress.ip_address(m.group(1))), int(m.group(2)) if m.group(2) else None
    if _ip_literal(entry) is not None and ":" in entry:  # a bare IPv6 address
        return str(ipaddress.ip_address(entry)), None
    host, _, port = entry.partition(":")
    if not (host == "*" or re.fullmatch(r"(\*\.)?[a-z0-9.-]+", host)) or (port and not port.isdigit()):
        raise LabCIError(f"document host {entry!r} is not HOST, HOST:PORT, *.DOMAIN or *")
    ip = _ip_literal(host)
    return (str(ip) if ip else host), int(port) if port else None


def _parse_size(name: str, value: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]i?B?|B)?\s*", value, re.I)
    if not m:
        raise LabCIError(f"{name} must be a size in bytes (e.g. 8388608, 8M or 8MiB), got {value!r}")
    unit = (m.group(2) or "B")[0].upper()
    return int(m.group(1)) * {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


def _parse_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise LabCIError(f"{name} must be a number of seconds > 0, got {value!r}")
    return seconds


Resolver = Callable[[str, int], Iterable[str]]

#: Environment variables of :meth:`FetchPolicy.from_env` (field -> variable).
POLICY_ENV = {
    "allowed_hosts": "LAB_CI_DOCUMENT_HOSTS",
    "timeout": "LAB_CI_DOCUMENT_TIMEOUT",
    "connect_timeout": "LAB_CI_DOCUMENT_CONNECT_TIMEOUT",
    "low_speed_limit": "LAB_CI_DOCUMENT_LOW_SPEED_LIMIT",
    "low_speed_time": "LAB_CI_DOCUMENT_LOW_SPEED_TIME",
    "max_fetch_bytes": "LAB_CI_DOCUMENT_MAX_FETCH_BYTES",
    "max_bytes": "LAB_CI_DOCUMENT_MAX_BYTES",
    "max_file_bytes": "LAB_CI_DOCUMENT_MAX_FILE_BYTES",
    "proxy": "LAB_CI_DOCUMENT_PROXY",
    "ca_file": "LAB_CI_DOCUMENT_CA_FILE",
}


@dataclass(frozen=True)
class FetchPolicy:
    """What an outbound document fetch may do (operator settings; see POLICY_ENV)."""

    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    timeout: float = 60.0  # wall clock for the whole fetch (resolve, connect, every git process)
    connect_timeout: float = 10.0  # name resolution, then the TCP connection
    low_speed_limit: int = 1000  # bytes/s ...
    low_speed_time: int = 20  # ... for this many seconds: curl gives up
    max_fetch_bytes: int = 256 * 1024 * 1024  # what one fetch may write to disk
    max_bytes: int = 8 * 1024 * 1024  # the selected documents, in total
    max_file_bytes: int = 2 * 1024 * 1024  # one document
    proxy: str | None = None  # an https/http proxy for document fetches (environment proxies are ignored)
    ca_file: str | None = None  # CA bundle for document hosts (default: the system's)
    # Test seams, never read from the environment: a resolver standing in for DNS, and
    # addresses exempt from the address check (a test server on loopback).
    resolver: Resolver | None = field(default=None, compare=False, repr=False)
    permitted_addresses: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        entries = tuple(_parse_host_entry(h) for h in self.allowed_hosts)
        object.__setattr__(self, "_hosts", entries)
        for name in ("timeout", "connect_timeout"):
            if not getattr(self, name) > 0:
                raise LabCIError(f"document fetch {name} must be > 0")
        if self.proxy is not None and not re.match(r"^https?://[^\s@]+$", self.proxy):
            raise LabCIError(f"{POLICY_ENV['proxy']} must be http://HOST:PORT or https://HOST:PORT")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> FetchPolicy:
        """The policy from ``LAB_CI_DOCUMENT_*`` variables (unset: the defaults);
        ``overrides`` (fields) win. A bad value is a :class:`LabCIError` naming it."""
        env = os.environ if env is None else env
        kw: dict = {}
        for name, var in POLICY_ENV.items():
            value = env.get(var)
            if value is None:
                continue
            if name == "allowed_hosts":
                words = [w for w in re.split(r"[\s,]+", value) if w]
                kw[name] = () if words in ([], ["none"]) else tuple(words)
            elif name in ("timeout", "connect_timeout"):
                kw[name] = _parse_seconds(var, value)
            elif name in ("low_speed_limit", "low_speed_time"):
                if not value.strip().isdigit():
                    raise LabCIError(f"{var} must be a whole number, got {value!r}")
                kw[name] = int(value)
            elif name in ("max_fetch_bytes", "max_bytes", "max_file_bytes"):
                kw[name] = _parse_size(var, value)
            else:
                kw[name] = value.strip() or None
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)

    def host_allowed(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        ip = _ip_literal(host)
        host = str(ip) if ip else host
        for pattern, allowed_port in self._hosts:  # type: ignore[attr-defined]
            if (allowed_port or 443) != port:
                continue
            if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
                return True
        return False

    def address_problem(self, address: str) -> str | None:
        if address in self.permitted_addresses:
            return None
        return address_problem(address)


# ---------------------------------------------------------------- what a fetch finds


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """A tree entry some pattern matched. ``status``: ``ok`` (readable UTF-8 text, in
    ``text``), ``binary``, ``not-utf8``, ``too-large``, ``symlink`` or ``submodule``."""

    path: str
    size: int | None
    status: str
    text: str | None = None

    @property
    def readable(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class DocumentTree:
    """The files ``patterns`` match in ``repo`` at ``commit`` (a full SHA)."""

    repo: str
    commit: str
    patterns: tuple[str, ...]
    files: tuple[DocumentFile, ...]

    def matches(self, pattern: str) -> list[DocumentFile]:
        return [f for f in self.files if glob_match(f.path, pattern)]

    def unmatched_patterns(self) -> list[str]:
        """Patterns that match no readable file (a checker's per-pattern diagnostics)."""
        return [p for p in self.patterns if not any(f.readable for f in self.matches(p))]

    @property
    def documents(self) -> list[Document]:
        """The readable files as documents, Markdown first."""
        docs = [Document(f.path, f.text or "") for f in self.files if f.readable]
        docs.sort(key=lambda d: (not d.path.lower().endswith((".md", ".markdown")), d.path))
        return docs

    def to_json(self) -> dict:
        return {
            "repo": self.repo,
            "commit": self.commit,
            "patterns": list(self.patterns),
            "files": [{"path": f.path, "size": f.size, "status": f.status, "text": f.text} for f in self.files],
        }

    @classmethod
    def from_json(cls, data: dict) -> DocumentTree:
        files = tuple(DocumentFile(f["path"], f["size"], f["status"], f["text"]) for f in data["files"])
        return cls(data["repo"], data["commit"], tuple(data["patterns"]), files)


# ---------------------------------------------------------------- fetching (git I/O)


class _DiskBudget:
    """A :meth:`GitRunner.run` watch: stop git once ``root`` holds more than ``limit``
    bytes (checked about ten times a second, so the overshoot is what arrives in 0.1 s)."""

    def __init__(self, root: Path, limit: int):
        self.root, self.limit = root, limit

    def used(self) -> int:
        total = 0
        for folder, _, names in os.walk(self.root):
            for n in names:
                try:
                    total += os.lstat(os.path.join(folder, n)).st_size
                except OSError:
                    pass
        return total

    def __call__(self) -> str | None:
        return gitrun.TOO_LARGE if self.used() > self.limit else None


class DocumentFetcher:
    """Fetch (and cache) the documents a knowledge leaf points at."""

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        allow_file: bool = False,
        mirrors: dict[str, str] | None = None,
        max_bytes: int | None = None,
        max_file_bytes: int | None = None,
        timeout: float | None = None,
        *,
        policy: FetchPolicy | None = None,
    ):
        base = policy or FetchPolicy.from_env()
        self.policy = replace(
            base,
            **{
                k: v
                for k, v in {"max_bytes": max_bytes, "max_file_bytes": max_file_bytes, "timeout": timeout}.items()
                if v is not None
            },
        )
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.allow_file = allow_file
        self.mirrors = {_norm_url(k): v for k, v in (mirrors or {}).items()}
        self.git_calls = 0  # for tests and logs: how many git processes ran

    @property
    def max_bytes(self) -> int:
        return self.policy.max_bytes

    @property
    def max_file_bytes(self) -> int:
        return self.policy.max_file_bytes

    # -- public

    def fetch(self, repo_url: str, commit: str, patterns) -> list[Document]:
        """The readable files the patterns select, Markdown first; a
        :class:`DocumentError` when the repository or commit cannot be fetched, a
        selected file is over the per-file limit, or nothing readable is selected."""
        tree = self.inspect(repo_url, commit, patterns)
        for f in tree.files:
            if f.status == "too-large":
                raise DocumentError(
                    f"{f.path} is {f.size} bytes, over the {self.max_file_bytes}-byte file limit",
                    field="document.patterns",
                )
        if not tree.files or all(f.status in ("symlink", "submodule") for f in tree.files):
            raise DocumentError(
                f"patterns {', '.join(tree.patterns)} match no files at commit {tree.commit[:12]}",
                field="document.patterns",
            )
        docs = tree.documents
        if not docs:
            raise DocumentError("patterns match no UTF-8 text files", field="document.patterns")
        return docs

    def inspect(self, repo_url: str, commit: str, patterns) -> DocumentTree:
        """Every file the patterns match at the commit, each with its status (readable
        text or why not): the API for checking a leaf's document reference. Raises
        :class:`DocumentError` for an unsafe reference, a fetch failure (``category``
        set) or selected files over the total size limit; a pattern that matches
        nothing is not an error here (see :meth:`DocumentTree.unmatched_patterns`)."""
        url = validate_repo_url(repo_url, allow_file=self.allow_file)
        sha = validate_commit(commit)
        pats = validate_patterns(patterns)
        limits = [self.max_bytes, self.max_file_bytes]
        key = hashlib.sha256(json.dumps([_norm_url(url), sha, list(pats), limits]).encode()).hexdigest()[:32]
        cached = self.cache_dir / "results" / f"{key}.json"
        if cached.is_file():
            try:
                return DocumentTree.from_json(json.loads(cached.read_text("utf-8")))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a damaged document cache entry %s", cached)
        deadline = time.monotonic() + self.policy.timeout
        kind, where = self._source(url)
        if kind == "local":
            tree = self._inspect_local(url, where, sha, pats, deadline)
        else:
            with self._scratch_repo() as repo:
                full = self._fetch_remote(url, where, repo, sha, deadline, trusted=kind == "mirror")
                tree = self._read_tree(url, ["--git-dir", str(repo)], full, pats, deadline)
        self._store(cached, tree)
        return tree

    # -- internals

    def _source(self, url: str) -> tuple[str, str]:
        """("local", path) for a repository on disk (allowed file URL or mirror),
        ("mirror", url) for an operator's https mirror, ("remote", url) otherwise."""
        target = self.mirrors.get(_norm_url(url))
        if target is None:
            if url.startswith("file://"):
                return "local", url[len("file://") :]
            return "remote", url
        if "://" not in target:
            return "local", str(Path(target).resolve())
        if target.startswith("file://"):
            return "local", target[len("file://") :]
        return "mirror", target

    def _git(self, runner: GitRunner, args: list[str], deadline: float, **kw) -> bytes:
        self.git_calls += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GitError(gitrun.TIMED_OUT, "the document fetch ran out of time")
        return runner.run(args, timeout=remaining, **kw).stdout

    def _fail(self, category: str, detail: str, url: str, sha: str) -> DocumentError:
        log.warning("document repository %s at %s: %s: %s", url, sha, category, detail)
        field = "document.commit" if category == gitrun.COMMIT_NOT_FOUND else "document.repo"
        return DocumentError(f"{FETCH_FAILED}: {category}", field=field, category=category, detail=detail)

    def _inspect_local(self, url: str, path: str, sha: str, pats, deadline: float) -> DocumentTree:
        """A repository on this machine (the user's own, or an operator's mirror),
        read in place with the local profile: nothing is copied."""
        p = Path(path)
        git_dir = p / ".git" if (p / ".git").exists() else p
        gd = ["--git-dir", str(git_dir)]
        runner = GitRunner(LOCAL)
        try:
            full = self._git(
                runner, [*gd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}^{{commit}}"], deadline
            )
        except GitError as e:
            if e.returncode == 1:  # --quiet --verify: the repository is fine, the commit is not in it
                raise self._fail(gitrun.COMMIT_NOT_FOUND, e.detail, url, sha) from None
            category = gitrun.NOT_FOUND if e.category in (gitrun.NOT_A_REPOSITORY, gitrun.FAILED) else e.category
            raise self._fail(category, e.detail, url, sha) from None
        return self._read_tree(url, gd, full.decode().strip(), pats, deadline, runner=runner)

    def _scratch_repo(self):
        return _ScratchRepo(self.cache_dir / "tmp")

    def _fetch_remote(self, url: str, source: str, repo: Path, sha: str, deadline: float, *, trusted: bool) -> str:
        """Fetch ``sha`` from ``source`` into the empty bare ``repo``; its full SHA."""
        pol = self.policy
        config = [
            ("http.followRedirects", "false"),
            ("http.sslVerify", "true"),
            ("http.lowSpeedLimit", str(pol.low_speed_limit)),
            ("http.lowSpeedTime", str(pol.low_speed_time)),
            ("http.proxy", pol.proxy or ""),
            ("transfer.fsckObjects", "true"),
            ("fetch.unpackLimit", "1"),
            ("gc.auto", "0"),
            ("maintenance.auto", "false"),
        ]
        if pol.ca_file:
            config.append(("http.sslCAInfo", pol.ca_file))
        if not trusted:
            config += self._pin(url, sha, deadline)
        protocols = ("https", "http") if trusted else ("https",)
        runner = GitRunner(ISOLATED, protocols=protocols).with_config(*config)
        reader = GitRunner(ISOLATED)
        gd = ["--git-dir", str(repo)]
        budget = _DiskBudget(repo, pol.max_fetch_bytes)
        fetch = [*gd, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--no-write-fetch-head"]
        branches = [*fetch, "--", source, "+refs/heads/*:refs/lab-ci/heads/*"]
        try:
            self._git(reader, ["init", "--quiet", "--bare", "--", str(repo)], deadline)
            if len(sha) == 40:
                try:
                    self._git(
                        runner,
                        [*fetch, "--depth", "1", "--", source, f"{sha}:refs/lab-ci/commit"],
                        deadline,
                        watch=budget,
                    )
                except GitError as e:
                    if e.category != gitrun.COMMIT_NOT_FOUND:
                        raise
                    log.info("fetching %s by SHA failed (%s); fetching branches", sha, e.detail)
                    self._git(runner, branches, deadline, watch=budget)
            else:  # an abbreviated SHA cannot be asked for: fetch the branches and resolve it
                self._git(runner, branches, deadline, watch=budget)
            verify = [*gd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}^{{commit}}"]
            out = self._git(reader, verify, deadline, check=False)
        except GitError as e:
            if e.category == gitrun.TOO_LARGE:
                e.detail = f"the fetch wrote more than {pol.max_fetch_bytes} bytes"
            raise self._fail(e.category, e.detail, url, sha) from None
        full = out.decode().strip()
        if not _SHA.match(full) or len(full) != 40:
            raise self._fail(gitrun.COMMIT_NOT_FOUND, "not in the fetched history", url, sha)
        return full

    def _pin(self, url: str, sha: str, deadline: float) -> list[tuple[str, str]]:
        """Check the host and every address it resolves to; return the git config that
        pins git's connection to the one address that answered."""
        pol = self.policy
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port or 443
        literal = _ip_literal(host)
        why = pol.address_problem(str(literal)) if literal is not None else None
        if why:  # an address in the URL itself: say what is wrong with it first
            raise self._fail(ADDRESS_NOT_ALLOWED, f"{host} is {why}", url, sha)
        if not pol.host_allowed(host, port):
            raise self._fail(HOST_NOT_ALLOWED, f"{host}:{port} is not in the document host allow-list", url, sha)
        addresses = self._resolve(host, port, url, sha, deadline)
        for a in addresses:
            why = pol.address_problem(a)
            if why:
                raise self._fail(ADDRESS_NOT_ALLOWED, f"{host} resolves to {a}: {why}", url, sha)
        if pol.proxy:  # the proxy resolves and connects; nothing to pin here
            return []
        address = self._connect_one(addresses, port, url, sha, deadline)
        if literal is not None:  # curl connects to an address in the URL as it is: no name to pin
            return []
        pinned = f"[{address}]" if ":" in address else address
        return [("http.curloptResolve", f"{host}:{port}:{pinned}")]

    def _resolve(self, host: str, port: int, url: str, sha: str, deadline: float) -> list[str]:
        ip = _ip_literal(host)
        if ip is not None:
            return [str(ip)]
        resolver = self.policy.resolver or _system_resolver
        limit = min(self.policy.connect_timeout, max(0.0, deadline - time.monotonic()))
        done: dict = {}

        def work() -> None:
            try:
                done["addresses"] = list(dict.fromkeys(str(a) for a in resolver(host, port)))
            except Exception as e:  # noqa: BLE001 - any resolver failure is "host not found"
                done["error"] = e

        t = threading.Thread(target=work, name="lab-ci-resolve", daemon=True)
        t.start()
        t.join(limit)
        if t.is_alive():
            raise self._fail(gitrun.TIMED_OUT, f"resolving {host} took more than {limit:g} s", url, sha)
        if "error" in done or not done.get("addresses"):
            raise self._fail(gitrun.HOST_NOT_FOUND, f"resolving {host}: {done.get('error', 'no address')}", url, sha)
        return done["addresses"]

    def _connect_one(self, addresses: list[str], port: int, url: str, sha: str, deadline: float) -> str:
        """The first address that accepts a TCP connection within the connect timeout
        (git has no connect-timeout setting of its own)."""
        problems = []
        timed_out = False
        for a in addresses:
            limit = min(self.policy.connect_timeout, deadline - time.monotonic())
            if limit <= 0:
                timed_out = True
                break
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(limit)
                    s.connect((a, port))
                return a
            except TimeoutError:
                timed_out = True
                problems.append(f"{a}: timed out")
            except OSError as e:
                problems.append(f"{a}: {e.strerror or e}")
        category = gitrun.TIMED_OUT if timed_out else gitrun.CONNECTION_FAILED
        raise self._fail(category, "; ".join(problems) or "out of time", url, sha)

    def _read_tree(
        self, url: str, gd: list[str], commit: str, patterns: tuple[str, ...], deadline: float, runner=None
    ) -> DocumentTree:
        runner = runner or GitRunner(ISOLATED)
        try:
            listing = self._git(
                runner, [*gd, "ls-tree", "-r", "-z", "--long", "--full-tree", "--end-of-options", commit], deadline
            )
        except GitError as e:
            raise self._fail(e.category, e.detail, url, commit) from None
        matched: list[tuple[str, str, str, int | None]] = []
        for entry in filter(None, listing.split(b"\0")):
            meta, _, raw_path = entry.partition(b"\t")
            mode, kind, oid, size = meta.decode("ascii").split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if any(glob_match(path, p) for p in patterns):
                matched.append((path, mode, oid, int(size) if size.isdigit() else None))
        files: dict[str, DocumentFile] = {}
        wanted: list[tuple[str, str, int]] = []
        for path, mode, oid, size in matched:
            if mode == "120000":
                files[path] = DocumentFile(path, size, "symlink")  # never followed
            elif mode == "160000":
                files[path] = DocumentFile(path, None, "submodule")
            elif size is not None and size > self.max_file_bytes:
                files[path] = DocumentFile(path, size, "too-large")
            else:
                wanted.append((path, oid, size or 0))
        total = sum(size for _, _, size in wanted)
        if total > self.max_bytes:
            raise DocumentError(
                f"selected files total {total} bytes, over the {self.max_bytes}-byte limit",
                field="document.patterns",
                category=gitrun.TOO_LARGE,
            )
        if wanted:
            try:
                raw = self._git(
                    runner,
                    [*gd, "cat-file", "--batch"],
                    deadline,
                    input="".join(f"{oid}\n" for _, oid, _ in wanted).encode(),
                    max_output=total + 128 * len(wanted),
                )
            except GitError as e:
                raise self._fail(e.category, e.detail, url, commit) from None
            pos = 0
            for path, _oid, _size in wanted:
                nl = raw.index(b"\n", pos)
                length = int(raw[pos:nl].split()[2])
                blob = raw[nl + 1 : nl + 1 + length]
                pos = nl + 1 + length + 1
                files[path] = _document_file(path, blob)
        ordered = tuple(files[p] for p, *_ in matched)
        return DocumentTree(url, commit, patterns, ordered)

    def _store(self, cached: Path, tree: DocumentTree) -> None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(tree.to_json(), fh)
            os.replace(tmp, cached)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _document_file(path: str, blob: bytes) -> DocumentFile:
    if b"\0" in blob:
        return DocumentFile(path, len(blob), "binary")
    try:
        return DocumentFile(path, len(blob), "ok", blob.decode("utf-8"))
    except UnicodeDecodeError:
        return DocumentFile(path, len(blob), "not-utf8")


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [info[4][0] for info in infos]


class _ScratchRepo:
    """A fresh folder for one fetch's bare repository, removed afterwards (whatever
    happened: a killed fetch's temporary pack goes with it)."""

    def __init__(self, parent: Path):
        self.parent = parent

    def __enter__(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="fetch-", dir=self.parent))
        return self.path / "repo.git"

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
