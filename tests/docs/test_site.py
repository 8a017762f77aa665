"""``mkdocs build --strict`` of the documentation site, offline, as CI runs it: a dead link,
a missing page or anchor, a page left out of the nav, a broken outline or a failing
reference generator fails the build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Runs mkdocs with every way to open a network connection disabled: the build must not
# need one (no web fonts, no remote plugins, no fetched schemas).
OFFLINE_BUILD = """
import socket, sys
def refuse(*args, **kwargs):
    raise OSError("the documentation build tried to reach the network")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from mkdocs.__main__ import cli
cli(["build", "--strict", "--config-file", sys.argv[1], "--site-dir", sys.argv[2]])
"""


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_CI_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    return subprocess.run(
        [sys.executable, "-c", OFFLINE_BUILD, str(config), str(site)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_the_site_builds_strict_and_offline(tmp_path):
    site = tmp_path / "site"
    out = build(REPO / "mkdocs.yml", site)
    assert out.returncode == 0, out.stderr
    for page in ("index", "operators/runbook", "operators/metrics", "developers/architecture"):
        assert (site / page / "index.html").is_file() or (site / f"{page}.html").is_file(), page
    for page in ("cli", "rules", "qna-yaml", "pipeline-blocks", "bot-settings", "metrics"):
        html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
        assert "<table>" in html, f"reference/{page}: no table generated"
    cli_html = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--schema-version" in cli_html and 'id="lab-ci-serve"' in cli_html
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in index and "fonts.gstatic.com" not in index
    assert not list(site.rglob("_hooks")), "the build machinery must not be published"


def test_a_broken_site_fails_the_build(tmp_path):
    shutil.copytree(REPO / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    index = tmp_path / "docs" / "index.md"
    index.write_text(
        index.read_text(encoding="utf-8")
        + "\nSee [a page that is not there](nowhere.md), [a missing section](operators/runbook.md#no-such-section)"
        + " and bot-setup.md.\n\n#### A heading three levels down\n",
        encoding="utf-8",
    )
    (tmp_path / "docs" / "operators" / "orphan.md").write_text("# Orphan\n\nIn no nav.\n", encoding="utf-8")
    out = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert out.returncode != 0
    for expected in (
        "'nowhere.md'",
        "#no-such-section",
        "'bot-setup.md' is named as plain text",
        "heading level jumps from 2 to 4",
        "orphan.md",
    ):
        assert expected in out.stderr, f"no warning about {expected}:\n{out.stderr}"
