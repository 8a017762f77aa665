"""The evaluation cache survives kills: whole JSON files, fsynced JSONL, torn tails."""

from __future__ import annotations

import json

from lab_ci.eval.store import EvalCache, KeyedLog, read_json, stable_hash, write_json


def test_keyed_log_appends_reloads_and_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "answers" / "m.jsonl"
    log = KeyedLog(path)
    assert log.put_many([("a", [1, "x"]), ("b", {"rating": 3})]) == 2
    assert log.put_many([]) == 0
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"k": "c", "v": 1')  # a kill in the middle of a line
    again = KeyedLog(path)
    assert again.values == {"a": [1, "x"], "b": {"rating": 3}}
    assert "a" in again and "c" not in again and again.get("c", 0) == 0
    # a later line for the same key wins (a recomputed value)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"k": "a", "v": 1}) + "\n" + "garbage\n" + json.dumps({"k": "a", "v": 2}) + "\n")
    assert KeyedLog(path).values == {"a": 2}


def test_json_is_written_whole_and_the_cache_may_be_off(tmp_path):
    write_json(tmp_path / "x" / "r.json", {"b": 1, "a": [1, 2]})
    assert read_json(tmp_path / "x" / "r.json") == {"a": [1, 2], "b": 1}
    assert not list((tmp_path / "x").glob(".r.json.*"))  # no temp file left
    assert read_json(tmp_path / "missing.json", "default") == "default"
    off = EvalCache(None)
    assert off.mcq_path("k") is None
    log = off.log("loglik", "m")
    log.put_many([("k", 1)])
    assert log.get("k") == 1 and not list(tmp_path.rglob("*.jsonl"))
    on = EvalCache(tmp_path / "c")
    on.log("judge", "j").put_many([("k", 1)])
    assert (tmp_path / "c" / "judge" / "j.jsonl").is_file()
    assert on.log("judge", "j") is on.log("judge", "j")


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
