"""The corpus's contributed qna.yaml files (shared by the differential test and the
benchmark): every qna.yaml that a ``pr/N`` branch adds or changes, read straight
from git objects, plus a helper laying them out as real files for the reference."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CorpusFile:
    pr: str  # "1234"
    path: str  # path in the taxonomy, e.g. "knowledge/x/qna.yaml"
    blob_id: str
    data: bytes
    attribution: bytes | None  # the PR's attribution.txt beside it, if any


def _git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], input=input, capture_output=True, check=True).stdout


def _cat_batch(repo: Path, names: list[str]) -> list[bytes | None]:
    """Contents of many objects (``rev:path`` names) in one ``git cat-file --batch``."""
    out = _git(repo, "cat-file", "--batch", input="".join(n + "\n" for n in names).encode())
    res: list[bytes | None] = []
    pos = 0
    for _ in names:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].split()
        if header[-1] == b"missing" or len(header) < 3:
            res.append(None)
            pos = nl + 1
            continue
        size = int(header[2])
        res.append(out[nl + 1 : nl + 1 + size] if header[1] == b"blob" else None)
        pos = nl + 1 + size + 1
    return res


def corpus_files(repo: Path) -> list[CorpusFile]:
    """Every qna.yaml added (A), modified (M) or renamed/copied into place (R, C) by a
    ``pr/N`` branch, as ``git diff --name-status pr/N^ pr/N`` lists them."""
    refs = _git(repo, "for-each-ref", "--format=%(objectname) %(refname:short)", "refs/heads/pr").decode().split("\n")
    prs: dict[str, str] = {}
    for line in refs:
        if line:
            sha, ref = line.split()
            prs.setdefault(sha, ref.split("/", 1)[1])
    raw = _git(repo, "diff-tree", "--stdin", "-r", "-M", input="".join(s + "\n" for s in prs).encode()).decode(
        "utf-8", "surrogateescape"
    )
    items: list[tuple[str, str, str]] = []
    pr = None
    for line in raw.splitlines():
        if not line.startswith(":"):
            pr = prs.get(line.strip())
            continue
        meta, *paths = line.split("\t")
        fields = meta[1:].split()
        new_mode, new_sha, status = fields[1], fields[3], fields[4][0]
        path = paths[-1]
        if status in "AMRC" and path.rsplit("/", 1)[-1] == "qna.yaml" and new_mode == "100644" and pr:
            items.append((pr, path, new_sha))
    items.sort(key=lambda t: (int(t[0]) if t[0].isdigit() else 0, t[1]))
    blobs = _cat_batch(repo, [sha for _, _, sha in items])
    attrs = _cat_batch(
        repo,
        [
            f"pr/{pr}:{path.rsplit('/', 1)[0]}/attribution.txt" if "/" in path else f"pr/{pr}:attribution.txt"
            for pr, path, _ in items
        ],
    )
    return [CorpusFile(pr, path, sha, data or b"", attr) for (pr, path, sha), data, attr in zip(items, blobs, attrs)]


def lay_out(files: list[CorpusFile], root: Path) -> list[Path]:
    """Write each file at ``root/<pr>/<path>`` (PRs touch the same paths)."""
    out = []
    for f in files:
        p = root / f.pr / f.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f.data)
        out.append(p)
    return out
