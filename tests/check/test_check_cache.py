"""ResultCache: hits for unchanged leaves, misses for any change, survives bad files."""

from __future__ import annotations

from pathlib import Path

from checkleaf_samples import SKILL, leaf

from lab_ci.check import CheckOptions, check_leaves
from lab_ci.check.cache import ResultCache, cache_key, default_dir


def test_roundtrip_and_keys(tmp_path):
    cache = ResultCache(tmp_path)
    leaves = [leaf(SKILL + "oops: 1   \n"), leaf(SKILL, "compositional_skills/other/qna.yaml")]
    first = check_leaves(leaves, CheckOptions(), cache=cache)
    assert cache.hits == 0 and cache.misses == 2
    again = check_leaves(leaves, CheckOptions(), cache=cache)
    assert cache.hits == 2
    assert [f.to_dict() for f in first.files] == [f.to_dict() for f in again.files]
    # anything that changes the result changes the key
    base = cache_key(leaves[0], CheckOptions())
    assert cache_key(leaves[0], CheckOptions(strict=True)) != base
    assert cache_key(leaf(SKILL + "oops: 1   \n", attribution=None), CheckOptions()) != base
    assert cache_key(leaf(SKILL + "oops: 2   \n"), CheckOptions()) != base
    assert cache_key(leaf(SKILL + "oops: 1   \n", "compositional_skills/b/qna.yaml"), CheckOptions()) != base


def test_corrupt_entries_are_misses(tmp_path):
    cache = ResultCache(tmp_path)
    leaves = [leaf(SKILL)]
    check_leaves(leaves, CheckOptions(), cache=cache)
    files = [p for p in (tmp_path / "check").rglob("*.json")]
    assert len(files) == 1
    files[0].write_bytes(b"{not json")
    r = check_leaves(leaves, CheckOptions(), cache=cache)
    assert cache.hits == 0 and r.files[0].valid
    files[0].write_text('{"key": "other", "diagnostics": []}')
    check_leaves(leaves, CheckOptions(), cache=cache)
    assert cache.hits == 0


def test_unwritable_cache_only_costs_speed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = ResultCache(blocker)  # cache dir below a regular file: cannot be created
    r = check_leaves([leaf(SKILL)], CheckOptions(), cache=cache)
    assert r.valid and cache.hits == 0


def test_default_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_dir() == tmp_path / "lab-ci"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_dir() == Path.home() / ".cache" / "lab-ci"
