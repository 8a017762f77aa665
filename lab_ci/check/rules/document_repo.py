"""document-repo: ``document.repo`` is the https URL of a git repository on a code host.

The preview and the build clone it over https (never ssh: they hold no keys; never
plain http). An SSH address (``git@github.com:owner/repo.git``), an ``http://`` URL,
an address without a scheme, a web page that is no code host, or the URL of a single
file in a repository is reported, with the URL to write instead where it can be
worked out. Known code hosts: :data:`CODE_HOSTS`, and hosts named ``github.*`` or
``gitlab.*`` (enterprise installations).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from lab_ci.check.rules._document import at, document
from lab_ci.check.rules.base import Problem, RuleContext
from lab_ci.check.rules.examples import KNOWLEDGE, KNOWLEDGE_PATH

ID = "document-repo"
LEVEL = "warning"
SUMMARY = "document.repo must be the https URL of a git repository on a code host"
PASSING = KNOWLEDGE
FAILING = KNOWLEDGE.replace("repo: 'https://github.com/octocat/moon'", "repo: 'git@github.com:octocat/moon.git'")
EXAMPLE = {"path": KNOWLEDGE_PATH}

CODE_HOSTS = (
    "github.com",
    "gitlab.com",
    "bitbucket.org",
    "codeberg.org",
    "huggingface.co",
    "gitee.com",
    "git.sr.ht",
    "dev.azure.com",
)
_SSH = re.compile(r"^(?:ssh://)?[\w.-]+@(?P<host>[\w.-]+)[:/](?P<path>[^\s]+?)/?$")
_FILE_VIEW = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/(?:-/)?(?:blob|tree|raw|src)/")


def code_host(host: str) -> bool:
    host = host.lower()
    return host in CODE_HOSTS or host.split(".", 1)[0] in ("github", "gitlab")


def _problem(ctx: RuleContext, message: str, hint: str) -> Problem:
    line, col = at(ctx, "repo")
    return Problem(message, line, col, ".document.repo", hint=hint)


def check(leaf, data, ctx: RuleContext) -> Iterator[Problem]:
    doc = document(data)
    if doc is None or not isinstance(doc.get("repo"), str) or not doc["repo"].strip():
        return
    repo = doc["repo"].strip()
    shown = repo[:100]
    if (m := _SSH.match(repo)) and "://" not in repo.replace("ssh://", ""):
        https = f"https://{m.group('host')}/{m.group('path').removesuffix('.git')}"
        yield _problem(
            ctx,
            f"`document.repo` is the SSH address `{shown}`; the documents are fetched over https",
            f"Write `repo: {https}`.",
        )
        return
    parts = urlsplit(repo if "://" in repo else "none://" + repo)
    host = parts.hostname or ""
    if parts.scheme == "none":
        yield _problem(
            ctx,
            f"`document.repo` (`{shown}`) has no scheme",
            f"Write the full https URL: `repo: https://{repo.lstrip('/')}`.",
        )
        return
    if parts.scheme == "http":
        yield _problem(
            ctx,
            f"`document.repo` uses plain http (`{shown}`); the documents are fetched over https only",
            f"Write `repo: https://{repo.split('://', 1)[1]}`.",
        )
        return
    if parts.scheme != "https":
        yield _problem(
            ctx,
            f"`document.repo` uses `{parts.scheme}://`; the documents are fetched over https only",
            "Write the repository's https URL, e.g. `repo: https://github.com/<owner>/<repository>`.",
        )
        return
    if parts.username or parts.password:
        yield _problem(
            ctx,
            "`document.repo` holds a user name or password",
            "Remove the credentials from the URL; the repository must be readable without them.",
        )
        return
    try:
        ipaddress.ip_address(host.strip("[]"))
        literal = True
    except ValueError:
        literal = False
    if literal or not host or host == "localhost" or "." not in host:
        yield _problem(
            ctx,
            f"`document.repo` points at `{host or shown}`, not at a code host",
            "Put the documents in a public git repository (e.g. on GitHub) and write its https URL.",
        )
        return
    if not code_host(host):
        yield _problem(
            ctx,
            f"`document.repo` points at `{host}`, which is not a code host lab-ci knows "
            f"({', '.join(CODE_HOSTS[:4])}, ...)",
            "The documents must be in a git repository: put them in one (e.g. on GitHub) and write its https URL here.",
        )
        return
    if m := _FILE_VIEW.match(parts.path):
        yield _problem(
            ctx,
            f"`document.repo` is the address of a page or file inside a repository (`{shown}`), not of the repository",
            f"Write `repo: https://{host}/{m.group('repo')}` and name the files in `patterns`.",
        )
        return
    if parts.path.strip("/").count("/") < 1:
        yield _problem(
            ctx,
            f"`document.repo` (`{shown}`) names no repository",
            f"Write `repo: https://{host}/<owner>/<repository>`.",
        )
