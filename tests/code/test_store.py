"""The lead store on SQLite and on a real PostgreSQL server (the same tests): merging what a CRM sends with what
was stored, events kept once and point in time, the duplicate look-up, the assignment log, overdue leads,
retention and masked personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from serving.store import LeadStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> LeadStore:
    if request.param == "sqlite":
        return LeadStore(f"sqlite:///{tmp_path / 'store.db'}")
    url = request.getfixturevalue("postgres_url")
    store = LeadStore(url)
    with store.engine.begin() as connection:  # each test starts empty on the session's server
        connection.execute(text("TRUNCATE store_leads, store_events, assignment_log RESTART IDENTITY"))
    return store


LEAD = {
    "lead_id": "s1", "created_at": "2026-05-01T09:00:00", "channel": "官网表单", "industry": "教育",
    "company_name": "博远教育科技有限公司", "phone": "+86 138-0013-8000", "email": "a@corp.cn",
    "activities": [{"ts": "2026-05-01T10:00:00", "channel": "电话", "direction": "outbound", "note": "首次电话"}],
}  # fmt: skip


def test_a_lead_sent_again_with_only_what_changed_gets_its_stored_fields_and_events(store) -> None:
    store.remember([LEAD])
    update = {"lead_id": "s1", "budget_cny": 300000,
              "activities": [{"ts": "2026-05-03T10:00:00", "channel": "微信", "direction": "outbound"}]}  # fmt: skip
    merged = store.merge(update, as_of="2026-05-04T00:00:00")
    assert merged["created_at"] == LEAD["created_at"] and merged["industry"] == "教育"
    assert merged["budget_cny"] == 300000
    assert [a["channel"] for a in merged["activities"]] == ["电话", "微信"]
    # point in time: a stored event after as_of is not handed to the features
    store.remember([update])
    early = store.merge({"lead_id": "s1"}, as_of="2026-05-02T00:00:00")
    assert [a["channel"] for a in early["activities"]] == ["电话"]
    # an unknown lead comes back as sent
    assert store.merge({"lead_id": "new", "created_at": "2026-05-01"}) == {"lead_id": "new", "created_at": "2026-05-01"}


def test_an_event_sent_twice_is_stored_once(store) -> None:
    assert store.remember([LEAD]) == 1
    assert store.remember([LEAD]) == 0
    merged = store.merge(LEAD, as_of="2026-06-01T00:00:00")
    assert len(merged["activities"]) == 1
    assert store.count()["store_events"] == 1


def test_earlier_leads_share_the_normalised_phone(store) -> None:
    store.remember(
        [LEAD | {"owner_id": "rep7"}, {"lead_id": "other", "created_at": "2026-05-01", "phone": "13900000000"}]
    )
    twin = {"lead_id": "s2", "created_at": "2026-05-10", "phone": "13800138000"}
    earlier = store.earlier_leads([twin])
    assert [(e["lead_id"], e["owner_id"]) for e in earlier] == [("s1", "rep7")]
    assert store.earlier_leads([LEAD]) == []  # a lead is never its own duplicate
    assert store.earlier_leads([{"lead_id": "x", "created_at": "2026-05-01"}]) == []


def test_leads_of_the_wrong_shape_pass_through_for_the_contract_to_report(store) -> None:
    """Found by fuzzing /score: a lead_id or phone that is a list reached a set and a SQL parameter (500)."""
    odd = [{"lead_id": [], "created_at": [], "phone": ["13800138000"], "activities": [{"ts": ""}]}, "x", None]
    merged, earlier = store.complete(odd, None)
    assert merged == odd and earlier == []


def _decision(decision_id: str, lead_id: str, rep: str, status: str = "assigned") -> dict:
    return {"decision_id": decision_id, "kind": "assign", "lead_id": lead_id, "status": status, "chosen_rep": rep,
            "pool": "p", "reason": "r", "ranking": [{"rep_id": rep, "reasons": ["客户电话13800138000"]}],
            "model_version": "m/1"}  # fmt: skip


def test_the_assignment_log_reads_back_with_personal_data_masked(store) -> None:
    store.log_decision(_decision("d1", "s1", "rep1"), {"lead": LEAD, "reps": [{"rep_id": "rep1"}]})
    [row] = store.decisions()
    assert row["chosen_rep"] == "rep1" and row["model_version"] == "m/1" and row["decided_at"].tzinfo is not None
    logged = str(row["inputs"]) + str(row["ranking"])
    assert "13800138000" not in logged and "138-0013-8000" not in logged and "a@corp.cn" not in logged
    assert row["inputs"]["lead"]["industry"] == "教育"


def test_overdue_lists_leads_nobody_touched_since_their_assignment(store) -> None:
    store.remember([{"lead_id": "late", "created_at": "2026-05-01"}, {"lead_id": "done", "created_at": "2026-05-01"}])
    store.log_decision(_decision("d1", "late", "rep1"), {})
    store.log_decision(_decision("d2", "done", "rep2"), {})
    store.log_decision(_decision("d3", "gone", "rep3", status="unassigned"), {})
    later = datetime.now(UTC) + timedelta(hours=3)
    assert store.overdue(hours=2) == []  # not yet two hours
    # an inbound message is not a first touch; the rep's outbound call is
    touch = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    store.remember([{"lead_id": "late", "activities": [{"ts": touch, "direction": "inbound"}]},
                    {"lead_id": "done", "activities": [{"ts": touch, "direction": "outbound", "channel": "电话"}]}])  # fmt: skip
    overdue = store.overdue(hours=2, now=later)
    assert [(o["lead_id"], o["owner_id"]) for o in overdue] == [("late", "rep1")]
    assert 2.9 < overdue[0]["hours_waiting"] < 3.1
    # a later decision (a re-route) restarts the clock
    store.log_decision(_decision("d4", "late", "rep5") | {"kind": "reroute"}, {}, previous="d1")
    assert store.overdue(hours=2, now=datetime.now(UTC) + timedelta(hours=1)) == []
    assert store.tried_reps("late") == ["rep1", "rep5"]


def test_retention_purges_leads_not_seen_for_that_long(store) -> None:
    store.remember([LEAD])
    store.log_decision(_decision("d1", "s1", "rep1"), {})
    store.retention_days = 30
    assert store.purge(now=datetime.now(UTC) + timedelta(days=10)) == 0
    assert store.purge(now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert store.count() == {"store_leads": 0, "store_events": 0, "assignment_log": 0}
