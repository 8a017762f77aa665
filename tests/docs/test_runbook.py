"""The runbook's SQL recipes work on a real queue database made by the bot's own code,
so the page an operator follows at night stays true when the queue changes."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from lab_ci.bot.jobs import JobSpec
from lab_ci.bot.queue import SQLiteQueue

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operators" / "runbook.md"


def recipes() -> list[str]:
    """The SQL statements of the runbook's ``sql`` fences (sqlite3 dot-commands left out)."""
    blocks = re.findall(r"^\s*```sql\n(.*?)^\s*```", RUNBOOK.read_text(encoding="utf-8"), re.S | re.M)
    return [s.strip() for b in blocks for s in b.split(";") if s.strip() and not s.strip().startswith(".")]


def test_the_runbook_has_sql_recipes():
    statements = recipes()
    assert any(s.startswith("SELECT") for s in statements)
    assert any(s.startswith("UPDATE jobs SET state = 'queued'") for s in statements)


def test_the_recipes_find_and_requeue_a_dead_job(tmp_path):
    queue = SQLiteQueue(tmp_path / "queue.db")
    dead_id = queue.enqueue(JobSpec("check", {"n": 1}, key="o/r#1", max_attempts=1))
    queue.enqueue(JobSpec("preview", {"n": 2}, key="o/r#2"))
    job = queue.claim("w1", 60)
    assert job.id == dead_id
    assert queue.fail(job.id, "GitHub unreachable", None, owner="w1") == "dead"

    db = sqlite3.connect(tmp_path / "queue.db")
    rows = {}
    for statement in recipes():
        statement = statement.replace("id = 42", f"id = {dead_id}")
        rows[statement.split()[0]] = db.execute(statement).fetchall()
        db.commit()
        if statement.startswith("SELECT id, kind, key, attempts, last_error FROM jobs WHERE state = 'dead'"):
            assert rows["SELECT"] == [(dead_id, "check", "o/r#1", 1, "GitHub unreachable")]
    db.close()

    again = queue.claim("w2", 60)  # the requeued job runs again, with fresh attempts
    assert again is not None and again.id == dead_id and again.attempts == 1
