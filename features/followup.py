"""Follow-up history as of T: first touch, touches by channel and direction, recency, decision-chain roles,
stage evidence, overdue next actions, the recorded stage and how long it is held, and the owner's
point-in-time figures (past win rate, open load, wins in this industry)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import TABLES
from features.pointintime import EventIndex, lead_codes

DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)
ACTIVITY_CHANNELS = list(TABLES["activities"].fields[4].choices)
ATTACHMENTS = list(TABLES["activities"].fields[9].choices)
STAGES = list(TABLES["stage_changes"].fields[2].choices)
# Decision-chain roles, recognised in contact_role (free text in real CRMs) by keywords.
ROLE_KEYWORDS = {
    "finance": "财务|会计|出纳",
    "decision": "总经理|院长|老板|董事|总裁|厂长|决策|总监",
    "technical": "技术|工程|设备科|研发",
    "purchasing": "采购|招标办|供应",
}
NEED_NOTE = "需求|参数|预算|数量|型号|规格|采购时间|用途|配置"
# The attachment that evidences a recorded stage (seeds' stage evidence check).
STAGE_EVIDENCE = {"方案沟通": "方案", "报价": "报价单", "招标比价": "技术协议", "合同谈判": "合同", "赢单": "付款凭证"}


def _values_at(column: pd.Series, rows: np.ndarray) -> pd.Series:
    """column[rows] with -1 meaning missing."""
    return column.reset_index(drop=True).reindex(rows).reset_index(drop=True)


def followup_features(
    acts: pd.DataFrame,
    act_codes: np.ndarray,
    stages: pd.DataFrame,
    stage_codes: np.ndarray,
    code: np.ndarray,
    as_of: pd.Series,
    created: pd.Series,
) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    ts = acts["ts"]
    everything = EventIndex(act_codes, ts)
    outbound_mask = (acts["direction"] != "inbound").to_numpy()
    outbound = EventIndex(act_codes, ts, outbound_mask)
    first = outbound.first_row(code, as_of)
    first_ts = _values_at(ts, first)
    waited = ((as_of - created) / HOUR).to_numpy(float)
    out["first_touch_hours"] = ((first_ts - created) / HOUR).to_numpy(float)
    out["untouched_hours"] = np.where(first < 0, waited, 0.0)
    for days in (7, 30):
        out[f"activities_{days}d"] = everything.count_between(code, as_of - days * DAY, as_of)
    out["activities_total"] = everything.count_until(code, as_of)
    out["inbound_30d"] = EventIndex(act_codes, ts, ~outbound_mask).count_between(code, as_of - 30 * DAY, as_of)
    out["outbound_30d"] = outbound.count_between(code, as_of - 30 * DAY, as_of)
    last = everything.last_row(code, as_of)
    out["days_since_last_activity"] = ((as_of - _values_at(ts, last)) / DAY).to_numpy(float)
    channel = acts["channel"].to_numpy(object)
    for name in ACTIVITY_CHANNELS:
        out[f"touches_{name}"] = EventIndex(act_codes, ts, channel == name).count_until(code, as_of)
    out["call_minutes_total"] = (
        everything.sum_between(acts["duration_seconds"].to_numpy(float), code, created - DAY, as_of) / 60
    )

    # Golden response checklist: first call, WeChat added and need tagged within 2 hours of creation.
    note = acts["note"].fillna("").astype(str)
    window_start, window_end = created - pd.Timedelta(seconds=1), np.minimum(created + 2 * HOUR, as_of)
    checks = {
        "checklist_first_call": (channel == "电话") & outbound_mask,
        "checklist_wechat": (channel == "微信") | note.str.contains("微信").to_numpy(),
        "checklist_need_tagged": note.str.contains(NEED_NOTE).to_numpy(),
    }
    for name, mask in checks.items():
        out[name] = (EventIndex(act_codes, ts, mask).count_between(code, window_start, window_end) > 0).astype(float)
    out["checklist_complete"] = np.minimum.reduce([out[name] for name in checks])

    role = acts["contact_role"].fillna("").astype(str)
    reached = []
    for name, pattern in ROLE_KEYWORDS.items():
        flag = (EventIndex(act_codes, ts, role.str.contains(pattern).to_numpy()).count_until(code, as_of) > 0).astype(
            float
        )
        out[f"role_{name}_reached"] = flag
        reached.append(flag)
    out["roles_reached"] = np.sum(reached, axis=0)

    attachment = acts["attachment_type"].to_numpy(object)
    for name in ATTACHMENTS:
        out[f"has_{name}"] = (EventIndex(act_codes, ts, attachment == name).count_until(code, as_of) > 0).astype(float)

    planned = EventIndex(act_codes, ts, acts["next_action_due"].notna().to_numpy())
    last_plan = planned.last_row(code, as_of)
    plan_ts, plan_due = _values_at(ts, last_plan), _values_at(acts["next_action_due"], last_plan)
    nothing_since = everything.count_between(code, plan_ts.fillna(as_of), as_of) == 0
    overdue = (last_plan >= 0) & (plan_due < as_of).to_numpy() & nothing_since
    out["next_action_overdue"] = overdue.astype(float)
    out["next_action_overdue_days"] = np.where(overdue, ((as_of - plan_due) / DAY).to_numpy(float), 0.0)

    stage_index = EventIndex(stage_codes, stages["ts"])
    last_stage = stage_index.last_row(code, as_of)
    stage_name = _values_at(stages["stage"], last_stage)
    out["recorded_stage_rank"] = stage_name.map({s: i for i, s in enumerate(STAGES)}).to_numpy(float)
    out["days_in_recorded_stage"] = ((as_of - _values_at(stages["ts"], last_stage)) / DAY).to_numpy(float)
    out["stage_changes_total"] = stage_index.count_until(code, as_of)
    required = stage_name.map(STAGE_EVIDENCE)
    has_required = np.zeros(len(code), dtype=bool)
    for evidence in set(STAGE_EVIDENCE.values()):
        has_required |= (required == evidence).to_numpy() & (out[f"has_{evidence}"] > 0)
    out["stage_evidence_missing"] = (required.notna().to_numpy() & ~has_required).astype(float)
    frame = pd.DataFrame({k: np.asarray(v, float) for k, v in out.items()})
    frame["recorded_stage"] = stage_name.to_numpy(object)
    return frame


def owner_features(history: pd.DataFrame, owner: pd.Series, industry: pd.Series, as_of: pd.Series) -> pd.DataFrame:
    """The owner's figures as of T from a history of leads (lead_id, owner_id, industry, created_at,
    status, closed_at): past wins and losses, win rate, open load, and wins in this lead's industry."""
    owners = pd.Index(history["owner_id"].dropna().unique())
    code = lead_codes(owner.fillna("\0none"), owners)
    h_code = lead_codes(history["owner_id"].fillna("\0none"), owners)
    closed_at = history["closed_at"]
    won = (history["status"] == "won").to_numpy()
    lost = (history["status"] == "lost").to_numpy()
    wins = EventIndex(h_code, closed_at, won).count_until(code, as_of)
    losses = EventIndex(h_code, closed_at, lost).count_until(code, as_of)
    assigned = EventIndex(h_code, history["created_at"]).count_until(code, as_of)
    closed = EventIndex(h_code, closed_at, won | lost).count_until(code, as_of)
    combined = pd.Index((history["owner_id"].fillna("\0none") + "\x1f" + history["industry"].fillna("")).unique())
    pair = lead_codes(owner.fillna("\0none") + "\x1f" + industry.fillna(""), combined)
    h_pair = lead_codes(history["owner_id"].fillna("\0none") + "\x1f" + history["industry"].fillna(""), combined)
    industry_wins = EventIndex(h_pair, closed_at, won).count_until(pair, as_of)
    valid = code >= 0
    return pd.DataFrame(
        {
            # Smoothed towards a 15% prior so a rep with two closed deals is not "100%".
            "owner_win_rate": np.where(valid, (wins + 0.15 * 10) / (wins + losses + 10), np.nan),
            "owner_closed_deals": np.where(valid, wins + losses, np.nan).astype(float),
            "owner_open_load": np.where(valid, assigned - closed, np.nan).astype(float),
            "owner_industry_wins": np.where((pair >= 0) & valid, industry_wins, 0).astype(float),
        }
    )
