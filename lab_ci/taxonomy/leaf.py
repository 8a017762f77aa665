"""A taxonomy file as read from git objects or a working tree.

Everything downstream (check, preview, build) takes :class:`LeafFile` values, so no
stage needs a checkout: the bytes come straight from git blobs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

#: The one name a leaf file may have, and the name of the credits file beside it.
QNA = "qna.yaml"
ATTRIBUTION = "attribution.txt"
#: The top-level folders of a taxonomy (``CheckOptions.taxonomy_folders`` by default).
TAXONOMY_FOLDERS: tuple[str, ...] = ("compositional_skills", "knowledge")

#: A file name a contributor meant as a leaf: any YAML file (``qna.yml``, ``QNA.yaml``,
#: ``movie_qna.yaml``, ``qna.yaml `` with a trailing space). Editor backups
#: (``qna.yaml~``, ``qna.yaml.bak``) are not.
_LEAF_LIKE = re.compile(r"\.ya?ml\s*$", re.IGNORECASE)

#: What the path is in the tree: a regular file, a symlink, a directory (tree), a git
#: submodule, a special file on disk (fifo, socket, device), or gone (deleted).
Kind = Literal["file", "symlink", "directory", "submodule", "fifo", "socket", "device", "missing"]
Change = Literal["checked", "added", "modified", "renamed", "deleted"]


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob with these bytes (``git hash-object``)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def misnamed_leaf(path: str, folders: tuple[str, ...] = TAXONOMY_FOLDERS) -> bool:
    """True for a file inside a taxonomy folder that looks like a leaf but is not named
    ``qna.yaml`` (data generation would never read it). Files outside the taxonomy
    folders (``docs/template_qna.yaml``) are left alone."""
    first, _, rest = path.partition("/")
    if not rest or first not in folders:
        return False
    name = path.rsplit("/", 1)[-1]
    return name != QNA and bool(_LEAF_LIKE.search(name))


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
