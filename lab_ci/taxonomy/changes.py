"""Which leaves a change touches: a pure function over ``git diff-tree --raw`` entries.

Only leaves matter: a ``qna.yaml`` added, modified, renamed or deleted is that leaf; an
``attribution.txt`` that changed means its sibling ``qna.yaml`` must be checked again; a
``qna.yaml`` that is a folder shows up in the diff as the files inside it
(``x/qna.yaml/...``) and maps back to ``x/qna.yaml``. A file in a taxonomy folder that
looks like a leaf but is misnamed (``qna.yml``, ``movie_qna.yaml``, see
:func:`~lab_ci.taxonomy.leaf.misnamed_leaf`) is a leaf too, so the checker can say so.
Everything else is ignored.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from .gitrepo import DiffEntry
from .leaf import ATTRIBUTION, QNA, TAXONOMY_FOLDERS, misnamed_leaf

__all__ = ["ATTRIBUTION", "QNA", "LeafChange", "attribution_leaf", "changed_leaves", "leaf_of"]

#: Rank of each change, so a leaf touched twice keeps the most telling label.
_RANK = {"deleted": 0, "modified": 1, "added": 2, "renamed": 3}


@dataclass(frozen=True, slots=True)
class LeafChange:
    path: str  # the qna.yaml path (taxonomy-relative), at head unless deleted
    change: str  # "added" | "modified" | "renamed" | "deleted"
    old_path: str | None = None
    via_attribution: bool = False  # only the sibling attribution.txt changed


def leaf_of(path: str, folders: tuple[str, ...] = TAXONOMY_FOLDERS) -> str | None:
    """The leaf path ``path`` belongs to: itself (a ``qna.yaml``, or a misnamed leaf in
    a taxonomy folder), or the ``qna.yaml`` folder it sits inside; ``None`` when it is
    no leaf file."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part == QNA:
            return "/".join(parts[: i + 1])
    return path if misnamed_leaf(path, folders) else None


def attribution_leaf(path: str) -> str | None:
    """The sibling ``qna.yaml`` of an ``attribution.txt`` path (one at the taxonomy root
    belongs to no leaf)."""
    head, _, name = path.rpartition("/")
    if name != ATTRIBUTION or not head:
        return None
    return f"{head}/{QNA}"


def changed_leaves(
    entries: list[DiffEntry], exists_at_head, folders: tuple[str, ...] = TAXONOMY_FOLDERS
) -> list[LeafChange]:
    """Map diff entries to changed leaves.

    ``exists_at_head(path) -> bool`` says whether ``path`` exists (in any form) in the
    head state, so a ``qna.yaml`` that turned from a file into a folder (deleted as a file,
    added as a folder) reads as modified, not deleted.
    """
    found: dict[str, LeafChange] = {}

    def put(lc: LeafChange) -> None:
        have = found.get(lc.path)
        if have is None or (have.via_attribution and not lc.via_attribution):
            found[lc.path] = lc
        elif have.via_attribution == lc.via_attribution and _RANK[lc.change] > _RANK[have.change]:
            found[lc.path] = lc

    deleted_leaves: set[str] = set()
    existed: set[str] = set()  # leaves present at the base side (in any form)
    added_attributions: set[str] = set()  # leaves whose attribution.txt this change adds
    for e in entries:
        old_leaf = leaf_of(e.old_path, folders) if e.old_path else None
        new_leaf = leaf_of(e.new_path, folders) if e.new_path else None
        s = e.status
        if old_leaf and s != "R":
            existed.add(old_leaf)
        if s == "D" and old_leaf:
            if exists_at_head(old_leaf):
                put(LeafChange(old_leaf, "modified"))
            else:
                deleted_leaves.add(old_leaf)
        elif s == "R" and (old_leaf or new_leaf):
            if new_leaf and old_leaf and new_leaf != old_leaf:
                put(LeafChange(new_leaf, "renamed", old_path=old_leaf))
                if exists_at_head(old_leaf):  # something new took the old place
                    put(LeafChange(old_leaf, "modified"))
            elif new_leaf:
                put(LeafChange(new_leaf, "modified" if old_leaf == new_leaf else "added"))
            else:
                if exists_at_head(old_leaf):
                    put(LeafChange(old_leaf, "modified"))
                else:
                    deleted_leaves.add(old_leaf)
        elif new_leaf:  # A, C, M, T
            put(LeafChange(new_leaf, "modified" if s in "MT" else "added"))

        # A changed attribution.txt re-checks its leaf (old and new side of a move).
        for side, p in (("old", e.old_path), ("new", e.new_path)):
            leaf = attribution_leaf(p) if p else None
            if not leaf:
                continue
            present = exists_at_head(leaf)
            if side == "new" or present:
                put(LeafChange(leaf, "modified", via_attribution=True))
                if side == "new" and s in "ACR":
                    added_attributions.add(leaf)

    leaf_dirs = {posixpath.dirname(p) for p, lc in found.items() if not lc.via_attribution}
    for leaf, lc in list(found.items()):
        if lc.change == "added" and leaf in existed:  # e.g. a file that became a folder
            found[leaf] = LeafChange(leaf, "modified", lc.old_path, lc.via_attribution)
        elif lc.via_attribution and not exists_at_head(leaf):
            if posixpath.dirname(leaf) in leaf_dirs:
                # The attribution.txt belongs to the (misnamed) leaf reported beside it.
                del found[leaf]
            elif leaf in added_attributions:  # a new attribution.txt with no leaf: not "modified"
                found[leaf] = LeafChange(leaf, "added", via_attribution=True)
    for leaf in deleted_leaves:
        if leaf not in found or found[leaf].via_attribution:
            found[leaf] = LeafChange(leaf, "deleted")
    # An attribution change next to a leaf that is not there (a stray attribution.txt
    # added alone) stays listed: the checker reports the missing qna.yaml.
    return sorted(found.values(), key=lambda c: c.path)
