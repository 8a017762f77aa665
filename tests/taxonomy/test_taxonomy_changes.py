"""Pure logic: parsing git's raw diff and mapping changed files to changed leaves."""

from __future__ import annotations

from lab_ci.taxonomy.changes import attribution_leaf, changed_leaves, leaf_of
from lab_ci.taxonomy.gitrepo import DiffEntry, mode_kind, parse_ls_tree, parse_raw_diff

A = "a" * 40
B = "b" * 40
Z = "0" * 40


def raw(*records: tuple[str, ...]) -> bytes:
    out = b""
    for meta, *paths in records:
        out += meta.encode() + b"\0" + b"".join(p.encode() + b"\0" for p in paths)
    return out


def test_parse_raw_diff_statuses_renames_and_prefix():
    out = raw(
        (f":000000 100644 {Z} {A} A", "tax/knowledge/x/qna.yaml"),
        (f":100644 100644 {A} {B} R091", "tax/knowledge/old/qna.yaml", "tax/knowledge/new/qna.yaml"),
        (f":100644 000000 {A} {Z} D", "tax/knowledge/gone/qna.yaml"),
        (f":100644 100644 {A} {B} R100", "elsewhere/qna.yaml", "tax/knowledge/in/qna.yaml"),
        (f":100644 100644 {A} {B} R100", "tax/knowledge/out/qna.yaml", "elsewhere/out.yaml"),
        (f":100644 120000 {A} {B} T", "tax/knowledge/link/qna.yaml"),
        (f":100644 100644 {A} {B} M", "outside/qna.yaml"),
    )
    entries = parse_raw_diff(out, "tax/")
    assert [(e.status, e.old_path, e.new_path) for e in entries] == [
        ("A", None, "knowledge/x/qna.yaml"),
        ("R", "knowledge/old/qna.yaml", "knowledge/new/qna.yaml"),
        ("D", "knowledge/gone/qna.yaml", None),
        ("A", None, "knowledge/in/qna.yaml"),  # renamed in from outside the taxonomy
        ("D", "knowledge/out/qna.yaml", None),  # renamed out of it
        ("T", "knowledge/link/qna.yaml", "knowledge/link/qna.yaml"),
    ]
    assert mode_kind(entries[5].new_mode) == "symlink"
    assert parse_raw_diff(b"", "") == []


def test_parse_ls_tree_modes_and_odd_names():
    out = (
        f"100644 blob {A}\tk/qna.yaml\0".encode()
        + f"040000 tree {B}\tk/dir/qna.yaml\0".encode()
        + f"160000 commit {B}\tk/sm/qna.yaml\0".encode()
        + f"120000 blob {A}\tk/ln/qna.yaml\0".encode()
        + f"100755 blob {A}\tk/tab\there/qna.yaml\0".encode()
        + f"100644 blob {A}\t".encode()
        + b"k/\xff/qna.yaml\0"
    )
    entries = parse_ls_tree(out)
    assert [e.kind for e in entries] == ["file", "directory", "submodule", "symlink", "file", "file"]
    assert entries[4].path == "k/tab\there/qna.yaml"
    assert entries[5].path.encode("utf-8", "surrogateescape") == b"k/\xff/qna.yaml"


def test_leaf_names():
    assert leaf_of("knowledge/a/qna.yaml") == "knowledge/a/qna.yaml"
    assert leaf_of("knowledge/a/qna.yaml/inner/x") == "knowledge/a/qna.yaml"
    # Misnamed leaves inside a taxonomy folder are leaves (the checker names them) ...
    for name in ("qna.yml", "QNA.yaml", "movie_qna.yaml", "Qna.YML", "qna.yaml ", "notes.yaml"):
        assert leaf_of(f"knowledge/a/{name}") == f"knowledge/a/{name}", name
    assert leaf_of("compositional_skills/a/b/qna.yml") == "compositional_skills/a/b/qna.yml"
    # ... but not elsewhere (upstream keeps docs/template_qna.yaml), nor other files.
    assert leaf_of("docs/template_qna.yaml") is None
    assert leaf_of("qna.yml") is None
    assert leaf_of("knowledge/a/attribution.txt") is None and leaf_of("knowledge/a/notes.md") is None
    assert leaf_of("knowledge/a/qna.yaml~") is None and leaf_of("knowledge/a/qna.yaml.bak") is None
    assert leaf_of("knowledge/a/qna.yml", folders=("skills",)) is None
    assert attribution_leaf("knowledge/a/attribution.txt") == "knowledge/a/qna.yaml"
    assert attribution_leaf("attribution.txt") is None  # the root's belongs to no leaf
    assert attribution_leaf("knowledge/a/attribution.md") is None


def d(status, old=None, new=None):
    return DiffEntry(status, old, new)


def changes(entries, present=()):
    return [(c.path, c.change, c.old_path) for c in changed_leaves(entries, set(present).__contains__)]


def test_changed_leaves_rules():
    assert changes([d("A", new="k/a/qna.yaml")], {"k/a/qna.yaml"}) == [("k/a/qna.yaml", "added", None)]
    assert changes([d("M", "k/a/qna.yaml", "k/a/qna.yaml")], {"k/a/qna.yaml"}) == [("k/a/qna.yaml", "modified", None)]
    assert changes([d("D", old="k/a/qna.yaml")]) == [("k/a/qna.yaml", "deleted", None)]
    assert changes([d("R", "k/a/qna.yaml", "k/b/qna.yaml")], {"k/b/qna.yaml"}) == [
        ("k/b/qna.yaml", "renamed", "k/a/qna.yaml")
    ]
    # Renamed to a name that is no leaf: the leaf is gone.
    assert changes([d("R", "k/a/qna.yaml", "k/a/qna.yml")]) == [("k/a/qna.yaml", "deleted", None)]
    # Renamed from a non-leaf name to qna.yaml: a new leaf.
    assert changes([d("R", "k/a/notes.yaml", "k/a/qna.yaml")], {"k/a/qna.yaml"}) == [("k/a/qna.yaml", "added", None)]
    # Non-leaf files are ignored.
    assert changes([d("M", "README.md", "README.md"), d("A", new="k/a/notes.yaml")]) == []


def test_attribution_changes_recheck_the_leaf():
    present = {"k/a/qna.yaml", "k/a/attribution.txt"}
    assert changes([d("M", "k/a/attribution.txt", "k/a/attribution.txt")], present) == [
        ("k/a/qna.yaml", "modified", None)
    ]
    # Removed attribution next to a leaf that stays: re-check (it may now be missing one).
    assert changes([d("D", old="k/a/attribution.txt")], {"k/a/qna.yaml"}) == [("k/a/qna.yaml", "modified", None)]
    # Leaf and attribution both deleted: one deleted leaf.
    assert changes([d("D", old="k/a/attribution.txt"), d("D", old="k/a/qna.yaml")]) == [
        ("k/a/qna.yaml", "deleted", None)
    ]
    # A qna.yaml change wins over the attribution's label.
    both = [d("A", new="k/a/attribution.txt"), d("A", new="k/a/qna.yaml")]
    assert changes(both, present) == [("k/a/qna.yaml", "added", None)]
    # An attribution.txt added alone: its (missing) leaf is reported as added, so the
    # checker says the qna.yaml is missing.
    assert changes([d("A", new="k/z/attribution.txt")]) == [("k/z/qna.yaml", "added", None)]
    # Modified beside a qna.yaml that is gone: modified.
    assert changes([d("M", "k/z/attribution.txt", "k/z/attribution.txt")]) == [("k/z/qna.yaml", "modified", None)]


def test_misnamed_leaves_are_changed_leaves():
    # A misnamed leaf with its attribution.txt: one added leaf, the misnamed one (not a
    # phantom "qna.yaml (modified)").
    both = [d("A", new="knowledge/m/qna.yml"), d("A", new="knowledge/m/attribution.txt")]
    assert changes(both, {"knowledge/m/qna.yml", "knowledge/m/attribution.txt"}) == [
        ("knowledge/m/qna.yml", "added", None)
    ]
    assert changes([d("A", new="knowledge/Movies/movie_qna.yaml")]) == [
        ("knowledge/Movies/movie_qna.yaml", "added", None)
    ]
    # Fixing the name is a rename of the leaf.
    assert changes([d("R", "knowledge/m/qna.yml", "knowledge/m/qna.yaml")], {"knowledge/m/qna.yaml"}) == [
        ("knowledge/m/qna.yaml", "renamed", "knowledge/m/qna.yml")
    ]
    # Renaming a leaf to a wrong name: the misnamed file is what is left to check.
    assert changes([d("R", "knowledge/m/qna.yaml", "knowledge/m/qna.yml")], {"knowledge/m/qna.yml"}) == [
        ("knowledge/m/qna.yml", "renamed", "knowledge/m/qna.yaml")
    ]
    # Outside the taxonomy folders nothing changes: docs/template_qna.yaml is no leaf.
    assert changes([d("M", "docs/template_qna.yaml", "docs/template_qna.yaml")]) == []


def test_qna_yaml_turned_into_a_folder_is_modified_not_deleted():
    entries = [d("D", old="k/a/qna.yaml"), d("A", new="k/a/qna.yaml/inner.yaml")]
    assert changes(entries, {"k/a/qna.yaml", "k/a/qna.yaml/inner.yaml"}) == [("k/a/qna.yaml", "modified", None)]
