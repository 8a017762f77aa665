"""Build request state machine, who may approve, and the SQLite store."""

import threading

import pytest

from lab_ci.bot.approvals import ApprovalStore, InvalidTransition, check_approval, may_approve, transition
from lab_ci.bot.config import Approvers

SHA1 = "a" * 40
SHA2 = "b" * 40


def test_transitions():
    assert transition("pending", "approve") == "approved"
    assert transition("approved", "dispatch") == "dispatched"
    assert transition("dispatched", "start") == "running"
    assert transition("running", "succeed") == "succeeded"
    assert transition("pending", "supersede") == "superseded"
    for state, event in [
        ("approved", "approve"),
        ("superseded", "approve"),
        ("succeeded", "cancel"),
        ("pending", "dispatch"),
        ("cancelled", "start"),
    ]:
        with pytest.raises(InvalidTransition):
            transition(state, event)


@pytest.mark.parametrize(
    "role,team,approvers,ok",
    [
        ("admin", False, Approvers(), True),
        ("maintain", False, Approvers(), True),
        ("write", False, Approvers(), False),
        ("read", False, Approvers(), False),
        (None, False, Approvers(), False),
        ("write", True, Approvers(teams=("release",)), True),
        ("write", False, Approvers(permission="write"), True),
        ("maintain", False, Approvers(permission="admin"), False),
    ],
)
def test_may_approve(role, team, approvers, ok):
    assert may_approve(role, team, approvers) is ok


def test_store_flow_and_restart(tmp_path):
    db = tmp_path / "queue.db"
    store = ApprovalStore(db)
    r1, created = store.create(repo="o/r", installation_id=1, sha=SHA1, ref="main", pr_number=3)
    assert created and r1.state == "pending" and r1.pr_number == 3
    again, created2 = store.create(repo="o/r", installation_id=1, sha=SHA1, ref="main")
    assert not created2 and again.id == r1.id  # push + merged PR for one commit: one request
    r2, _ = store.create(repo="o/r", installation_id=1, sha=SHA2, ref="main")
    assert [r.id for r in store.pending_older_than("o/r", r2.id)] == [r1.id]
    store.apply(r1.id, "supersede", note="newer")
    store.apply(r2.id, "approve", approved_by="maint")
    store.update(r2.id, check_run_id=55)
    store.close()

    reopened = ApprovalStore(db)  # approvals survive a restart
    got = reopened.get(r2.id)
    assert (got.state, got.approved_by, got.check_run_id) == ("approved", "maint", 55)
    assert reopened.get(r1.id).state == "superseded"
    assert reopened.by_sha("o/r", "bbbbbbb").id == r2.id
    assert reopened.by_sha("o/r", "ccccccc") is None
    assert [r.id for r in reopened.active("o/r")] == [r2.id]
    with pytest.raises(InvalidTransition):
        reopened.apply(r2.id, "approve")
    with pytest.raises(ValueError):
        reopened.update(r2.id, state="succeeded")


def test_concurrent_approvals_only_one_wins(tmp_path):
    store = ApprovalStore(tmp_path / "q.db")
    req, _ = store.create(repo="o/r", installation_id=1, sha=SHA1, ref="main")
    wins, losses = [], []

    def approve(user):
        try:
            wins.append(store.apply(req.id, "approve", approved_by=user).approved_by)
        except InvalidTransition:
            losses.append(user)

    threads = [threading.Thread(target=approve, args=(f"u{i}",)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(wins) == 1 and len(losses) == 7


def test_check_approval_names_the_exact_commit(tmp_path):
    store = ApprovalStore(tmp_path / "q.db")
    req, _ = store.create(repo="o/r", installation_id=1, sha=SHA1, ref="main")
    assert check_approval(req, SHA1, allowed=True).ok
    assert check_approval(req, SHA1[:7], allowed=True).ok
    assert "pending merge commit" in check_approval(req, SHA2, allowed=True).reason
    assert "only maintainers" in check_approval(req, SHA1, allowed=False).reason
    assert "no release build" in check_approval(None, SHA1, allowed=True).reason
    done = store.apply(req.id, "approve", approved_by="x")
    assert "already approved" in check_approval(done, SHA1, allowed=True).reason
