"""Fetch a knowledge leaf's documents from git: untrusted input, handled defensively.

A leaf names ``document.repo`` (a URL), ``document.commit`` and ``document.patterns``.
All three come from a contributor, so before any git call:

* the URL must be ``https://`` (``file://`` or a local path only with ``allow_file``);
  ``ssh``, ``git://``, ``ext::``/``fd::`` transports, ``-``-leading values (option
  injection), embedded credentials (they would leak into logs and comments),
  whitespace and control characters are rejected;
* the commit must be a hex SHA (7-40 digits), never a ref name;
* patterns are repository-relative globs: no absolute paths, no ``..``, no ``-`` lead.

Git then runs with only the https protocol allowed (plus file for allowed/mirrored
sources), no terminal prompt, no credential helper, no hooks, ``--`` before positional
arguments, a time limit, into a bare cache repository (``fetch --depth 1 origin
<commit>``). Files are read from git objects (no checkout): regular blobs only (no
symlinks, no submodules), UTF-8 text only, under a per-file and total size limit.

A *mirror* maps a leaf's URL to a trusted local repository (operator configuration),
e.g. the example documents repository made by ``scripts/make_example_docs.py``.
Results are cached by (repo, commit, patterns) as JSON, so a second fetch runs no git.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import DocumentError

log = logging.getLogger(__name__)

MIRRORS_ENV = "LAB_CI_DOCUMENT_MIRRORS"
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$")


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
        if not parts.hostname or not _HOST.match(parts.hostname):
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
    out = []
    for p in patterns:
        if not isinstance(p, str) or not p.strip():
            raise DocumentError(f"empty pattern {p!r}", field="document.patterns")
        why = None
        if _CONTROL.search(p.replace(" ", "")):
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
    ``**`` across parts (as ``glob.glob(root/pattern, recursive=True)``)."""
    pp, gp = path.split("/"), pattern.split("/")

    def match(i: int, j: int) -> bool:
        if j == len(gp):
            return i == len(pp)
        if gp[j] == "**":
            return any(match(k, j + 1) for k in range(i, len(pp) + 1))
        return i < len(pp) and fnmatch.fnmatchcase(pp[i], gp[j]) and match(i + 1, j + 1)

    return match(0, 0)


# ---------------------------------------------------------------- fetching (git I/O)


class DocumentFetcher:
    """Fetch (and cache) the documents a knowledge leaf points at."""

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        allow_file: bool = False,
        mirrors: dict[str, str] | None = None,
        max_bytes: int = 8 * 1024 * 1024,
        max_file_bytes: int = 2 * 1024 * 1024,
        timeout: float = 120.0,
    ):
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.allow_file = allow_file
        self.mirrors = {_norm_url(k): v for k, v in (mirrors or {}).items()}
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self.timeout = timeout
        self.git_calls = 0  # for tests and logs: how many git processes ran

    # -- public

    def fetch(self, repo_url: str, commit: str, patterns) -> list[Document]:
        url = validate_repo_url(repo_url, allow_file=self.allow_file)
        sha = validate_commit(commit)
        pats = validate_patterns(patterns)
        key = hashlib.sha256(json.dumps([_norm_url(url), sha, list(pats)]).encode()).hexdigest()[:32]
        cached = self.cache_dir / "results" / f"{key}.json"
        if cached.is_file():
            try:
                data = json.loads(cached.read_text("utf-8"))
                return [Document(d["path"], d["text"]) for d in data["documents"]]
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a damaged document cache entry %s", cached)
        source, trusted = self._source(url)
        repo = self._ensure_repo(url)
        full = self._fetch_commit(repo, source, sha, trusted)
        docs = self._read(repo, full, pats)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "repo": url,
                    "commit": full,
                    "patterns": list(pats),
                    "documents": [{"path": d.path, "text": d.text} for d in docs],
                }
            ),
            "utf-8",
        )
        os.replace(tmp, cached)
        return docs

    # -- internals

    def _source(self, url: str) -> tuple[str, bool]:
        target = self.mirrors.get(_norm_url(url))
        if target is None:
            return url, url.startswith("file://")
        if "://" not in target:
            target = "file://" + str(Path(target).resolve())
        return target, True

    def _git(
        self,
        args: list[str],
        *,
        allow_file: bool,
        cwd: Path | None = None,
        binary: bool = False,
        input: bytes | None = None,
    ):
        self.git_calls += 1
        cmd = [
            "git",
            "-c",
            "protocol.allow=never",
            "-c",
            "protocol.https.allow=always",
            "-c",
            f"protocol.file.allow={'always' if allow_file else 'never'}",
            "-c",
            "credential.helper=",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.askPass=",
            "-c",
            "http.followRedirects=false",
            "-c",
            "transfer.fsckObjects=true",
            *args,
        ]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROTOCOL_FROM_USER": "0",
        }
        try:
            out = subprocess.run(
                cmd, cwd=cwd, env=env, capture_output=True, timeout=self.timeout, input=input, check=False
            )
        except subprocess.TimeoutExpired:
            raise DocumentError(f"git {args[0]} timed out after {self.timeout:g} s") from None
        except FileNotFoundError:
            raise DocumentError("git is not installed") from None
        if out.returncode != 0:
            err = out.stderr.decode("utf-8", "replace").strip().splitlines()
            raise DocumentError(f"git {args[0]} failed: {err[-1] if err else 'exit ' + str(out.returncode)}")
        return out.stdout if binary else out.stdout.decode("utf-8", "replace")

    def _ensure_repo(self, url: str) -> Path:
        repo = self.cache_dir / "repos" / (hashlib.sha256(_norm_url(url).encode()).hexdigest()[:32] + ".git")
        if not (repo / "HEAD").is_file():
            repo.parent.mkdir(parents=True, exist_ok=True)
            self._git(["init", "--quiet", "--bare", "--", str(repo)], allow_file=False)
        return repo

    def _fetch_commit(self, repo: Path, source: str, sha: str, allow_file: bool) -> str:
        gd = ["--git-dir", str(repo)]
        try:  # already here from an earlier fetch?
            return self._git(
                [*gd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}^{{commit}}"], allow_file=False
            ).strip()
        except DocumentError:
            pass
        fetch = [*gd, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules"]
        if len(sha) == 40:
            try:
                self._git([*fetch, "--depth", "1", "--", source, sha], allow_file=allow_file)
            except DocumentError as e:
                log.info("fetching %s by SHA failed (%s); fetching branches", sha, e)
                self._git([*fetch, "--", source, "+refs/heads/*:refs/lab-ci/heads/*"], allow_file=allow_file)
        else:  # an abbreviated SHA cannot be asked for: fetch the branches and resolve it
            self._git([*fetch, "--", source, "+refs/heads/*:refs/lab-ci/heads/*"], allow_file=allow_file)
        try:
            return self._git(
                [*gd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}^{{commit}}"], allow_file=False
            ).strip()
        except DocumentError:
            raise DocumentError(f"commit {sha} not found in the repository", field="document.commit") from None

    def _read(self, repo: Path, commit: str, patterns: tuple[str, ...]) -> list[Document]:
        gd = ["--git-dir", str(repo)]
        listing = self._git(
            [*gd, "ls-tree", "-r", "-z", "--long", "--full-tree", "--end-of-options", commit], allow_file=False
        )
        picked: list[tuple[str, str, int]] = []
        for entry in filter(None, listing.split("\0")):
            meta, _, path = entry.partition("\t")
            mode, kind, oid, size = meta.split()
            if kind != "blob" or mode not in ("100644", "100755"):
                continue  # symlinks (120000) and submodules are never followed
            if any(glob_match(path, p) for p in patterns):
                picked.append((path, oid, int(size)))
        if not picked:
            raise DocumentError(
                f"patterns {', '.join(patterns)} match no files at commit {commit[:12]}", field="document.patterns"
            )
        total = 0
        for path, _, size in picked:
            if size > self.max_file_bytes:
                raise DocumentError(
                    f"{path} is {size} bytes, over the {self.max_file_bytes}-byte file limit", field="document.patterns"
                )
            total += size
        if total > self.max_bytes:
            raise DocumentError(
                f"selected files total {total} bytes, over the {self.max_bytes}-byte limit", field="document.patterns"
            )
        raw = self._git(
            [*gd, "cat-file", "--batch"],
            allow_file=False,
            binary=True,
            input="".join(f"{oid}\n" for _, oid, _ in picked).encode(),
        )
        docs: list[Document] = []
        pos = 0
        for path, _oid, _size in picked:
            nl = raw.index(b"\n", pos)
            header = raw[pos:nl].split()
            length = int(header[2])
            blob = raw[nl + 1 : nl + 1 + length]
            pos = nl + 1 + length + 1
            if b"\0" in blob:
                log.info("skipping binary document %s", path)
                continue
            try:
                docs.append(Document(path, blob.decode("utf-8")))
            except UnicodeDecodeError:
                log.info("skipping non-UTF-8 document %s", path)
        if not docs:
            raise DocumentError("patterns match no UTF-8 text files", field="document.patterns")
        docs.sort(key=lambda d: (not d.path.lower().endswith((".md", ".markdown")), d.path))
        return docs
