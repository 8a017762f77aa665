"""Differential test on the real taxonomy history: for real pull requests, the leaves
``collect_leaves(mirror, base="main", head="pr/N")`` finds equal what plain
``git diff --name-status -M pr/N^ pr/N`` says the pull request changed (each ``pr/N`` sits
on a commit of ``main``, so merge-base(main, pr/N) is ``pr/N^``)."""

from __future__ import annotations

import subprocess

import pytest

from lab_ci.taxonomy.collect import collect_leaves

#: Renames (1306, 259, 275, 329, 561), a mass deletion (1215), attribution-only (1009,
#: 1015, 1019), many modifications (11), misnamed leaves (44: openshiftqna.yaml, 1254:
#: movie_qna.yaml; 1291 and 1387 change docs/template_qna.yaml, outside the taxonomy
#: folders), and ordinary additions.
PRS = [
    44,
    1254,
    1291,
    1387,
    1,
    11,
    100,
    102,
    259,
    275,
    329,
    561,
    1000,
    1009,
    1015,
    1019,
    1095,
    1215,
    1306,
    20,
    50,
    200,
    300,
    400,
    500,
    600,
    700,
    800,
    900,
    1100,
    1200,
]


def git(mirror, *args: str) -> str:
    return subprocess.run(["git", "-C", str(mirror), *args], check=True, capture_output=True, text=True).stdout


def exists(mirror, rev: str, path: str) -> bool:
    return (
        subprocess.run(["git", "-C", str(mirror), "cat-file", "-e", f"{rev}:{path}"], capture_output=True).returncode
        == 0
    )


def is_leaf(path: str) -> bool:
    """A qna.yaml, or a YAML file in a taxonomy folder (a misnamed leaf)."""
    if path.endswith("/qna.yaml") or path == "qna.yaml":
        return True
    return path.split("/")[0] in ("compositional_skills", "knowledge") and path.lower().endswith((".yaml", ".yml"))


def expected_changes(mirror, pr: str) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    attr: dict[str, str] = {}  # sibling qna.yaml -> the attribution's status
    for line in git(mirror, "diff", "--name-status", "-M", f"{pr}^", pr).splitlines():
        status, *paths = line.split("\t")
        old, new = (paths[0], paths[-1])
        if is_leaf(new):
            kind = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed"}[status[0]]
            out[new] = (kind, old if kind == "renamed" else None)
        for side, p in (("old", old), ("new", new)):
            if p.endswith("/attribution.txt"):
                sibling = p[: -len("attribution.txt")] + "qna.yaml"
                if (side == "new" and status[0] != "D") or exists(mirror, pr, sibling):
                    attr.setdefault(sibling, status[0] if side == "new" else "M")
    leaf_dirs = {p.rsplit("/", 1)[0] for p in out}
    for sibling, status in attr.items():
        if sibling in out or exists(mirror, pr, sibling):
            out.setdefault(sibling, ("modified", None))
        elif sibling.rsplit("/", 1)[0] not in leaf_dirs:  # else it credits the misnamed leaf there
            out[sibling] = ("added" if status in "ACR" else "modified", None)
    return out


def test_changed_leaves_match_plain_git_on_real_pull_requests(corpus_mirror):
    checked = 0
    for n in PRS:
        pr = f"pr/{n}"
        if subprocess.run(
            ["git", "-C", str(corpus_mirror), "rev-parse", "--verify", "--quiet", pr], capture_output=True
        ).returncode:
            continue
        want = expected_changes(corpus_mirror, pr)
        leaves = collect_leaves(corpus_mirror, base="main", head=pr)
        got = {x.path: (x.change, x.old_path) for x in leaves}
        assert got == want, pr
        # Same answer with the pull request's parent as base (no merge-base work to do).
        assert [x.path for x in collect_leaves(corpus_mirror, base=f"{pr}^", head=pr)] == sorted(want), pr
        for x in leaves:
            if x.change == "deleted":
                assert x.data is None and not exists(corpus_mirror, pr, x.path)
            elif exists(corpus_mirror, pr, x.path):
                assert (
                    x.data
                    == subprocess.run(
                        ["git", "-C", str(corpus_mirror), "cat-file", "blob", f"{pr}:{x.path}"],
                        check=True,
                        capture_output=True,
                    ).stdout
                )
            else:  # an attribution.txt added without its qna.yaml
                assert x.kind == "missing" and x.attribution is not None
        if n in (44, 1254):  # the misnamed leaf is seen, with its content
            (x,) = leaves
            assert x.path.endswith(("openshiftqna.yaml", "movie_qna.yaml")) and x.change == "added" and x.data
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("rev", ["main", "pr/1306", "pr/1254"])
def test_whole_tree_matches_ls_tree(corpus_mirror, rev):
    names = [p for p in git(corpus_mirror, "ls-tree", "-r", "--name-only", rev).splitlines() if is_leaf(p)]
    leaves = collect_leaves(corpus_mirror, head=rev)
    assert [x.path for x in leaves] == sorted(names)
    assert all(x.kind == "file" and x.data for x in leaves)
