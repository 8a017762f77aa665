"""The page checks of the site build: outline, page names as plain text, internal names."""

from __future__ import annotations

from labdocs import outline


def messages(markdown: str, exists=None) -> list[str]:
    return [f"{line}: {message}" for line, message in outline.problems(markdown, exists)]


def test_a_good_page_has_no_problems():
    page = "# Title\n\nIntro.\n\n## One\n\nText.\n\n### Detail\n\n## Two\n\n### Detail\n"
    assert messages(page) == []


def test_outline_problems_are_found_with_their_line():
    assert messages("Text.\n\n## Not a title\n\n# Title\n") == ["3: a page starts with its title, one '# ' heading"]
    assert messages("Only text.\n") == ["1: a page starts with its title, one '# ' heading"]
    page = "# Title\n## First\n\nx\n\n#### Deep\n\n## Title\n\n## first\n\n# Second title\n"
    assert messages(page) == [
        "2: 'First' follows the title directly: start the page with an introduction",
        "6: heading level jumps from 2 to 4 at 'Deep'",
        "8: section 'Title' repeats the page title",
        "10: section 'first' repeats the one on line 2",
        "12: a second title '# Second title': a page has one '# ' heading",
    ]


def test_pasted_output_inside_fences_and_comments_is_not_outline():
    page = (
        "# Title\n\nIntro.\n\n`````markdown\n## lab-ci preview\n```text\nx\n```\n`````\n\n"
        "~~~\n# not a heading\n~~~\n\n<!--\n# hidden\n-->\n\n## Section { #anchor }\n"
    )
    assert messages(page) == []
    assert [h.text for h in outline.headings(page)] == ["Title", "Section"]


def test_page_names_written_as_text_are_found():
    page = (
        "# T\n\nSee bot-deploy.md for more, [the guide](deploy.md), `README.md`, <https://x.org/a.md>,\n"
        'and "Here is check-usage.md" as a quote. `bot-behaviour.md` is gone.\n'
    )
    assert messages(page, {"README.md"}.__contains__) == [
        "3: 'bot-deploy.md' is named as plain text: make it a link (or a code span for a file)",
        "4: 'bot-behaviour.md' names no file of the repository: link the page meant",
    ]


def test_cross_references_in_words_and_internal_names_are_found():
    page = (
        "# T\n\nSee the teacher section, listed with each command above.\n"
        "BOT-SERVER's app and TRAIN's entry point; the lead-in is fine, the lead is not.\n"
        "Measured this round.\n```\nBUILD in a fence is someone's output\n```\n"
    )
    found = messages(page)
    assert found == [
        "3: 'command above' points somewhere in words: make it a link",
        "3: 'the teacher section' points somewhere in words: make it a link",
        "4: 'BOT-SERVER' is a team's code name: describe the product, not how it was made",
        "4: 'TRAIN' is a team's code name: describe the product, not how it was made",
        "4: 'the lead' is our process: describe the product, not how it was made",
        "5: 'this round' is our history: describe the product, not how it was made",
    ]
