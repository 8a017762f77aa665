"""yamllint, in-process, with the reference's configuration.

The reference validator runs the ``yamllint`` command once per file (about 65 ms).
We call yamllint's own rule code in-process, configured once, and feed it the token
stream from libyaml's C scanner instead of PyYAML's pure-Python one (the scanner is
most of yamllint's time). yamllint's rule functions, comment detection, line splitting
and ``# yamllint disable`` handling are yamllint's, unchanged: we only swap the token
source. Should the fast path ever fail, we fall back to plain ``yamllint.linter.run``.

One rule is swapped: yamllint's ``key-duplicates`` keeps each mapping's keys in a list
(quadratic: a 70,000-key mapping costs it minutes); :data:`KEY_DUPLICATES` reports
exactly the same problems with a set.

yamllint's separate syntax pass is skipped: :mod:`lab_ci.taxonomy.yamlsrc` already parsed
the file (and lint only runs on files that parsed), so it would find nothing.
"""

from __future__ import annotations

import functools
import re
import threading
import types

import yaml
from yamllint import linter as _linter
from yamllint import parser as _parser
from yamllint.config import YamlLintConfig

from lab_ci.check.diagnostics import Diagnostic

#: The reference's configuration (instructlab-schema's DEFAULT_YAMLLINT_CONFIG).
YAMLLINT_CONFIG = "{extends: relaxed, rules: {line-length: disable}}"

_DISABLE_FILE = re.compile(r"^#\s*yamllint disable-file\s*$")


@functools.cache
def config() -> YamlLintConfig:
    return YamlLintConfig(YAMLLINT_CONFIG)


class _Mark:
    """PyYAML's ``Mark`` as yamllint reads it (libyaml's marks lack buffer and pointer)."""

    __slots__ = ("name", "index", "line", "column", "buffer", "pointer")

    def __init__(self, index: int, line: int, column: int, buffer: str):
        self.name = None
        self.index = self.pointer = index
        self.line = line
        self.column = column
        self.buffer = buffer


def _c_tokens(buffer: str) -> list:
    """All tokens of ``buffer`` from libyaml, with PyYAML-style marks (pointer, buffer)."""
    loader = yaml.CBaseLoader(buffer)
    tokens = []
    try:
        while loader.check_token():
            tok = loader.get_token()
            s, e = tok.start_mark, tok.end_mark
            tok.start_mark = _Mark(s.index, s.line, s.column, buffer)
            tok.end_mark = _Mark(e.index, e.line, e.column, buffer) if e.index != s.index else tok.start_mark
            if isinstance(tok, yaml.ScalarToken) and tok.plain and not tok.style:
                tok.style = None
            tokens.append(tok)
    finally:
        loader.dispose()
    return tokens


_state = threading.local()


def _token_or_comment_generator(buffer: str):
    tokens = _state.tokens
    n = len(tokens)
    Token, between = _parser.Token, _parser.comments_between_tokens
    for i, curr in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < n else None
        nextnext = tokens[i + 2] if i + 2 < n else None
        yield Token(curr.start_mark.line + 1, curr, prev, nxt, nextnext)
        yield from between(curr, nxt)


def _token_or_comment_or_line_generator(buffer: str):
    """Tokens, comments and lines ordered by line number, as yamllint's parser does."""
    tok_gen = _token_or_comment_generator(buffer)
    line_gen = _parser.line_generator(buffer)
    tok = next(tok_gen, None)
    line = next(line_gen, None)
    while tok is not None or line is not None:
        if tok is None or (line is not None and tok.line_no > line.line_no):
            yield line
            line = next(line_gen, None)
        else:
            yield tok
            tok = next(tok_gen, None)


# yamllint's own get_cosmetic_problems, bound to a parser namespace whose generator
# reads libyaml tokens. Nothing global is patched.
_fast_parser = types.SimpleNamespace(
    Token=_parser.Token,
    Comment=_parser.Comment,
    Line=_parser.Line,
    token_or_comment_or_line_generator=_token_or_comment_or_line_generator,
)
_fast_cosmetic = types.FunctionType(
    _linter.get_cosmetic_problems.__code__,
    {**_linter.__dict__, "parser": _fast_parser},
    "fast_cosmetic_problems",
    _linter.get_cosmetic_problems.__defaults__,
    _linter.get_cosmetic_problems.__closure__,
)


#: Token rules that can only report something when certain tokens occur (read from
#: their code, for the settings of YAMLLINT_CONFIG); skipped on files without them.
_RULE_TRIGGERS: dict[str, tuple[type, ...]] = {
    "braces": (yaml.FlowMappingStartToken, yaml.FlowMappingEndToken),
    "brackets": (yaml.FlowSequenceStartToken, yaml.FlowSequenceEndToken),
    "commas": (yaml.FlowEntryToken,),
    "anchors": (yaml.AnchorToken, yaml.AliasToken),
    "hyphens": (yaml.BlockEntryToken,),
}


def _key_duplicates(conf, token, prev, next, nextnext, context):  # noqa: A002 - yamllint's signature
    """yamllint's ``key-duplicates`` rule (same problems, same messages), with each
    open mapping's keys in a set instead of a list."""
    stack = context.setdefault("stack", [])
    if isinstance(token, (yaml.BlockMappingStartToken, yaml.FlowMappingStartToken)):
        stack.append(set())
    elif isinstance(token, (yaml.BlockSequenceStartToken, yaml.FlowSequenceStartToken)):
        stack.append(None)  # a sequence: its keys (in flow pairs) are not checked
    elif isinstance(token, (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)):
        if stack:
            stack.pop()
    elif isinstance(token, yaml.KeyToken) and isinstance(next, yaml.ScalarToken) and stack and stack[-1] is not None:
        keys = stack[-1]
        if next.value in keys and (next.value != "<<" or conf["forbid-duplicated-merge-keys"]):
            yield _linter.LintProblem(
                next.start_mark.line + 1,
                next.start_mark.column + 1,
                f'duplication of key "{next.value}" in mapping',
            )
        else:
            keys.add(next.value)


#: Drop-in for yamllint's ``key-duplicates`` rule module.
KEY_DUPLICATES = types.SimpleNamespace(
    ID="key-duplicates",
    TYPE="token",
    CONF={"forbid-duplicated-merge-keys": bool},
    DEFAULT={"forbid-duplicated-merge-keys": False},
    check=_key_duplicates,
)
_SWAPPED = {KEY_DUPLICATES.ID: KEY_DUPLICATES}


class _FileConfig:
    """The shared configuration, with our linear-time ``key-duplicates``, and (given
    the file's token types) the rules that cannot fire on this file left out."""

    def __init__(self, conf: YamlLintConfig, token_types: set[type] | None = None):
        self.rules = conf.rules
        self._enabled = [
            _SWAPPED.get(r.ID, r)
            for r in conf.enabled_rules(None)
            if token_types is None or r.ID not in _RULE_TRIGGERS or any(t in token_types for t in _RULE_TRIGGERS[r.ID])
        ]

    def enabled_rules(self, filepath):
        return self._enabled


def lint_problems(text: str, *, fast: bool = True) -> list:
    """yamllint ``LintProblem`` objects for ``text`` (a document that parses)."""
    conf = config()
    if fast:
        first_line = next(_parser.line_generator(text)).content
        if _DISABLE_FILE.match(first_line):
            return []
        try:
            tokens = _c_tokens(text)
            _state.tokens = tokens
            try:
                return list(_fast_cosmetic(text, _FileConfig(conf, {type(t) for t in tokens}), None))
            finally:
                _state.tokens = None
        except Exception:  # noqa: BLE001 - any surprise: use yamllint's own parser
            pass
    return list(_linter.run(text, _FileConfig(conf)))


def lint(text: str, *, fast: bool = True) -> list[Diagnostic]:
    """yamllint's problems for ``text`` as diagnostics (source ``yamllint``), in plain
    words with yamllint's own as ``reference_message``."""
    from lab_ci.check.messages import yamllint_diagnostic

    problems = lint_problems(text, fast=fast)
    if not problems:
        return []
    last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
    return [yamllint_diagnostic(p, last_line) for p in problems]
