"""A taxonomy file as read from git objects or a working tree.

Everything downstream (check, preview, build) takes :class:`LeafFile` values, so no
stage needs a checkout: the bytes come straight from git blobs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

#: What the path is in the tree: a regular file, a symlink, a directory (tree), a git
#: submodule, a special file on disk (fifo, socket, device), or gone (deleted).
Kind = Literal["file", "symlink", "directory", "submodule", "fifo", "socket", "device", "missing"]
Change = Literal["checked", "added", "modified", "renamed", "deleted"]


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob with these bytes (``git hash-object``)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class LeafFile:
    """One ``qna.yaml`` (or a path that should have been one) plus its leaf context."""

    path: str  # posix path relative to the taxonomy root, e.g. "knowledge/x/y/qna.yaml"
    data: bytes | None  # the file's bytes; None unless kind == "file"
    kind: Kind = "file"
    blob_id: str | None = None  # git blob id of data (computed for working-tree files)
    change: Change = "checked"
    old_path: str | None = None  # set for renames
    # The sibling attribution.txt: bytes, or None when there is none.
    attribution: bytes | None = None
    attribution_kind: Kind = "missing"

    @property
    def leaf_dir(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""
