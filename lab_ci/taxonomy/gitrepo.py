"""Git object access for taxonomies, with no checkout.

A taxonomy is a folder inside a git repository: the repository root itself (the usual
taxonomy repository), a subfolder of it (``taxonomy/`` in the lab-ci repository), or a
bare clone (a mirror on the bot's disk). :class:`GitTaxonomy` finds the repository
(``git rev-parse``), remembers the taxonomy's ``prefix`` inside it, and offers the few
plumbing operations the rest of lab-ci needs: resolve a revision, list a tree, read
blobs (one ``git cat-file --batch`` per call, its output bounded by the blobs' sizes),
diff two trees, and snapshot the working tree (tracked, modified and untracked files)
as a tree without touching the user's index or object store. Every git process runs
through :mod:`.gitrun` (the ``local`` profile by default).

Every path this module hands out is relative to the taxonomy root (posix, no prefix).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabCIError
from .gitrun import GIT_MISSING, LOCAL_RUNNER, NOT_A_REPOSITORY, GitError, GitRunner
from .leaf import TAXONOMY_FOLDERS, Kind

#: git tree entry modes and what they are.
MODE_KINDS: dict[str, Kind] = {
    "100644": "file",
    "100755": "file",
    "100664": "file",
    "120000": "symlink",
    "040000": "directory",
    "160000": "submodule",
}

NULL_SHA = "0" * 40


def mode_kind(mode: str) -> Kind:
    """The :data:`~lab_ci.taxonomy.leaf.Kind` of a git tree entry mode."""
    if mode in ("000000", ""):
        return "missing"
    return MODE_KINDS.get(mode.rjust(6, "0"), "file")


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str  # relative to the taxonomy root
    mode: str
    sha: str
    size: int | None = None  # blob size in bytes (``ls-tree -l``); None for trees/links

    @property
    def kind(self) -> Kind:
        return mode_kind(self.mode)


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One line of ``git diff-tree --raw``: status is A, M, D, R, C or T."""

    status: str
    old_path: str | None
    new_path: str | None
    old_mode: str = "000000"
    new_mode: str = "000000"
    old_sha: str = NULL_SHA
    new_sha: str = NULL_SHA


def _decode(raw: bytes) -> str:
    # Paths are bytes in git; keep undecodable bytes round-trippable.
    return raw.decode("utf-8", "surrogateescape")


def parse_ls_tree(out: bytes, prefix: str = "") -> list[TreeEntry]:
    """Parse ``git ls-tree -z`` output, with or without ``-l`` (the size column); strip
    ``prefix`` (``"dir/"`` or ``""``) from paths."""
    entries = []
    for rec in out.split(b"\0"):
        if not rec:
            continue
        meta, _, raw_path = rec.partition(b"\t")
        fields = meta.decode("ascii").split()
        mode, _type, sha = fields[:3]
        size = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else None
        path = _decode(raw_path)
        if prefix:
            if not path.startswith(prefix):
                continue
            path = path[len(prefix) :]
        entries.append(TreeEntry(path=path, mode=mode, sha=sha, size=size))
    return entries


def parse_raw_diff(out: bytes, prefix: str = "") -> list[DiffEntry]:
    """Parse ``git diff-tree -r -z --raw`` output; strip ``prefix``; paths outside it
    become ``None`` (a rename into the taxonomy from outside reads as an addition)."""

    def strip(p: str) -> str | None:
        if not prefix:
            return p
        return p[len(prefix) :] if p.startswith(prefix) else None

    fields = out.split(b"\0")
    entries: list[DiffEntry] = []
    i = 0
    while i < len(fields):
        head = fields[i]
        i += 1
        if not head:
            continue
        if not head.startswith(b":"):
            continue  # diff-tree prints the commit id first when given one commit
        old_mode, new_mode, old_sha, new_sha, status = head[1:].decode("ascii").split()
        letter = status[0]
        if letter in "RC":
            a, b = _decode(fields[i]), _decode(fields[i + 1])
            i += 2
        else:
            a = b = _decode(fields[i])
            i += 1
        old_path, new_path = strip(a), strip(b)
        if letter == "A":
            old_path = None
        elif letter == "D":
            new_path = None
        if letter in "RC":
            if new_path is None and old_path is None:
                continue
            if new_path is None:  # renamed out of the taxonomy: gone from it
                letter, new_mode, new_sha = "D", "000000", NULL_SHA
            elif old_path is None:  # renamed in from outside: new to it
                letter, old_mode, old_sha = "A", "000000", NULL_SHA
        elif old_path is None and new_path is None:
            continue
        entries.append(DiffEntry(letter, old_path, new_path, old_mode, new_mode, old_sha, new_sha))
    return entries


class GitTaxonomy:
    """A taxonomy folder inside a git repository (working tree or bare)."""

    def __init__(
        self, git_dir: Path, prefix: str, root: Path | None, *, top: Path | None = None, runner: GitRunner | None = None
    ):
        self.git_dir = git_dir  # the repository's git folder (absolute)
        self.top = top  # the working tree's top folder; None for a bare repository
        self.prefix = prefix  # "" or "sub/dir/" (repository-relative, posix)
        self.root = root  # the taxonomy folder on disk; None for a bare repository
        self.runner = runner or LOCAL_RUNNER

    # -- opening -------------------------------------------------------------------
    @classmethod
    def open(cls, taxonomy: Path | str, *, runner: GitRunner | None = None) -> GitTaxonomy:
        """Open the repository holding ``taxonomy`` (a folder, or a bare repository)."""
        runner = runner or LOCAL_RUNNER
        path = Path(taxonomy)
        if not path.exists():
            raise LabCIError(f"taxonomy folder {str(path)!r} does not exist")
        if not path.is_dir():
            raise LabCIError(f"taxonomy {str(path)!r} is not a folder")
        args = ["rev-parse", "--is-bare-repository", "--is-inside-git-dir", "--absolute-git-dir"]
        try:
            bare, inside_git_dir, git_dir = runner.text(args, cwd=path).splitlines()
            if bare == "true":
                return cls(Path(git_dir), "", None, runner=runner)
            if inside_git_dir == "true":
                raise LabCIError(f"{str(path)!r} is not inside the working tree of {git_dir!r}")
            top = Path(runner.text(["rev-parse", "--show-toplevel"], cwd=path)).resolve()
        except GitError as e:
            if e.category == NOT_A_REPOSITORY:
                raise LabCIError(f"{str(path)!r} is not inside a git repository") from None
            if e.category == GIT_MISSING:
                raise LabCIError("git is not installed (lab-ci needs the git command)") from None
            raise LabCIError(f"cannot open the git repository at {str(path)!r}: {e.detail or e.category}") from None
        here = path.resolve()
        try:
            rel = here.relative_to(top)
        except ValueError:
            raise LabCIError(f"{str(path)!r} is not inside the working tree of {str(top)!r}") from None
        prefix = "" if str(rel) == "." else rel.as_posix() + "/"
        return cls(Path(git_dir), prefix, here, top=top, runner=runner)

    def close(self) -> None:
        """Nothing to release: no git process outlives the call that started it."""

    def __enter__(self) -> GitTaxonomy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def bare(self) -> bool:
        return self.root is None

    # -- plumbing --------------------------------------------------------------------
    def _git(self, *args: str, env: dict | None = None, input: bytes | None = None, **kw) -> bytes:
        """Run git on this repository (in the working tree when there is one, so
        pathspecs and ``add`` work); a failure is a :class:`LabCIError` with git's words."""
        where = {"cwd": self.top} if self.top is not None else {"git_dir": self.git_dir}
        try:
            return self.runner.run(list(args), env=env, input=input, **where, **kw).stdout
        except GitError as e:
            raise LabCIError(str(e)) from None

    def resolve(self, rev: str) -> str:
        """The commit id ``rev`` names; a clear error when it names none."""
        if not rev or rev.startswith("-") or "\0" in rev:
            raise LabCIError(f"invalid revision {rev!r}")
        args = ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"]
        result = self.runner.run(args, git_dir=self.git_dir, check=False)
        if result.returncode != 0:
            hint = ""
            if (self.common_dir / "shallow").exists():
                hint = "; this is a shallow clone: fetch the full history (actions/checkout fetch-depth: 0)"
            raise LabCIError(f"unknown revision {rev!r} (not a commit in {self.describe()}{hint})")
        return result.text.strip()

    @property
    def common_dir(self) -> Path:
        """The folder holding objects and refs (differs from ``git_dir`` in a linked worktree)."""
        link = self.git_dir / "commondir"
        if link.is_file():
            return (self.git_dir / link.read_text().strip()).resolve()
        return self.git_dir

    def merge_base(self, a: str, b: str) -> str:
        """``git merge-base a b`` (the best common ancestor), as a pull request diffs."""
        result = self.runner.run(["merge-base", a, b], git_dir=self.git_dir, check=False)
        if result.returncode != 0 or not result.text.strip():
            raise LabCIError(
                f"revisions {a[:12]} and {b[:12]} have no common ancestor (is the clone shallow? "
                "fetch with fetch-depth: 0)"
            )
        return result.text.strip().splitlines()[0]

    def describe(self) -> str:
        where = self.git_dir if self.bare else self.top
        return str(where) + (f" (taxonomy at {self.prefix.rstrip('/')})" if self.prefix else "")

    def ls_tree(self, rev: str, subpath: str = "") -> list[TreeEntry]:
        """Every entry (files, and folders too) under the taxonomy at ``rev``, with blob
        sizes (so callers can refuse to read huge blobs)."""
        target = self.prefix + subpath
        args = ["ls-tree", "-r", "-t", "-l", "-z", "--full-tree", rev]
        if target:
            args += ["--", target.rstrip("/")]
        return parse_ls_tree(self._git(*args), self.prefix)

    def diff_trees(self, old: str, new: str) -> list[DiffEntry]:
        """Changes under the taxonomy between two tree-ish ids, renames detected."""
        return self.diff_trees_env(old, new, None)

    def read_blobs(
        self, shas, *, sizes: dict[str, int | None] | None = None, max_bytes: int | None = None
    ) -> dict[str, bytes]:
        """Blob contents by id, read through one ``git cat-file --batch``.

        With ``max_bytes``, a blob larger than that (by ``sizes``, from ``ls-tree -l``,
        else asked of ``git cat-file --batch-check``) is never loaded whole: only its
        first ``max_bytes + 1`` bytes are read, enough for a checker to say "too large".
        """
        out: dict[str, bytes] = {}
        sizes = dict(sizes or {})
        todo = list(dict.fromkeys(shas))
        if max_bytes is not None:
            unknown = [s for s in todo if sizes.get(s) is None]
            if unknown:
                sizes.update(self.blob_sizes(unknown))
        whole = []
        for sha in todo:
            size = sizes.get(sha)
            if max_bytes is not None and size is not None and size > max_bytes:
                out[sha] = self.read_blob_head(sha, max_bytes + 1)
            else:
                whole.append(sha)
        if whole:
            out.update(self._read_batch(whole, sizes))
        return out

    def _read_batch(self, shas: list[str], sizes: dict[str, int | None]) -> dict[str, bytes]:
        known = [sizes.get(s) for s in shas]
        cap = sum(known) + 128 * len(shas) if None not in known else None  # type: ignore[arg-type]
        raw = self._git("cat-file", "--batch", input="".join(f"{s}\n" for s in shas).encode("ascii"), max_output=cap)
        out: dict[str, bytes] = {}
        pos = 0
        for sha in shas:
            nl = raw.find(b"\n", pos)
            header = raw[pos:nl].split() if nl >= 0 else []
            if len(header) != 3 or not header[2].isdigit():
                raise LabCIError(f"cannot read git object {sha}: {b' '.join(header[1:]).decode() or 'missing'}")
            size = int(header[2])
            out[sha] = raw[nl + 1 : nl + 1 + size]
            pos = nl + 1 + size + 1
        return out

    def blob_sizes(self, shas) -> dict[str, int]:
        """Object sizes by id (``git cat-file --batch-check``), without reading them."""
        shas = list(dict.fromkeys(shas))
        if not shas:
            return {}
        stdout = self._git(
            "cat-file", "--batch-check=%(objectname) %(objectsize)", input=("\n".join(shas) + "\n").encode("ascii")
        )
        sizes: dict[str, int] = {}
        for line in stdout.decode("ascii", "replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                sizes[parts[0]] = int(parts[1])
            elif parts:  # "<sha> missing"
                raise LabCIError(f"cannot read git object {parts[0]}: missing")
        return sizes

    def read_blob_head(self, sha: str, n: int) -> bytes:
        """The first ``n`` bytes of a blob, from a ``git cat-file blob`` process that is
        stopped once they are read (memory stays bounded whatever the blob's size)."""
        result = self.runner.run(
            ["cat-file", "blob", sha], git_dir=self.git_dir, max_output=n, truncate=True, check=False
        )
        if not result.stdout and n > 0 and result.returncode != 0:
            raise LabCIError(f"cannot read git object {sha}: {result.stderr or 'missing'}")
        return result.stdout

    # -- the working tree -------------------------------------------------------------
    @contextmanager
    def worktree_snapshot(self) -> Iterator[tuple[str, dict]]:
        """Write the working tree under the taxonomy (tracked, modified and untracked but
        not ignored files) as a tree object, without touching the user's index or object
        store: a temporary index and object folder, with the real one as alternate.
        Yields ``(tree_id, env)``; run git with ``env`` while using the tree id."""
        if self.bare:
            raise LabCIError("a bare repository has no working tree; pass --head REV")
        tmp = Path(tempfile.mkdtemp(prefix="lab-ci-snap-"))
        try:
            objects = self.common_dir / "objects"
            real_index = self.git_dir / "index"
            index = tmp / "index"
            if real_index.is_file():  # reuse its stat cache: only changed files get hashed
                shutil.copyfile(real_index, index)
            env = {
                "GIT_INDEX_FILE": str(index),
                "GIT_OBJECT_DIRECTORY": str(tmp / "objects"),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects.resolve()),
            }
            (tmp / "objects").mkdir()
            # Only leaf files are hashed: a multi-GB untracked file elsewhere costs a
            # stat, not a read. ls-files (tracked, deleted and untracked-not-ignored)
            # never fails on a pattern matching nothing, unlike add.
            listed = self._git(
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
                *leaf_pathspecs(self.prefix),
                env=env,
            )
            addable, special = self._split_special(listed)
            literal = {**env, "GIT_LITERAL_PATHSPECS": "1"}
            if addable:
                self._git(
                    "-c",
                    "core.safecrlf=false",
                    "add",
                    "-A",
                    "--ignore-errors",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                    env=literal,
                    input=b"\0".join(addable) + b"\0",
                )
            if special:  # a tracked file now a fifo/socket/device: gone from the snapshot,
                # so its leaf reads as changed and the checker reports what it is.
                self._git(
                    "rm",
                    "--cached",
                    "-q",
                    "--ignore-unmatch",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                    env=literal,
                    input=b"\0".join(special) + b"\0",
                )
            tree = self._git("write-tree", env=env).decode().strip()
            yield tree, env
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _split_special(self, listed: bytes) -> tuple[list[bytes], list[bytes]]:
        """Split ``ls-files -z`` output into paths git can add (regular files, links,
        folders, missing ones) and special files (fifos, sockets, devices) it cannot."""
        top = os.fsencode(self.top)
        addable, special = [], []
        for raw in listed.split(b"\0"):
            if not raw:
                continue
            try:
                mode = os.lstat(os.path.join(top, raw)).st_mode
            except OSError:
                addable.append(raw)  # deleted: `add -A` records the deletion
                continue
            ok = stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode)
            (addable if ok else special).append(raw)
        return addable, special

    def diff_trees_env(self, old: str, new: str, env: dict | None) -> list[DiffEntry]:
        args = ["diff-tree", "-r", "-z", "--raw", "-M", "--no-ext-diff", old, new]
        if self.prefix:
            args += ["--", self.prefix.rstrip("/")]
        return parse_raw_diff(self._git(*args, env=env), self.prefix)


def leaf_pathspecs(prefix: str = "", folders: tuple[str, ...] = TAXONOMY_FOLDERS) -> list[str]:
    """Pathspecs (repository-relative, under ``prefix``) for every file that can matter
    to a leaf: ``qna.yaml`` files, files inside a folder named ``qna.yaml``,
    ``attribution.txt`` files, and in the taxonomy ``folders`` the files a contributor
    may have meant as leaves (``*.yaml``, ``*.yml``, any case)."""
    misnamed = [f":(glob,icase){prefix}{f}/**/{p}" for f in folders for p in ("*.yaml", "*.yml")]
    return [
        f":(glob){prefix}**/qna.yaml",
        f":(glob){prefix}**/qna.yaml/**",
        f":(glob){prefix}**/attribution.txt",
        *misnamed,
    ]


#: What :func:`disk_kind` calls the special files it finds (never opened).
SPECIAL_KINDS = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "device", stat.S_IFBLK: "device"}


def disk_kind(path: Path) -> Kind:
    """What ``path`` is on disk (a symlink is never followed). A folder holding a
    ``.git`` is a submodule (or another repository nested inside this one)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as e:
        raise LabCIError(f"cannot read {str(path)!r}: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISDIR(st.st_mode):
        return "submodule" if os.path.lexists(path / ".git") else "directory"
    if stat.S_ISREG(st.st_mode):
        return "file"
    # A fifo, socket or device: reported per file by the checker ("... is a fifo, not a
    # regular file"), never opened (reading a fifo would block).
    return SPECIAL_KINDS.get(stat.S_IFMT(st.st_mode), "special")  # type: ignore[return-value]
