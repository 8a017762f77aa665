"""The README: short, every link alive, and every page of the site one click away."""

from __future__ import annotations

import re
from pathlib import Path

import markdown
import yaml
from labdocs import outline

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def local_links(text: str) -> list[str]:
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def anchors(page: Path) -> set[str]:
    """The ids MkDocs gives the headings of a page (toc and attr_list, as in mkdocs.yml)."""
    md = markdown.Markdown(extensions=["toc", "attr_list", "pymdownx.superfences"])
    md.convert(page.read_text(encoding="utf-8"))

    def walk(tokens):
        for t in tokens:
            yield t["id"]
            yield from walk(t["children"])

    return set(walk(md.toc_tokens))


def nav_pages() -> list[str]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)

    def walk(items):
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            if isinstance(value, list):
                yield from walk(value)
            else:
                yield value

    return list(walk(config["nav"]))


def test_the_readme_is_short():
    assert len(readme().splitlines()) <= 300


def test_every_link_of_the_readme_resolves():
    links = local_links(readme())
    assert links
    for link in links:
        path, _, anchor = link.partition("#")
        target = REPO / path
        assert target.exists(), f"README links to {link}, which does not exist"
        if anchor:
            assert anchor in anchors(target), f"README links to {link}: no such heading"


def test_every_page_of_the_site_is_one_click_from_the_readme():
    linked = {link.partition("#")[0] for link in local_links(readme())}
    missing = [page for page in nav_pages() if (REPO / "docs" / page).is_file() and f"docs/{page}" not in linked]
    assert not missing, f"pages the README does not link: {missing}"


def test_the_readme_passes_the_page_checks():
    assert outline.problems(readme()) == []
