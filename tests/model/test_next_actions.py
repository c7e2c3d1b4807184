"""Next actions: the playbook's rules on hand-made feature rows, and every expected gain as the re-scoring of
the action's event through the same pipeline (what a client gets back when it appends the event)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from features.labels import export_time
from leadscore.tools.demo import lead_request
from models.actions import ACTIONS, PLAYBOOK, propose, what_if_features

AS_OF = pd.Timestamp("2026-06-01T10:00:00+08:00")
QUIET = dict(touches_微信=2.0, role_finance_reached=1.0, role_decision_reached=1.0, days_since_last_activity=1.0,
             days_in_recorded_stage=2.0, stage_evidence_missing=0.0, next_action_overdue=0.0, touches_演示=1.0,
             has_测试报告=1.0, owner_open_load=10.0, owner_win_rate=0.3, pricing_views_7d=0.0)  # fmt: skip


@pytest.fixture(scope="module")
def artifact_and_row(trained, tables):
    """The trained artifact and one real feature row of an open, worked lead, to edit by hand."""
    artifact = trained["result"].artifact
    leads = tables["leads"]["lead_id"].sample(400, random_state=2)
    snapshots = pd.DataFrame({"lead_id": leads, "as_of": export_time(tables)}).reset_index(drop=True)
    features = artifact.pipeline.transform(tables, snapshots)
    worked = features[(features["activities_total"] > 3) & (features["days_since_created"] > 10)]
    return artifact, worked.iloc[[0]].reset_index(drop=True)


def proposals_for(artifact, row: pd.DataFrame, stage: str, score: float = 50.0, nurture: float = 15.0, **values):
    edited = row.copy()
    for name, value in (QUIET | values).items():
        edited[name] = value
    snapshots = pd.DataFrame({"lead_id": ["x"], "as_of": [AS_OF]})
    return propose(artifact.pipeline, edited, [stage], np.array([score]), snapshots, pd.Series(["rep0000"]), nurture)


def test_a_lead_with_nothing_owed_gets_no_action(artifact_and_row) -> None:
    assert proposals_for(*artifact_and_row, "方案沟通") == []


def test_each_rule_fires_on_its_own_condition_with_its_reason_and_due_date(artifact_and_row) -> None:
    cases = [
        (dict(touches_微信=0.0), "需求确认", "wechat", "微信", pd.Timedelta(days=1)),
        (dict(role_finance_reached=0.0), "报价", "finance", "报价阶段，决策链中还没有接触财务", pd.Timedelta(days=7)),
        (dict(days_since_last_activity=10.0), "方案沟通", "follow_up", "已10天没有跟进记录", pd.Timedelta(days=1)),
        (dict(next_action_overdue=1.0, next_action_overdue_days=4.0), "报价", "overdue", "已逾期4天", pd.Timedelta(days=1)),
        (dict(touches_演示=0.0, has_演示确认单=0.0), "需求确认", "demo", "尚未做技术演示", pd.Timedelta(days=2)),
        (dict(has_测试报告=0.0), "样品验证", "sample", "还没有测试报告", pd.Timedelta(days=3)),
    ]  # fmt: skip
    for values, stage, key, reason, due in cases:
        [proposal] = proposals_for(*artifact_and_row, stage, **values)
        assert proposal.action.key == key and reason in proposal.reason, (key, proposal.reason)
        assert proposal.action.due == due and proposal.action.title == ACTIONS[key].title
        assert proposal.event is not None and proposal.event.activities, key


def test_rules_respect_the_stage(artifact_and_row) -> None:
    early = proposals_for(*artifact_and_row, "新线索", role_finance_reached=0.0, has_测试报告=0.0)
    assert early == [], "no finance contact and no sample before the need is confirmed"
    closed = proposals_for(*artifact_and_row, "赢单", touches_微信=0.0, days_since_last_activity=30.0)
    assert closed == [], "a closed deal needs no next action"


def test_an_overloaded_owners_lead_is_moved_to_a_named_stronger_rep(artifact_and_row) -> None:
    artifact = artifact_and_row[0]
    [proposal] = proposals_for(*artifact_and_row, "方案沟通", owner_open_load=90.0, owner_win_rate=0.05)
    assert proposal.action.key == "reassign" and "在跟90条线索" in proposal.reason
    rep = dict(proposal.event.lead)["owner_id"]
    assert rep != "rep0000" and rep in set(artifact.pipeline.history_["owner_id"])


def _rescored_gain(artifact, request: dict, lead_id: str, action) -> float:
    """Append the action's event to the lead as a client would, re-score, and return the move in points."""
    before = next(r for r in artifact.score_request(request).results if r.lead_id == lead_id)
    changed = copy.deepcopy(request)
    lead = next(item for item in changed["leads"] if item["lead_id"] == lead_id)
    lead.setdefault("activities", []).extend(row.model_dump(exclude_none=True) for row in action.as_event.activities)
    lead.update(action.as_event.lead.model_dump(exclude_none=True))
    after = next(r for r in artifact.score_request(changed).results if r.lead_id == lead_id)
    return 100 * (after.win_probability - before.win_probability)


def test_every_expected_gain_is_what_re_scoring_the_appended_event_gives(trained, tables) -> None:
    """The issue's bar: within 0.1 points (win_probability carries 4 decimals, so 0.01 points of rounding)."""
    artifact = trained["result"].artifact
    as_of = export_time(tables)
    open_ids = tables["outcomes"].loc[tables["outcomes"]["status"] == "open", "lead_id"]
    busy = tables["activities"]["lead_id"].value_counts().reindex(open_ids).dropna().index[:6].tolist()
    request = lead_request(tables, busy, as_of, personal=True)
    checked = 0
    for answer in artifact.score_request(request).results:
        for action in answer.next_actions:
            if action.as_event is not None:
                assert _rescored_gain(artifact, request, answer.lead_id, action) == pytest.approx(
                    action.expected_gain, abs=0.1
                ), (answer.lead_id, action.action)
                checked += 1
            else:
                assert action.expected_gain == 0.0, action.action
    assert checked >= 6


def test_a_reassignment_gain_is_the_re_scored_new_owner(trained, tables) -> None:
    """An owner with 70 more open leads in the request is overloaded: the lead moves, and re-scoring with the
    named rep as owner gives the gain back."""
    artifact = trained["result"].artifact
    as_of = export_time(tables)
    history = tables["leads"].merge(tables["outcomes"], on="lead_id")
    closed = history[history["status"] != "open"]
    weakest = (closed["status"] == "won").groupby(closed["owner_id"]).mean().idxmin()  # a stronger rep exists
    open_ids = history.loc[(history["status"] == "open") & (history["owner_id"] == weakest), "lead_id"]
    busy = tables["activities"]["lead_id"].value_counts().reindex(open_ids).dropna().index[:20].tolist()
    alone = artifact.score_request(lead_request(tables, busy, as_of, personal=True)).results
    lead_id = max(alone, key=lambda r: r.health_score).lead_id  # above the nurture line, where moves are offered
    request = lead_request(tables, [lead_id], as_of, personal=True)
    owner = request["leads"][0]["owner_id"]
    request["leads"] += [
        {"lead_id": f"load-{i}", "created_at": (as_of - pd.Timedelta(days=3)).isoformat(), "owner_id": owner}
        for i in range(70)
    ]
    answer = next(r for r in artifact.score_request(request).results if r.lead_id == lead_id)
    assert answer.health_score >= artifact.tiers.nurture, "below the nurture line no reassignment is offered"
    [move] = [a for a in answer.next_actions if a.action == "reassign"]
    assert move.as_event.lead.owner_id not in (None, owner) and not move.as_event.activities
    assert _rescored_gain(artifact, request, lead_id, move) == pytest.approx(move.expected_gain, abs=0.1)


def test_derived_features_move_with_the_event(trained, tables) -> None:
    """The bug the events fix: a touch that makes the third follow-up in 30 days raises the LAI (a health-model
    input) by its 35 points; editing activities_30d by hand left the LAI where it was."""
    artifact = trained["result"].artifact
    as_of = export_time(tables)
    snapshots = pd.DataFrame({"lead_id": tables["leads"]["lead_id"], "as_of": as_of})
    features = artifact.pipeline.transform(tables, snapshots)
    two = (features["activities_30d"] == 2) & (features["days_since_last_activity"] <= 7)
    candidates = features.index[two & (features["touches_微信"] == 0)]
    assert len(candidates), "the test world has leads with two follow-ups in 30 days and no WeChat touch"
    row = int(candidates[0])
    snapshot = snapshots.iloc[[row]].reset_index(drop=True)
    context = artifact.pipeline.context(tables, snapshot)
    proposed = propose(artifact.pipeline, features.iloc[[row]].reset_index(drop=True), ["需求确认"],
                       np.array([50.0]), snapshot, pd.Series([None]), 15.0)  # fmt: skip
    [proposal] = [p for p in proposed if p.action.key == "wechat"]
    after = what_if_features(artifact.pipeline, tables, snapshot, context, [proposal]).iloc[0]
    before = features.iloc[row]
    assert after["activities_30d"] == before["activities_30d"] + 1
    assert after["lai"] == pytest.approx(before["lai"] + 35.0)
    assert after["touches_微信"] == before["touches_微信"] + 1 and after["days_since_last_activity"] == 0.0


def test_nurture_comes_last_with_no_event(trained, tables) -> None:
    artifact = trained["result"].artifact
    snapshots = pd.DataFrame({"lead_id": tables["leads"]["lead_id"].sample(600, random_state=4),
                              "as_of": export_time(tables)}).reset_index(drop=True)  # fmt: skip
    answers = artifact.score_tables(tables, snapshots)
    nurtured = [a for a in answers if any(x.action == "nurture" for x in a.next_actions)]
    assert nurtured, "some cold, low leads in the sample"
    for answer in nurtured:
        assert answer.next_actions[-1].action == "nurture" and answer.next_actions[-1].as_event is None
        assert answer.next_actions[-1].expected_gain == 0.0 and "培育" in answer.next_actions[-1].reason
    assert [a.key for a in PLAYBOOK][-1] == "nurture"
