"""Follow-up history as of T: first touch, touches by channel and direction, recency, decision-chain roles,
stage evidence, overdue next actions, the recorded stage and how long it is held, and the owner's
point-in-time figures (past win rate, open load, wins in this industry)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import STAGE_EVIDENCE, STAGE_RANK, TABLES
from features.pointintime import EventIndex, as_of_seconds, lead_codes
from features.spec import FeatureSpec

DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)
ACTIVITY_CHANNELS = list(TABLES["activities"].choices_of("channel"))
ATTACHMENTS = list(TABLES["activities"].choices_of("attachment_type"))
# Decision-chain roles, recognised in contact_role (free text in real CRMs) by keywords.
ROLE_KEYWORDS = {
    "finance": "财务|会计|出纳",
    "decision": "总经理|院长|老板|董事|总裁|厂长|决策|总监",
    "technical": "技术|工程|设备科|研发",
    "purchasing": "采购|招标办|供应",
}
OWNER_WINDOW_DAYS = 180  # the owner's recent record
INDUSTRY_WINDOW_DAYS = 365
NEED_NOTE = "需求|参数|预算|数量|型号|规格|采购时间|用途|配置"
ROLE_ZH = {"finance": "财务", "decision": "决策人", "technical": "技术负责人", "purchasing": "采购"}
OWNER_SPECS = [
    FeatureSpec("owner_win_rate", "跟进", "负责销售近180天赢单率{v}"),
    FeatureSpec("owner_closed_deals", "跟进", "负责销售近180天结案{v}单"),
    FeatureSpec("owner_open_load", "跟进", "负责销售手上在跟{v}条线索"),
    FeatureSpec("owner_industry_wins", "跟进", "负责销售近一年在该行业赢单{v}单"),
]
OWNER_COLUMNS = [spec.name for spec in OWNER_SPECS]
SPECS = (
    [
        FeatureSpec("first_touch_hours", "跟进", "首次跟进用时{v}小时"),
        FeatureSpec("untouched_hours", "跟进", "已等待{v}小时仍未跟进"),
        FeatureSpec("activities_7d", "跟进", "近7天跟进{v}次"),
        FeatureSpec("activities_30d", "跟进", "近30天跟进{v}次"),
        FeatureSpec("activities_total", "跟进", "累计跟进{v}次"),
        FeatureSpec("inbound_30d", "跟进", "近30天客户主动联系{v}次"),
        FeatureSpec("outbound_30d", "跟进", "近30天销售主动联系{v}次"),
        FeatureSpec("days_since_last_activity", "跟进", "距上次跟进{v}天"),
        FeatureSpec("call_minutes_total", "跟进", "累计通话/拜访{v}分钟"),
    ]
    + [FeatureSpec(f"touches_{c}", "跟进", f"通过{c}跟进{{v}}次") for c in ACTIVITY_CHANNELS]
    + [FeatureSpec(f"role_{r}_reached", "跟进", f"已接触{ROLE_ZH[r]}(1=是):{{v}}") for r in ROLE_KEYWORDS]
    + [FeatureSpec("roles_reached", "跟进", "已接触决策链角色{v}类")]
    + [FeatureSpec(f"has_{a}", "跟进", f"已有{a}(1=是):{{v}}") for a in ATTACHMENTS]
    + [
        FeatureSpec("next_action_overdue", "跟进", "下一步计划已逾期(1=是):{v}"),
        FeatureSpec("next_action_overdue_days", "跟进", "下一步计划逾期{v}天"),
        FeatureSpec("recorded_stage", "跟进", "记录阶段:{v}", True),
        FeatureSpec("recorded_stage_rank", "跟进", "记录阶段序号{v}"),
        FeatureSpec("days_in_recorded_stage", "跟进", "当前阶段已停留{v}天"),
        FeatureSpec("stage_changes_total", "跟进", "阶段变更{v}次"),
    ]
)
# The seeds' golden response checklist and stage evidence check: computed here, read as rule indices.
RULE_SPECS = [
    FeatureSpec("checklist_first_call", "规则", "2小时内首电(1=是):{v}"),
    FeatureSpec("checklist_wechat", "规则", "2小时内加微信(1=是):{v}"),
    FeatureSpec("checklist_need_tagged", "规则", "2小时内标注需求(1=是):{v}"),
    FeatureSpec("checklist_complete", "规则", "黄金响应清单完成(1=是):{v}"),
    FeatureSpec("stage_evidence_missing", "规则", "记录阶段缺少佐证附件(1=是):{v}"),
]


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
    t = as_of_seconds(as_of)  # converted once; windows are whole days earlier
    w = {days: t - days * 86_400 for days in (7, 30)}
    ts = acts["ts"]
    everything = EventIndex(act_codes, ts)
    outbound_mask = (acts["direction"] != "inbound").to_numpy()
    outbound = everything.subset(outbound_mask)
    first = outbound.first_row(code, t)
    first_ts = _values_at(ts, first)
    waited = ((as_of - created) / HOUR).to_numpy(float)
    out["first_touch_hours"] = ((first_ts - created) / HOUR).to_numpy(float)
    out["untouched_hours"] = np.where(first < 0, waited, 0.0)
    for days in (7, 30):
        out[f"activities_{days}d"] = everything.count_between(code, w[days], t)
    out["activities_total"] = everything.count_until(code, t)
    out["inbound_30d"] = everything.subset(~outbound_mask).count_between(code, w[30], t)
    out["outbound_30d"] = outbound.count_between(code, w[30], t)
    last = everything.last_row(code, t)
    out["days_since_last_activity"] = ((as_of - _values_at(ts, last)) / DAY).to_numpy(float)
    channel = acts["channel"].to_numpy(object)
    for name in ACTIVITY_CHANNELS:
        out[f"touches_{name}"] = everything.subset(channel == name).count_until(code, t)
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
        out[name] = (everything.subset(mask).count_between(code, window_start, window_end) > 0).astype(float)
    out["checklist_complete"] = np.minimum.reduce([out[name] for name in checks])

    role = acts["contact_role"].fillna("").astype(str)
    reached = []
    for name, pattern in ROLE_KEYWORDS.items():
        flag = (everything.subset(role.str.contains(pattern).to_numpy()).count_until(code, t) > 0).astype(float)
        out[f"role_{name}_reached"] = flag
        reached.append(flag)
    out["roles_reached"] = np.sum(reached, axis=0)

    attachment = acts["attachment_type"].to_numpy(object)
    for name in ATTACHMENTS:
        out[f"has_{name}"] = (everything.subset(attachment == name).count_until(code, t) > 0).astype(float)

    planned = everything.subset(acts["next_action_due"].notna().to_numpy())
    last_plan = planned.last_row(code, t)
    plan_ts, plan_due = _values_at(ts, last_plan), _values_at(acts["next_action_due"], last_plan)
    nothing_since = everything.count_between(code, plan_ts.fillna(as_of), as_of) == 0
    overdue = (last_plan >= 0) & (plan_due < as_of).to_numpy() & nothing_since
    out["next_action_overdue"] = overdue.astype(float)
    out["next_action_overdue_days"] = np.where(overdue, ((as_of - plan_due) / DAY).to_numpy(float), 0.0)

    stage_index = EventIndex(stage_codes, stages["ts"])
    last_stage = stage_index.last_row(code, t)
    stage_name = _values_at(stages["stage"], last_stage)
    out["recorded_stage_rank"] = stage_name.map(STAGE_RANK).to_numpy(float)
    out["days_in_recorded_stage"] = ((as_of - _values_at(stages["ts"], last_stage)) / DAY).to_numpy(float)
    out["stage_changes_total"] = stage_index.count_until(code, t)
    required = stage_name.map(STAGE_EVIDENCE)
    has_required = np.zeros(len(code), dtype=bool)
    for evidence in set(STAGE_EVIDENCE.values()):
        has_required |= (required == evidence).to_numpy() & (out[f"has_{evidence}"] > 0)
    out["stage_evidence_missing"] = (required.notna().to_numpy() & ~has_required).astype(float)
    frame = pd.DataFrame({k: np.asarray(v, float) for k, v in out.items()})
    frame["recorded_stage"] = stage_name.to_numpy(object)
    return frame


class OwnerHistory:
    """Who owned which lead, its industry, when it came in and how it ended (lead_id, owner_id, industry,
    created_at, status, closed_at), indexed once for as-of counts per owner."""

    def __init__(self, history: pd.DataFrame) -> None:
        self.owners = pd.Index(history["owner_id"].dropna().unique())
        owner = history["owner_id"].fillna("\0none")
        code = lead_codes(owner, self.owners)
        won = (history["status"] == "won").to_numpy()
        lost = (history["status"] == "lost").to_numpy()
        closed = EventIndex(code, history["closed_at"], won | lost)
        self.wins, self.losses, self.closed = closed.subset(won), closed.subset(lost), closed
        self.assigned = EventIndex(code, history["created_at"])
        pair = owner + "\x1f" + history["industry"].fillna("")
        self.pairs = pd.Index(pair.unique())
        self.industry_wins = EventIndex(lead_codes(pair, self.pairs), history["closed_at"], won)

    def counts(self, owner: pd.Series, industry: pd.Series, t: np.ndarray) -> np.ndarray:
        """(wins and losses in the last 180 days, assigned and closed ever, wins in the industry in the last
        year) as of t. Windows keep the figures stationary: cumulative counts only grow with the calendar,
        and a model trained on earlier months would extrapolate them."""
        code = lead_codes(owner.fillna("\0none"), self.owners)
        pair = lead_codes(owner.fillna("\0none") + "\x1f" + industry.fillna(""), self.pairs)
        recent = t - OWNER_WINDOW_DAYS * 86_400
        figures = [
            self.wins.count_between(code, recent, t),
            self.losses.count_between(code, recent, t),
            self.assigned.count_until(code, t),
            self.closed.count_until(code, t),
        ]
        figures = [np.where(code >= 0, f, 0) for f in figures]
        industry_wins = self.industry_wins.count_between(pair, t - INDUSTRY_WINDOW_DAYS * 86_400, t)
        figures.append(np.where(pair >= 0, industry_wins, 0))
        return np.stack(figures, axis=1).astype(float)


def owner_features(parts: list[tuple], owner: pd.Series, industry: pd.Series, as_of: pd.Series) -> pd.DataFrame:
    """The owner's figures as of T, from histories added (+1) or taken away (-1): wins and losses in the
    last 180 days and the win rate over them, open load, and wins in this lead's industry in the last year.
    A part (history, sign, rows) with a boolean row mask counts for those rows only."""
    t = as_of_seconds(as_of)
    totals = np.zeros((len(owner), 5))
    for history, sign, *mask in parts:
        rows = mask[0] if mask and mask[0] is not None else np.ones(len(owner), dtype=bool)
        if rows.any():
            totals[rows] += sign * history.counts(owner[rows], industry[rows], t[rows])
    wins, losses, assigned, closed, industry_wins = totals.T
    known = owner.notna().to_numpy()
    return pd.DataFrame(
        {
            # Smoothed towards a 15% prior so a rep with two closed deals is not "100%".
            "owner_win_rate": np.where(known, (wins + 0.15 * 10) / (wins + losses + 10), np.nan),
            "owner_closed_deals": np.where(known, wins + losses, np.nan),
            "owner_open_load": np.where(known, assigned - closed, np.nan),
            "owner_industry_wins": np.where(known, industry_wins, 0.0),
        }
    )
