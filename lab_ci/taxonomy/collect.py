"""Gather the leaves to check: a whole tree, some paths, or what a change touched.

Three sources, one result (a sorted list of :class:`~lab_ci.taxonomy.leaf.LeafFile`):

* files on disk (no revision named; no git needed at all),
* the tree of one revision (``head`` alone; works on bare clones),
* the leaves changed between ``git merge-base base head`` and ``head``, as a pull
  request shows them (``base``; ``head`` defaults to the working tree, uncommitted and
  untracked files included).

``paths`` narrows any of them to some files or folders.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from ..errors import LabCIError
from .changes import LeafChange, attribution_leaf, changed_leaves
from .gitrepo import GitTaxonomy, TreeEntry
from .leaf import ATTRIBUTION, QNA, TAXONOMY_FOLDERS, LeafFile, misnamed_leaf
from .limits import DEFAULT_MAX_FILE_BYTES
from .worktree import read_leaf, to_taxonomy_path, walk_leaves


def collect_leaves(
    taxonomy: Path | str,
    *,
    paths: list[str] | None = None,
    base: str | None = None,
    head: str | None = None,
    cwd: Path | None = None,
    max_bytes: int | None = None,
    folders: tuple[str, ...] = TAXONOMY_FOLDERS,
) -> list[LeafFile]:
    """The leaves to check (see the module docstring). ``paths`` are relative to ``cwd``
    (default: the current folder) or to the taxonomy. Raises :class:`LabCIError` for a
    missing taxonomy or path, a bad revision, a bare repository with no revision, or
    ``base``/``head`` outside a git repository.

    ``max_bytes`` (default: the reader's ``DEFAULT_MAX_FILE_BYTES``) bounds memory: a larger
    ``qna.yaml`` or ``attribution.txt`` is read only up to ``max_bytes + 1`` bytes (sizes
    are asked of git first), so the checker reports it as too large without anyone
    loading it whole.

    ``folders`` are the taxonomy's top-level folders: a misnamed leaf file inside one
    (``qna.yml``, ``movie_qna.yaml``) is collected too, so the checker can name it."""
    if max_bytes is None:
        max_bytes = DEFAULT_MAX_FILE_BYTES
    root = Path(taxonomy)
    if base is None and head is None:
        if _is_bare_repository(root):
            raise LabCIError(
                f"{str(root)!r} is a bare repository (no files to check on disk); "
                "pass --head REV (a whole tree) or --base REV --head REV (a change)"
            )
        return _from_disk(root, paths, cwd, max_bytes, folders)
    with GitTaxonomy.open(root) as gt:
        filters = _filters(gt, root, paths, cwd)
        if base is None:
            return _from_tree(gt, gt.resolve(head), filters, head, max_bytes, folders)
        return _from_change(gt, base, head, filters, max_bytes, folders)


def _is_bare_repository(root: Path) -> bool:
    """True when ``root`` is itself a bare git repository (``HEAD``, ``objects`` and
    ``refs`` at its top, and git agrees). Checked without git for the common case."""
    if not ((root / "HEAD").is_file() and (root / "objects").is_dir() and (root / "refs").is_dir()):
        return False
    try:
        with GitTaxonomy.open(root) as gt:
            return gt.bare
    except LabCIError:
        return False


# -- paths ------------------------------------------------------------------------------
def _as_leaf_filter(rel: str) -> str:
    """An ``attribution.txt`` path stands for its leaf's ``qna.yaml``."""
    return attribution_leaf(rel) or rel


def _filters(gt: GitTaxonomy | None, root: Path, paths, cwd) -> list[str] | None:
    if paths is None:
        return None
    out = []
    for arg in paths:
        if gt is not None and gt.bare:
            out.append(_bare_path(arg))
        else:
            out.append(to_taxonomy_path(root, arg, cwd))
    return out


def _bare_path(arg: str) -> str:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        raise LabCIError(f"path {arg!r} is not valid UTF-8") from None
    norm = posixpath.normpath(arg.replace("\\", "/")) if arg else "."
    if norm.startswith("/") or norm == ".." or norm.startswith("../"):
        raise LabCIError(f"path {arg!r} is outside the taxonomy")
    return "" if norm == "." else norm


def _selected(path: str, filters: list[str] | None, also: str | None = None) -> bool:
    if filters is None:
        return True
    for f in filters:
        f = _as_leaf_filter(f)
        for p in (path, also):
            if p is not None and (f == "" or p == f or p.startswith(f + "/")):
                return True
    return False


# -- files on disk --------------------------------------------------------------------------
def _from_disk(root: Path, paths, cwd, max_bytes: int | None = None, folders=TAXONOMY_FOLDERS) -> list[LeafFile]:
    if not root.exists():
        raise LabCIError(f"taxonomy folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise LabCIError(f"taxonomy {str(root)!r} is not a folder")
    if paths is None:
        return [read_leaf(root, p, max_bytes=max_bytes) for p in walk_leaves(root, folders=folders)]
    leaves: set[str] = set()
    for arg in paths:
        rel = to_taxonomy_path(root, arg, cwd)
        full = root / rel if rel else root
        name = rel.rsplit("/", 1)[-1]
        if name == ATTRIBUTION:
            if not full.exists():
                raise LabCIError(f"no such file: {arg!r}")
            leaves.add(_as_leaf_filter(rel))
        elif rel == "" or (full.is_dir() and not full.is_symlink() and name != QNA):
            leaves.update(walk_leaves(root, rel, folders))
        elif full.exists() or full.is_symlink():
            leaves.add(rel)
        else:
            raise LabCIError(f"no such file or folder: {arg!r}")
    return [read_leaf(root, p, max_bytes=max_bytes) for p in sorted(leaves)]


# -- one revision's tree --------------------------------------------------------------------
def _read_from_tree(
    gt: GitTaxonomy, index: dict[str, TreeEntry], wanted: list[LeafChange], max_bytes: int | None = None
) -> list[LeafFile]:
    shas = []
    sizes: dict[str, int | None] = {}
    for w in wanted:
        for p in (w.path, posixpath.join(posixpath.dirname(w.path), ATTRIBUTION)):
            e = index.get(p)
            if e is not None and e.kind == "file":
                shas.append(e.sha)
                sizes[e.sha] = e.size
    blobs = gt.read_blobs(shas, sizes=sizes, max_bytes=max_bytes)
    out = []
    for w in wanted:
        if w.change == "deleted":
            out.append(LeafFile(path=w.path, data=None, kind="missing", change="deleted", old_path=w.old_path))
            continue
        e = index.get(w.path)
        a = index.get(posixpath.join(posixpath.dirname(w.path), ATTRIBUTION))
        kind = e.kind if e else "missing"
        out.append(
            LeafFile(
                path=w.path,
                data=blobs[e.sha] if kind == "file" else None,
                kind=kind,
                blob_id=e.sha if kind == "file" else None,
                change=w.change,  # type: ignore[arg-type]
                old_path=w.old_path,
                attribution=blobs[a.sha] if a is not None and a.kind == "file" else None,
                attribution_kind=a.kind if a is not None else "missing",
            )
        )
    return out


def _from_tree(
    gt: GitTaxonomy, commit: str, filters, rev: str, max_bytes: int | None = None, folders=TAXONOMY_FOLDERS
) -> list[LeafFile]:
    entries = gt.ls_tree(commit)
    index = {e.path: e for e in entries}

    def is_leaf(p: str) -> bool:
        if p.rsplit("/", 1)[-1] == QNA:
            return _not_inside_leaf(p)
        return index[p].kind != "directory" and misnamed_leaf(p, folders) and _not_inside_leaf(p)

    if filters is None:
        wanted = sorted(p for p in index if is_leaf(p))
    else:
        chosen: set[str] = set()
        for f in filters:
            e = index.get(f)
            name = f.rsplit("/", 1)[-1]
            if f == "" or (e is not None and e.kind == "directory" and name != QNA):
                chosen.update(p for p in index if (f == "" or p.startswith(f + "/")) and is_leaf(p))
            elif e is None:
                raise LabCIError(f"no such file or folder at revision {rev!r}: {f!r}")
            else:
                chosen.add(_as_leaf_filter(f))
        wanted = sorted(chosen)
    return _read_from_tree(gt, index, [LeafChange(p, "checked") for p in wanted], max_bytes)


def _not_inside_leaf(path: str) -> bool:
    """False for a ``qna.yaml`` inside a folder named ``qna.yaml`` (that folder is the
    leaf) or inside a hidden folder (``.github``...), as on disk."""
    folders = path.split("/")[:-1]
    return QNA not in folders and not any(f.startswith(".") for f in folders)


# -- what a change touched --------------------------------------------------------------------
def _from_change(
    gt: GitTaxonomy, base: str, head: str | None, filters, max_bytes: int | None = None, folders=TAXONOMY_FOLDERS
) -> list[LeafFile]:
    base_c = gt.resolve(base)
    if head is None and not gt.bare:
        head_c = gt.resolve("HEAD")
        mb = gt.merge_base(base_c, head_c)
        root = gt.root
        with gt.worktree_snapshot() as (tree, env):
            entries = gt.diff_trees_env(mb, tree, env)
        exists = lambda p: (root / p).exists() or (root / p).is_symlink()  # noqa: E731
        changes = [c for c in changed_leaves(entries, exists, folders) if _selected(c.path, filters, c.old_path)]
        return [read_leaf(root, c.path, change=c.change, old_path=c.old_path, max_bytes=max_bytes) for c in changes]
    head_c = gt.resolve(head or "HEAD")
    mb = gt.merge_base(base_c, head_c)
    entries = gt.diff_trees(mb, head_c)
    index = {e.path: e for e in gt.ls_tree(head_c)}
    changes = [
        c for c in changed_leaves(entries, index.__contains__, folders) if _selected(c.path, filters, c.old_path)
    ]
    return _read_from_tree(gt, index, changes, max_bytes)
