"""The cockpit's figures on hand-made log rows, where every number can be counted by hand."""

from __future__ import annotations

import json
import re

from sqlalchemy import select, text

from serving import cockpit, page
from serving.predlog import PredictionLog, predictions
from tests.helpers import lead_answer


def row(i: int, lead: str, *, as_of: str, created: str, stages=(), activities=(), owner="rep-1", kind="品牌方",
        channel="官网表单", risk=None, checklist=False, actions=(), win=0.3, **answer):  # fmt: skip
    fields = {"as_of": as_of, "win_probability": win, "health_score": 100 * win, "next_actions": list(actions)}
    fields["golden_checklist"] = dict.fromkeys(["first_call", "wechat", "need_tagged", "complete"], checklist)
    if risk:
        fields["risk"] = risk
    a = lead_answer(lead, **fields, **answer)
    events = {"stage_changes": [{"ts": ts, "stage": s} for ts, s in stages], "activities": list(activities)}
    return {"id": i, "lead_id": lead, "answer": a.model_dump_json(), "events": json.dumps(events, ensure_ascii=False),
            "owner_id": owner, "channel": channel, "campaign": None, "customer_type": kind, "created_at": created}  # fmt: skip


T0, T1 = "2026-05-01T09:00:00+08:00", "2026-06-01T09:00:00+08:00"


class Reads:
    def __init__(self, rows):
        self.rows = rows

    def cockpit_rows(self):
        return self.rows

    def latest(self):
        return self.rows

    def history(self, lead_id):
        return [r for r in self.rows if r["lead_id"] == lead_id]


def leads(rows):
    return [cockpit.load(r) for r in rows]


def test_funnel_counts_steps_and_flags_the_worst() -> None:
    rows = [
        row(1, "a", as_of=T1, created=T0, stages=[("2026-05-02T09:00:00+08:00", "初步接触"), ("2026-05-06T09:00:00+08:00", "需求确认")]),
        row(2, "b", as_of=T1, created=T0, stages=[("2026-05-03T09:00:00+08:00", "初步接触")]),
        row(3, "c", as_of=T1, created=T0, stages=[("2026-05-03T09:00:00+08:00", "初步接触"), ("2026-05-20T09:00:00+08:00", "丢单")]),
        row(4, "d", as_of=T1, created=T0),
        *[row(10 + k, f"e{k}", as_of=T1, created=T0, stages=[("2026-05-02T09:00:00+08:00", "报价")]) for k in range(2)],
    ]  # fmt: skip
    [brand] = cockpit.funnel(leads(rows))
    steps = {s["from"]: s for s in brand["steps"]}
    assert brand["leads"] == 6
    assert steps["新线索"]["reached"] == 6 and steps["新线索"]["next"] == 5  # d never moved; 报价 passes 初步接触
    assert steps["初步接触"]["next"] == 3 and steps["初步接触"]["median_days"] == 0.0  # a 4 days, e0 and e1 0
    assert steps["需求确认"]["reached"] == 3 and steps["需求确认"]["conversion"] == 2 / 3
    worst = [s for s in brand["steps"] if s["worst"]]
    assert len(worst) == 1 and worst[0]["from"] == "初步接触", "3 of 5 (60 %) is the lowest step with 5 leads"


def test_heat_map_rates_are_shares_of_leads_watched_that_long() -> None:
    call = {"ts": "2026-05-01T09:30:00+08:00", "channel": "电话"}
    quote = {"ts": "2026-05-02T21:00:00+08:00", "channel": "邮件", "attachment_type": "报价单"}
    rows = [
        row(1, "a", as_of=T1, created=T0, activities=[call, quote]),
        row(2, "b", as_of=T1, created=T0),
        row(3, "c", as_of="2026-05-01T12:00:00+08:00", created=T0, activities=[call]),  # watched 3 hours only
    ]
    heat = cockpit.heat_map(leads(rows))
    rates = dict(zip(heat["actions"], heat["rates"], strict=True))
    hours = heat["hours"]
    assert rates["电话"][hours.index(1)] == 2 / 3 and rates["电话"][hours.index(4)] == 1 / 2
    assert rates["报价单"][hours.index(24)] == 0 and rates["报价单"][hours.index(48)] == 1 / 2
    assert rates["邮件"][hours.index(48)] == 1 / 2 and rates["微信"][hours.index(72)] == 0


def test_data_health_flags_reps_below_70_and_today_lists_misses() -> None:
    overdue = {"lost_within_7d": 0.1, "lost_within_14d": 0.2, "lost_within_30d": 0.3, "level": "关注",
               "reasons": ["x"], "escalate_to": "manager", "threshold_7d": 0.6,
               "stalls": [{"kind": "overdue", "working_days": 2, "threshold": 1, "reason": "x", "escalate_to": "manager"}]}  # fmt: skip
    good_notes = [{"ts": T0, "note": "客户确认了预算和时间"}]
    rows = [
        row(1, "a", as_of=T1, created="2026-05-30T09:00:00+08:00", owner="rep-1", activities=[{"ts": T0, "note": "好"}],
            stage_evidence_missing=True, risk=overdue),
        row(2, "b", as_of=T1, created=T0, owner="rep-2", checklist=True, activities=good_notes),
    ]  # fmt: skip
    health = {h["owner"]: h for h in cockpit.data_health(leads(rows))}
    assert health["rep-1"]["evidence"] == 0 and health["rep-1"]["notes"] == 0 and health["rep-1"]["flagged"]
    assert health["rep-2"]["evidence"] == 100 and health["rep-2"]["notes"] == 100
    assert health["rep-2"]["score"] == (50 + 100 + 100 + 100) / 4 and not health["rep-2"]["flagged"]
    [today] = cockpit.today(leads(rows))
    assert (
        today["owner"] == "rep-1" and today["n_checklist"] == 1 and today["n_overdue"] == 1 and today["escalated"] == 1
    )


def test_action_effect_pairs_consecutive_scorings() -> None:
    finance = {"action": "finance", "title": "约财务", "reason": "r", "due": T1, "expected_gain": 2.0,
               "as_event": {"activities": [{"ts": T0, "channel": "电话", "contact_role": "财务"}], "lead": {}}}  # fmt: skip
    done = {"ts": "2026-05-20T09:00:00+08:00", "channel": "电话", "contact_role": "财务"}
    wrong = {"ts": "2026-05-20T09:00:00+08:00", "channel": "电话", "contact_role": "总经理"}
    rows = [
        row(1, "a", as_of=T0, created=T0, actions=[finance], win=0.30),
        row(5, "a", as_of=T1, created=T0, activities=[done], win=0.40),
        row(2, "b", as_of=T0, created=T0, actions=[finance], win=0.30),
        row(6, "b", as_of=T1, created=T0, activities=[wrong], win=0.28),
    ]
    [effect] = cockpit.action_effect(leads(rows))
    assert effect["recommended"] == 2 and effect["done_share"] == 0.5
    assert abs(effect["change_done"] - 10.0) < 1e-9 and abs(effect["change_not"] + 2.0) < 1e-9
    page = cockpit.build(Reads(rows))
    assert page["leads"] == 2 and page["effect"][0]["action"] == "finance"
    assert all(chart.startswith("{") for chart in page["charts"].values())


def test_sources_count_invalid_leads_and_30_day_wins() -> None:
    spam = {"duplicate": False, "phone_invalid": False, "phone_missing": False, "spam_text": True,
            "job_seeker_text": False, "competitor_email": False, "duplicate_of": None}  # fmt: skip
    rows = [
        row(1, "a", as_of=T1, created=T0, stages=[("2026-05-20T09:00:00+08:00", "赢单")]),
        row(2, "b", as_of=T1, created=T0, screening=spam),
        row(3, "c", as_of=T1, created="2026-05-25T09:00:00+08:00", channel="抖音"),  # 7 days old: win unknown
    ]
    out = {r["name"]: r for r in cockpit.sources(leads(rows), "channel")["rows"]}
    assert (
        out["官网表单"]["leads"] == 2 and out["官网表单"]["invalid_share"] == 0.5 and out["官网表单"]["win_30d"] == 0.5
    )
    assert out["抖音"]["win_30d"] is None


def test_the_manager_pages_read_the_same_from_the_summary_as_from_whole_answers(tmp_path) -> None:
    """Rows logged with their summary, and the same rows as an earlier version logged them (no summary), render
    the same cockpit, lead list and team view; the summary leaves out what those pages do not read."""
    risk = {"lost_within_7d": 0.7, "lost_within_14d": 0.8, "lost_within_30d": 0.9, "level": "高危",
            "reasons": ["7天内丢单概率70%"], "escalate_to": "manager", "threshold_7d": 0.6,
            "stalls": [{"kind": "overdue", "working_days": 3, "threshold": 1, "reason": "逾期", "escalate_to": "manager"}]}  # fmt: skip
    finance = {"action": "finance", "title": "约财务", "reason": "r", "due": T1, "expected_gain": 2.0,
               "as_event": {"activities": [{"ts": T0, "channel": "电话", "contact_role": "财务"}], "lead": {}}}  # fmt: skip
    call = {
        "ts": "2026-05-20T09:00:00+08:00",
        "channel": "电话",
        "contact_role": "财务",
        "note": "客户确认了预算，电话13812345678",
    }
    sent = {
        "a": {"owner_id": "rep-1", "created_at": T0, "customer_type": "品牌方", "channel": "官网表单",
              "activities": [call], "stage_changes": [{"ts": "2026-05-02T09:00:00+08:00", "stage": "初步接触"}]},
        "b": {"owner_id": "rep-2", "created_at": T0, "customer_type": "经销商", "channel": "抖音",
              "activities": [{"ts": T0, "channel": "微信", "note": "好"}]},
    }  # fmt: skip
    log = PredictionLog(f"sqlite:///{tmp_path / 'predictions.db'}")
    log.write(
        "r1", "score", [lead_answer(k, as_of=T0, next_actions=[finance], win_probability=0.3) for k in sent], sent
    )
    later = [lead_answer("a", as_of=T1, risk=risk, win_probability=0.5), lead_answer("b", as_of=T1)]
    log.write("r2", "score", later, sent)

    def shown() -> list[str]:
        pages = [page.cockpit_page(log), page.lead_list(log, {}), page.team_page(log)]
        return [re.sub(r"生成于 [0-9: -]+", "", html) for html in pages]

    with_part = shown()
    with log.engine.begin() as connection:
        parts = [json.loads(p) for p in connection.execute(select(predictions.c.summary)).scalars()]
        connection.execute(text("UPDATE predictions SET summary = NULL"))
    assert shown() == with_part
    assert "高危" in with_part[0] and "约财务" in with_part[0] and "13812345678" not in with_part[0]
    assert "rep-2" in with_part[2]
    first = parts[0]
    assert "explanation" not in first["answer"] and "probabilities" not in first["answer"]["stage"]
    assert first["events"]["activities"] == [
        {"ts": call["ts"], "channel": "电话", "contact_role": "财务", "note": "客户确认了"}
    ]
