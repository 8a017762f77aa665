"""MkDocs hooks of the lab-ci site (``hooks:`` in ``mkdocs.yml``).

- ``on_files``: adds the reference pages generated from the code
  (:mod:`labdocs.refgen`), so they exist only in the built site and cannot drift.
- ``on_page_markdown``: warns about outline problems, page names written as plain
  text and internal names (:mod:`labdocs.outline`); ``mkdocs build --strict`` (and the
  test suite) fails on any warning, as on a dead link or a broken anchor.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labdocs import outline, refgen  # noqa: E402

log = logging.getLogger("mkdocs.plugins.lab_ci_docs")


_file_names: frozenset[str] = frozenset()


def on_files(files, config):
    global _file_names
    _file_names = repository_file_names(Path(config.config_file_path).resolve().parent)
    try:
        pages = refgen.generate()
    except Exception as e:  # a generator failed: name it, do not build a site without it
        raise PluginError(f"generating the reference pages failed: {type(e).__name__}: {e}") from e
    for uri, content in pages.items():
        if files.get_file_from_path(uri) is not None:
            raise PluginError(f"docs/{uri} is generated from the code at build time: remove the file")
        files.append(File.generated(config, uri, content=content))
    return files


def repository_file_names(root: Path) -> frozenset[str]:
    """Names of the repository's Markdown files (for page names written in code spans)."""
    skip = {".git", ".venv", ".cache", "node_modules", "build-out", "__pycache__"}
    names = set()
    for _, dirs, filenames in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        names.update(f for f in filenames if f.endswith(".md"))
    return frozenset(names)


def on_page_markdown(markdown, page, config, files):
    where = page.file.src_uri if page.file.generated_by else f"docs/{page.file.src_uri}"
    for line, message in outline.problems(markdown, _file_names.__contains__):
        log.warning("%s:%d: %s", where, line, message)
    return markdown
