"""Errors raised by generation: all are user-facing :class:`LabCIError` values."""

from __future__ import annotations

from ..errors import LabCIError
from ..taxonomy.documents import DocumentError  # noqa: F401  (defined with the fetcher; raised by generation)


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
