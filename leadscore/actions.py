"""Next actions: the seeds' playbook proposes, the health model ranks by what-if re-scoring.

Each playbook rule says when an action applies (from the lead's features and inferred stage), why, and by
when. Its expected gain is the health model's score after the action minus the score now: the lead's
feature row is edited the way the action would change it (a WeChat touch adds a 微信 activity today, a
finance contact sets the 财务 role) and scored again. docs/actions.md argues the design and reports how
the ranking does against the simulator's true counterfactual effects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.followup import STAGE_EVIDENCE, STAGES
from leadscore.models.health import HealthModel

RANK = {stage: i for i, stage in enumerate(STAGES)}
CLOSED = {"赢单", "丢单"}
# A rep who is doing well, for the what-if of a reassignment: a win rate and a workload typical of the
# better half of the simulated teams (docs/actions.md).
STRONG_REP_WIN_RATE, STRONG_REP_OPEN_LOAD = 0.25, 20.0


@dataclass(frozen=True)
class Lead:
    """What the playbook reads of one lead."""

    features: pd.Series
    stage: str | None  # inferred
    score: float
    nurture_below: float


@dataclass(frozen=True)
class Action:
    key: str
    title: str  # what to do
    due: pd.Timedelta  # from as_of
    reason: Callable[[Lead], str | None]  # why, or None when the rule does not apply
    edit: Callable[[pd.DataFrame], None]  # how the action changes the features (in place)
    simulator_action: str | None = None  # the simulator's action it is (for the counterfactual evaluation)


def _f(lead: Lead, name: str) -> float:
    value = lead.features[name]
    return float("nan") if pd.isna(value) else float(value)


def _touch(channel: str) -> Callable[[pd.DataFrame], None]:
    """An outbound activity through `channel` today."""

    def edit(x: pd.DataFrame) -> None:
        x[f"touches_{channel}"] += 1
        for name in ("activities_7d", "activities_30d", "activities_total", "outbound_30d"):
            x[name] += 1
        x["days_since_last_activity"] = 0.0
        x["untouched_hours"] = 0.0
        x["first_touch_hours"] = x["first_touch_hours"].fillna(x["days_since_created"] * 24)

    return edit


def _then(*edits: Callable[[pd.DataFrame], None]) -> Callable[[pd.DataFrame], None]:
    def edit(x: pd.DataFrame) -> None:
        for step in edits:
            step(x)

    return edit


def _set(**values: float) -> Callable[[pd.DataFrame], None]:
    def edit(x: pd.DataFrame) -> None:
        for name, value in values.items():
            x[name] = value

    return edit


def _reach(role: str) -> Callable[[pd.DataFrame], None]:
    def edit(x: pd.DataFrame) -> None:
        x["roles_reached"] += 1 - x[f"role_{role}_reached"]
        x[f"role_{role}_reached"] = 1.0

    return edit


def _add_evidence(x: pd.DataFrame) -> None:
    for stage, attachment in STAGE_EVIDENCE.items():
        x.loc[x["recorded_stage"].astype(object) == stage, f"has_{attachment}"] = 1.0
    x["stage_evidence_missing"] = 0.0


def _reassign(x: pd.DataFrame) -> None:
    x["owner_win_rate"] = np.maximum(x["owner_win_rate"].fillna(0), STRONG_REP_WIN_RATE)
    x["owner_open_load"] = np.minimum(x["owner_open_load"].fillna(STRONG_REP_OPEN_LOAD), STRONG_REP_OPEN_LOAD)


def _in_stages(lead: Lead, low: str, high: str) -> bool:
    return lead.stage is not None and RANK[low] <= RANK.get(lead.stage, -1) <= RANK[high]


def _why_checklist(lead: Lead) -> str | None:
    hours = _f(lead, "days_since_created") * 24
    if hours <= 2 and not _f(lead, "checklist_complete"):
        return f"新线索创建{hours:.1f}小时，黄金响应清单（2小时内首电、加微信、标注需求）未完成"
    return None


def _why_wechat(lead: Lead) -> str | None:
    return "还没有通过微信联系过客户" if _f(lead, "touches_微信") == 0 else None


def _why_role(role: str, zh: str) -> Callable[[Lead], str | None]:
    def why(lead: Lead) -> str | None:
        if _f(lead, f"role_{role}_reached") == 0 and _in_stages(lead, "需求确认", "合同谈判"):
            return f"已到{lead.stage}阶段，决策链中还没有接触{zh}"
        return None

    return why


def _why_no_update(lead: Lead) -> str | None:
    days = _f(lead, "days_since_last_activity")
    if days >= 7 or (np.isnan(days) and _f(lead, "days_since_created") >= 7):
        return f"已{days:.0f}天没有跟进记录" if days == days else "创建7天以上仍无跟进记录"
    return None


def _why_stage_held(lead: Lead) -> str | None:
    days = _f(lead, "days_in_recorded_stage")
    if days >= 7 and lead.features["recorded_stage"] not in CLOSED:
        return f"在{lead.features['recorded_stage']}阶段已停留{days:.0f}天（超过5个工作日）"
    return None


def _why_evidence(lead: Lead) -> str | None:
    if _f(lead, "stage_evidence_missing"):
        stage = lead.features["recorded_stage"]
        return f"记录阶段{stage}缺少佐证附件（{STAGE_EVIDENCE.get(stage, '')}）"
    return None


def _why_overdue(lead: Lead) -> str | None:
    if _f(lead, "next_action_overdue"):
        return f"计划的下一步已逾期{_f(lead, 'next_action_overdue_days'):.0f}天"
    return None


def _why_demo(lead: Lead) -> str | None:
    if _f(lead, "touches_演示") > 0 or _f(lead, "has_演示确认单") > 0:
        return None
    signals = []
    if _f(lead, "pricing_views_7d") >= 2:
        signals.append(f"近7天看了{_f(lead, 'pricing_views_7d'):.0f}次价格页")
    if _f(lead, "form_kw_demo") + _f(lead, "notes_kw_demo") > 0:
        signals.append("留言或跟进记录提到演示")
    if _in_stages(lead, "初步接触", "样品验证"):
        signals.append(f"处于{lead.stage}阶段")
    return "意向信号强（" + "，".join(signals) + "），尚未做技术演示" if signals else None


def _why_sample(lead: Lead) -> str | None:
    if lead.stage == "样品验证" and _f(lead, "has_测试报告") == 0:
        return "处于样品验证阶段，还没有测试报告"
    return None


def _why_reassign(lead: Lead) -> str | None:
    rate, load = _f(lead, "owner_win_rate"), _f(lead, "owner_open_load")
    if lead.score < lead.nurture_below:
        return None
    if load > 3 * STRONG_REP_OPEN_LOAD:
        return f"负责销售手上在跟{load:.0f}条线索，跟不过来"
    if rate < 0.05 and _f(lead, "owner_closed_deals") >= 10:
        return f"负责销售近180天赢单率仅{rate:.0%}"
    return None


def _why_nurture(lead: Lead) -> str | None:
    days = _f(lead, "days_since_last_activity")
    if lead.score < lead.nurture_below and days >= 14:
        return (
            f"健康分{lead.score:.0f}低于培育线{lead.nurture_below:.0f}，且{days:.0f}天无互动：转入培育池，释放跟进精力"
        )
    return None


HOUR, DAY = pd.Timedelta(hours=1), pd.Timedelta(days=1)
# The seeds' playbook, in its own priority order (which the rules-only ranking uses): the golden response
# checklist first (adding WeChat is one of its items, still owed after the first two hours), then the
# missing decision-chain roles, the follow-up rules, the demo and sample, reassignment, nurture.
PLAYBOOK: list[Action] = [
    Action("golden_checklist", "完成黄金响应清单：首电、加微信、标注需求", 2 * HOUR, _why_checklist,
           _then(_touch("电话"), _touch("微信"), _set(checklist_first_call=1.0, checklist_wechat=1.0,
                                                    checklist_need_tagged=1.0, checklist_complete=1.0))),
    Action("wechat", "添加客户微信并发送资料", DAY, _why_wechat, _touch("微信"), "wechat"),
    Action("finance", "约财务沟通预算与付款方式", 7 * DAY, _why_role("finance", "财务"),
           _then(_touch("电话"), _reach("finance")), "finance"),
    Action("decision_maker", "约见决策人", 7 * DAY, _why_role("decision", "决策人"),
           _then(_touch("拜访"), _reach("decision")), "decision_maker"),
    Action("follow_up", "今天回访客户，更新跟进记录", DAY, _why_no_update, _touch("电话")),
    Action("stage_review", "复盘卡点，约客户开会推进到下一阶段", 2 * DAY, _why_stage_held, _touch("会议")),
    Action("add_evidence", "补充本阶段的佐证附件", 2 * DAY, _why_evidence, _add_evidence),
    Action("overdue", "完成已逾期的下一步计划", DAY, _why_overdue,
           _then(_touch("电话"), _set(next_action_overdue=0.0, next_action_overdue_days=0.0))),
    Action("demo", "48小时内安排技术演示", 2 * DAY, _why_demo,
           _then(_touch("演示"), _set(has_演示确认单=1.0)), "demo"),
    Action("sample", "寄送样品并安排测试", 3 * DAY, _why_sample,
           _then(_touch("拜访"), _set(has_测试报告=1.0)), "sample"),
    Action("reassign", "转给有余力、赢单率高的销售", DAY, _why_reassign, _reassign),
    Action("nurture", "转入培育池，定期自动触达", 7 * DAY, _why_nurture, lambda x: None),
]  # fmt: skip
ACTIONS = {action.key: action for action in PLAYBOOK}


def candidates(features: pd.DataFrame, stages: list[str | None], scores: np.ndarray, nurture_below: float):
    """(row, action, reason) for every playbook rule that applies; closed leads get none."""
    out = []
    for i in range(len(features)):
        if stages[i] in CLOSED:
            continue
        lead = Lead(features.iloc[i], stages[i], float(scores[i]), nurture_below)
        out += [(i, action, why) for action in PLAYBOOK if (why := action.reason(lead))]
    return out


def expected_gains(health: HealthModel, features: pd.DataFrame, proposed) -> np.ndarray:
    """Health points each proposed (row, action) would add: the edited row's score minus the row's score,
    all edited rows scored in one call."""
    if not proposed:
        return np.zeros(0)
    rows = [i for i, _, _ in proposed]
    edited = features.iloc[rows].copy().reset_index(drop=True)
    before = health.predict(edited)
    for action in {a.key: a for _, a, _ in proposed}.values():
        mask = np.array([a.key == action.key for _, a, _ in proposed])
        part = edited.loc[mask].copy()
        action.edit(part)
        edited.loc[mask, part.columns] = part
    return 100 * (health.predict(edited) - before)


def recommend(
    health: HealthModel,
    features: pd.DataFrame,
    stages: list[str | None],
    scores: np.ndarray,
    as_of: pd.Series,
    nurture_below: float,
) -> list[list[dict[str, object]]]:
    """Per lead, the applicable actions ranked by expected gain (playbook order breaks ties; returning
    to nurture is always last): what, why, by when, and the gain in health points."""
    proposed = candidates(features, stages, scores, nurture_below)
    gains = expected_gains(health, features, proposed)
    as_of = pd.to_datetime(as_of).reset_index(drop=True)
    per_lead: list[list[dict[str, object]]] = [[] for _ in range(len(features))]
    order = {a.key: k for k, a in enumerate(PLAYBOOK)}
    for (i, action, why), gain in zip(proposed, gains, strict=True):
        per_lead[i].append(
            {
                "action": action.key,
                "title": action.title,
                "reason": why,
                "due": (as_of.iat[i] + action.due).isoformat(),
                "expected_gain": round(float(gain), 2),
            }
        )
    for actions in per_lead:
        actions.sort(key=lambda a: (a["action"] == "nurture", -a["expected_gain"], order[a["action"]]))
    return per_lead
