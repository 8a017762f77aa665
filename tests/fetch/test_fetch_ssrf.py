"""SSRF through ``document.repo`` (issue 10, point 2), reproduced on the real preview.

A knowledge leaf whose document repository is ``https://127.0.0.1:PORT/x.git`` must
not make the bot connect there, and the preview comment must not carry git's network
text (which differs by what listens on the port, so it maps the bot host's network).
The listeners are real sockets on loopback that record every connection."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from fetchlib import Listener

from lab_ci.cli import main

KESTREL = "knowledge/history/fictional/kestrel_island_lighthouse/qna.yaml"
EXAMPLE_DOCS_URL = "https://github.com/lab-ci/example-documents.git"


def _commit_change(repo, path, text):
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
    }
    (repo / path).write_text(text)
    for args in (["checkout", "--quiet", "-b", "change"], ["commit", "--quiet", "-am", "point at the bot host"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@pytest.mark.parametrize("mode", ["banner", "close"])
def test_preview_never_connects_to_a_loopback_document_repo(example_taxonomy_repo, tiny_models, tmp_path, capsys, mode):
    repo = example_taxonomy_repo
    with Listener("127.0.0.1", mode=mode) as probe:
        url = f"https://127.0.0.1:{probe.port}/x.git"
        _commit_change(repo, KESTREL, (repo / KESTREL).read_text().replace(EXAMPLE_DOCS_URL, url))
        t0 = time.monotonic()
        code = main(
            [
                "preview",
                "--quiet",
                "--taxonomy",
                str(repo),
                "--base",
                "main",
                "--head",
                "change",
                "--teacher",
                str(tiny_models["teacher"]),
                "--samples",
                "1",
                "--max-tokens",
                "8",
                "--document-cache",
                str(tmp_path / "doc-cache"),
            ]
        )
        elapsed = time.monotonic() - t0
        out, err = capsys.readouterr()
        time.sleep(0.3)  # a connection git made at the very end would be accepted by now
        assert probe.accepted == [], f"the preview connected to {url}"
    assert code == 1, err
    assert "Not previewed: generation failed" in out
    # the category, never git's own words about the socket
    assert "could not fetch the document repository: address not allowed" in out.replace("\\", "")
    for leak in ("unable to access", "SSL", "TLS", "Connection", "connect", "OpenSSH", "fatal", str(probe.port)):
        assert leak not in out, f"{leak!r} leaked into the comment:\n{out}"
    assert elapsed < 60


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "0x7f000001",  # the forms inet_aton accepts: hex, decimal, octal, short
        "2130706433",
        "017700000001",
        "127.1",
        "localhost",  # /etc/hosts
    ],
)
def test_every_spelling_of_loopback_is_refused_even_with_an_open_allow_list(tmp_path, host):
    """Even an operator's ``*`` cannot open the bot host: the address check runs on what
    the name resolves to (the system resolver; numeric forms and /etc/hosts never reach
    DNS)."""
    from lab_ci.taxonomy.documents import ADDRESS_NOT_ALLOWED, DocumentError, DocumentFetcher, FetchPolicy

    try:
        listener = Listener("::1" if host == "[::1]" else "127.0.0.1", mode="banner")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with listener as probe:
        f = DocumentFetcher(
            cache_dir=tmp_path / "cache", policy=FetchPolicy(allowed_hosts=(f"*:{probe.port}",), timeout=10)
        )
        with pytest.raises(DocumentError) as e:
            f.fetch(f"https://{host}:{probe.port}/x.git", "a" * 40, ["*.md"])
        time.sleep(0.2)
        assert probe.accepted == [] and f.git_calls == 0
    assert e.value.category == ADDRESS_NOT_ALLOWED, e.value.detail
