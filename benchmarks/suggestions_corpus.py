"""What the bot's review of suggested changes would hold on the real corpus.

For every qna.yaml contributed by the corpus's ``pr/N`` branches (about 1950 files):
the check's diagnostics (:func:`lab_ci.check.check_leaf`), the safe fixes the check job
computes (:func:`lab_ci.bot.suggestions.file_fixes`), and the review
(:func:`lab_ci.bot.suggestions.build_review`) against the file's real diff
(``git diff pr/N^ pr/N``, the ``patch`` GitHub's files API gives). Then the suggestions
are committed with the GitHub double's model of the button
(``tests/bot/ghdouble.apply_suggestions``) and compared with what ``--fix`` writes.

Prints: files with fixable problems, files that get suggestions, suggestions per file,
fixes left out (outside the diff, over the limit, or not expressible: final line break,
CRLF), the share of files where committing every suggestion gives exactly the ``--fix``
result, and the CPU time of the fixes (what the check job spends on top of the check).

Usage: .venv/bin/python benchmarks/suggestions_corpus.py [--bundle PATH]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "check"))
sys.path.insert(0, str(REPO / "tests" / "bot"))

from checkcorpus_util import corpus_files  # noqa: E402
from ghdouble import apply_suggestions  # noqa: E402

from lab_ci.bot import suggestions as sg  # noqa: E402
from lab_ci.check import CheckOptions, check_leaf  # noqa: E402
from lab_ci.check.fix import fix_text  # noqa: E402
from lab_ci.taxonomy.leaf import LeafFile  # noqa: E402

DEFAULT_BUNDLE = Path(os.environ.get("LAB_CI_SHARED", REPO.parent / "shared")) / "corpus" / "taxonomy-history.bundle"


def patch_of(mirror: Path, pr: str, path: str) -> str | None:
    out = subprocess.run(
        ["git", "-C", str(mirror), "diff", f"pr/{pr}^", f"pr/{pr}", "--", path], capture_output=True, check=True
    ).stdout.decode("utf-8", "replace")
    at = out.find("\n@@")
    return out[at + 1 :] if at >= 0 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    args = ap.parse_args()
    options = CheckOptions()
    with tempfile.TemporaryDirectory() as tmp:
        mirror = Path(tmp) / "corpus.git"
        subprocess.run(["git", "clone", "--quiet", "--mirror", str(args.bundle), str(mirror)], check=True)
        files = corpus_files(mirror)
        counts: collections.Counter = collections.Counter()
        per_file: list[int] = []
        fix_cpu = review_cpu = 0.0
        for f in files:
            leaf = LeafFile(f.path, f.data, blob_id=f.blob_id, attribution=f.attribution)
            diags = check_leaf(leaf, options).diagnostics
            t0 = time.process_time()
            fix = sg.file_fixes(f.path, f.data, diags, options.read_limits())
            fix_cpu += time.process_time() - t0
            if not any(d.source == "yamllint" for d in diags):
                continue
            counts["files with yamllint problems"] += 1
            if fix is None:
                continue
            counts["files --fix changes"] += 1
            fix = sg.FileFix.from_dict(fix.to_dict())
            patch = patch_of(mirror, f.pr, f.path)
            t0 = time.process_time()
            review = sg.build_review([fix], [{"filename": f.path, "patch": patch}], "0" * 40)
            review_cpu += time.process_time() - t0
            comments = review["comments"] if review else []
            counts["edits"] += len(fix.edits)
            counts["suggestions"] += len(comments)
            per_file.append(len(comments))
            if comments:
                counts["files with suggestions"] += 1
            text = f.data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
            if apply_suggestions(text, comments) == fix_text(f.data, options.read_limits()).text:
                counts["files where the suggestions give exactly --fix's file"] += 1
            body = review["body"] if review else ""
            if "outside this pull request" in body:
                counts["files with fixes outside the diff"] += 1
            if "line break at the end" in body:
                counts["files needing a final line break (said, not suggested)"] += 1
            if "CRLF" in body:
                counts["files with CRLF (said, not suggested)"] += 1
            if "over this review's limit" in body:
                counts["files over the 50-suggestion limit"] += 1
    changed = counts["files --fix changes"] or 1
    print(f"corpus files: {len(files)}")
    for k, v in counts.items():
        share = (
            f" ({100 * v / changed:.1f}% of files --fix changes)"
            if k.startswith("files ") and "--fix changes" not in k and "yamllint" not in k
            else ""
        )
        print(f"  {k}: {v}{share}")
    if per_file:
        per_file.sort()
        print(f"  suggestions per file: median {per_file[len(per_file) // 2]}, max {per_file[-1]}")
    print(f"CPU: fixes {fix_cpu:.2f} s for {len(files)} files ({1000 * fix_cpu / len(files):.2f} ms/file); ", end="")
    print(f"building reviews {review_cpu * 1000:.1f} ms in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
