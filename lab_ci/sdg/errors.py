"""Errors raised by generation: all are user-facing :class:`LabCIError` values."""

from __future__ import annotations

from ..errors import LabCIError


class PipelineError(LabCIError):
    """A pipeline file is invalid (names the file and the block)."""


class BlockError(LabCIError):
    """A block failed while running; the message starts with the block's name."""

    def __init__(self, block: str, message: str):
        super().__init__(f"block {block!r}: {message}")
        self.block = block


class SeedError(LabCIError):
    """A leaf has no usable seed examples (names the leaf file)."""


class EmptyLeafError(SeedError):
    """The leaf file is empty (no YAML value). ``lab-ci check`` accepts such a file with a
    warning, as the reference validator does; there is nothing to generate from."""


class DocumentError(LabCIError):
    """A knowledge document reference is unsafe or cannot be fetched.

    ``field`` names the leaf field at fault (``document.repo``, ``document.commit``,
    ``document.patterns``) when known; ``leaf`` the leaf file, once the caller knows it.
    """

    def __init__(self, message: str, *, field: str | None = None, leaf: str | None = None):
        self.reason = message
        self.field = field
        self.leaf = leaf
        super().__init__(self._text())

    def _text(self) -> str:
        where = ": ".join(x for x in (self.leaf, self.field) if x)
        return f"{where}: {self.reason}" if where else self.reason

    def for_leaf(self, leaf: str) -> DocumentError:
        return DocumentError(self.reason, field=self.field, leaf=leaf)
