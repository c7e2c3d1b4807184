"""Next actions on hand-made leads whose right answers are known from the playbook's rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.snapshots import export_time
from leadscore.actions import ACTIONS, PLAYBOOK, recommend

AS_OF = pd.Timestamp("2026-06-01T10:00:00+08:00")


@pytest.fixture(scope="module")
def model_and_row(trained, tables):
    """The trained health model and one real feature row of an open, worked lead, to edit by hand."""
    artifact = trained["result"].artifact
    leads = tables["leads"]["lead_id"].sample(400, random_state=2)
    snapshots = pd.DataFrame({"lead_id": leads, "as_of": export_time(tables)}).reset_index(drop=True)
    features = artifact.pipeline.transform(tables, snapshots)
    worked = features[(features["activities_total"] > 3) & (features["days_since_created"] > 10)]
    return artifact.health, worked.iloc[[0]].reset_index(drop=True)


def lead(row: pd.DataFrame, **values) -> pd.DataFrame:
    out = row.copy()
    for name, value in values.items():
        out[name] = value
    return out


QUIET = dict(touches_微信=2.0, role_finance_reached=1.0, role_decision_reached=1.0, days_since_last_activity=1.0,
             days_in_recorded_stage=2.0, stage_evidence_missing=0.0, next_action_overdue=0.0, touches_演示=1.0,
             has_测试报告=1.0, owner_open_load=10.0, owner_win_rate=0.3, pricing_views_7d=0.0)  # fmt: skip


def actions_for(health, rows: pd.DataFrame, stages, score=50.0, nurture=15.0):
    return recommend(health, rows, stages, np.full(len(rows), score), pd.Series([AS_OF] * len(rows)), nurture)


def test_a_lead_with_nothing_owed_gets_no_action(model_and_row) -> None:
    health, row = model_and_row
    assert actions_for(health, lead(row, **QUIET), ["方案沟通"]) == [[]]


def test_each_rule_fires_on_its_own_condition_with_its_reason_and_due_date(model_and_row) -> None:
    health, row = model_and_row
    cases = [
        (dict(touches_微信=0.0), "需求确认", "wechat", "微信", pd.Timedelta(days=1)),
        (dict(role_finance_reached=0.0), "报价", "finance", "报价阶段，决策链中还没有接触财务", pd.Timedelta(days=7)),
        (dict(days_since_last_activity=10.0), "方案沟通", "follow_up", "已10天没有跟进记录", pd.Timedelta(days=1)),
        (dict(next_action_overdue=1.0, next_action_overdue_days=4.0), "报价", "overdue", "已逾期4天", pd.Timedelta(days=1)),
        (dict(touches_演示=0.0, has_演示确认单=0.0), "需求确认", "demo", "尚未做技术演示", pd.Timedelta(days=2)),
        (dict(has_测试报告=0.0), "样品验证", "sample", "还没有测试报告", pd.Timedelta(days=3)),
        (dict(owner_open_load=90.0), "方案沟通", "reassign", "在跟90条线索", pd.Timedelta(days=1)),
    ]  # fmt: skip
    for values, stage, key, reason, due in cases:
        [[action]] = actions_for(health, lead(row, **QUIET | values), [stage])
        assert action["action"] == key and reason in action["reason"], (key, action)
        assert pd.Timestamp(action["due"]) == AS_OF + due and action["title"] == ACTIONS[key].title


def test_rules_respect_the_stage(model_and_row) -> None:
    health, row = model_and_row
    early = actions_for(health, lead(row, **QUIET | dict(role_finance_reached=0.0, has_测试报告=0.0)), ["新线索"])
    assert early == [[]], "no finance contact and no sample before the need is confirmed"
    closed = actions_for(health, lead(row, **QUIET | dict(touches_微信=0.0, days_since_last_activity=30.0)), ["赢单"])
    assert closed == [[]], "a closed deal needs no next action"


def test_gains_are_the_health_models_what_if_and_rank_the_actions(model_and_row) -> None:
    health, row = model_and_row
    owed = lead(row, **QUIET | dict(touches_微信=0.0, role_finance_reached=0.0, role_decision_reached=0.0,
                                    days_since_last_activity=12.0))  # fmt: skip
    [actions] = actions_for(health, owed, ["报价"])
    assert {a["action"] for a in actions} == {"wechat", "finance", "decision_maker", "follow_up"}
    before = 100 * health.predict(owed)[0]
    for action in actions:
        edited = owed.copy()
        ACTIONS[action["action"]].edit(edited)
        assert action["expected_gain"] == pytest.approx(100 * health.predict(edited)[0] - before, abs=0.006)
    gains = [a["expected_gain"] for a in actions]
    assert gains == sorted(gains, reverse=True)


def test_nurture_is_offered_for_cold_low_leads_and_comes_last(model_and_row) -> None:
    health, row = model_and_row
    cold = lead(row, **QUIET | dict(days_since_last_activity=30.0))
    [actions] = actions_for(health, cold, ["初步接触"], score=5.0)
    assert [a["action"] for a in actions] == ["follow_up", "nurture"]
    assert actions[1]["expected_gain"] == 0.0 and "培育" in actions[1]["reason"]
    assert [a.key for a in PLAYBOOK][-1] == "nurture"
