"""Next actions: the seeds' playbook proposes, the health model ranks by what-if re-scoring of events.

Each playbook rule says when an action applies (from the lead's features and inferred stage), why, by when,
and what doing it would add to the CRM: contract rows (a call to 财务 today, a demo with its confirmation, a
sample shipped with its test report) or, for a reassignment, the lead's new owner. Its expected gain is the
health score of the lead with those rows appended minus its score without, computed by the same feature
pipeline (so every feature derived from them, LAI and the radar axes included, moves as it would), all
candidates of a batch in one pass. Each served action carries its event (`as_event`): a client that appends
it and re-scores gets the expected gain back. docs/actions.md argues the design and reports how the ranking
does against the simulator's true counterfactual effects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CLOSED_STAGE, EVENT_TABLES, STAGE_EVIDENCE, STAGE_RANK, validate_table
from features.followup import OWNER_COLUMNS, OwnerHistory, owner_features
from features.pipeline import FeaturePipeline, owner_history
from models.health import HealthModel

CLOSED = set(CLOSED_STAGE.values())
# An owner past this many open leads cannot follow them all (3x a workload typical of the simulated teams,
# docs/actions.md); a rep's record is trusted from this many closed deals in the window.
OVERLOADED, STRONG_REP_MIN_CLOSED = 60.0, 10
_VARIANT = "\x1e"  # joins a lead id and a candidate number in the what-if tables


@dataclass(frozen=True)
class Lead:
    """What the playbook reads of one lead."""

    features: Mapping[str, object]  # its row of the pipeline's output
    stage: str | None  # inferred
    score: float
    nurture_below: float
    owner: str | None = None


@dataclass(frozen=True)
class Event:
    """What doing an action adds: activities rows (without lead_id; `ts` is filled with as_of) and fields of
    the lead's own row to set."""

    activities: tuple[dict[str, object], ...] = ()
    lead: tuple[tuple[str, object], ...] = ()

    def at(self, as_of: pd.Timestamp) -> dict[str, object]:
        """As the answer carries it: rows stamped `as_of`, ready to append to the lead's lists."""
        stamp = as_of.isoformat()
        lead = {k: (stamp if v is _AS_OF else v) for k, v in self.lead}
        return {"activities": [{"ts": stamp, **row} for row in self.activities], "lead": lead}


_AS_OF = object()  # a lead field set to the time of the action (assigned_at)


@dataclass(frozen=True)
class Action:
    key: str
    title: str  # what to do
    due: pd.Timedelta  # from as_of
    reason: Callable[[Lead], str | None]  # why, or None when the rule does not apply
    event: Callable[[Lead], Event | None]  # what doing it adds (None: nothing a score can see)
    simulator_action: str | None = None  # the simulator's action it is (for the counterfactual evaluation)


def _f(lead: Lead, name: str) -> float:
    value = lead.features[name]
    return float("nan") if pd.isna(value) else float(value)


def _touch(channel: str, **fields: object) -> Callable[[Lead], Event]:
    """An outbound activity through `channel` today, with more of its fields (e.g. the contact's role)."""
    row = {"channel": channel, "direction": "outbound", "actor_role": "销售", **fields}
    return lambda lead: Event(activities=(row,))


def _golden_checklist(lead: Lead) -> Event:
    """The three items of the checklist: a first call whose note tags the need, and a WeChat contact."""
    call = {"channel": "电话", "direction": "outbound", "actor_role": "销售", "note": "首次电话沟通，已标注客户需求"}
    wechat = {"channel": "微信", "direction": "outbound", "actor_role": "销售"}
    return Event(activities=(call, wechat))


def _evidence(lead: Lead) -> Event | None:
    attachment = STAGE_EVIDENCE.get(lead.features["recorded_stage"])
    if attachment is None:
        return None
    return Event(activities=({"channel": "邮件", "direction": "outbound", "actor_role": "销售",
                              "attachment_type": attachment},))  # fmt: skip


def _in_stages(lead: Lead, low: str, high: str) -> bool:
    return lead.stage is not None and STAGE_RANK[low] <= STAGE_RANK.get(lead.stage, -1) <= STAGE_RANK[high]


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
    if load > OVERLOADED:
        return f"负责销售手上在跟{load:.0f}条线索，跟不过来"
    if rate < 0.05 and _f(lead, "owner_closed_deals") >= STRONG_REP_MIN_CLOSED:
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
# missing decision-chain roles, the follow-up rules, the demo and sample, reassignment, nurture. The
# reassignment's event (the new owner) is filled by `propose`, which knows the team.
PLAYBOOK: list[Action] = [
    Action("golden_checklist", "完成黄金响应清单：首电、加微信、标注需求", 2 * HOUR, _why_checklist, _golden_checklist),
    Action("wechat", "添加客户微信并发送资料", DAY, _why_wechat, _touch("微信"), "wechat"),
    Action("finance", "约财务沟通预算与付款方式", 7 * DAY, _why_role("finance", "财务"),
           _touch("电话", contact_role="财务"), "finance"),
    Action("decision_maker", "约见决策人", 7 * DAY, _why_role("decision", "决策人"),
           _touch("拜访", contact_role="总经理"), "decision_maker"),
    Action("follow_up", "今天回访客户，更新跟进记录", DAY, _why_no_update, _touch("电话")),
    Action("stage_review", "复盘卡点，约客户开会推进到下一阶段", 2 * DAY, _why_stage_held, _touch("会议")),
    Action("add_evidence", "补充本阶段的佐证附件", 2 * DAY, _why_evidence, _evidence),
    Action("overdue", "完成已逾期的下一步计划", DAY, _why_overdue, _touch("电话")),
    Action("demo", "48小时内安排技术演示", 2 * DAY, _why_demo,
           _touch("演示", actor_role="售前", attachment_type="演示确认单"), "demo"),
    Action("sample", "寄送样品并安排测试", 3 * DAY, _why_sample, _touch("拜访", attachment_type="测试报告"), "sample"),
    Action("reassign", "转给有余力、赢单率高的销售", DAY, _why_reassign, lambda lead: None),
    Action("nurture", "转入培育池，定期自动触达", 7 * DAY, _why_nurture, lambda lead: None),
]  # fmt: skip
ACTIONS = {action.key: action for action in PLAYBOOK}


@dataclass
class Proposal:
    """One applicable action for one snapshot (row), with its reason and event."""

    row: int
    action: Action
    reason: str
    event: Event | None


def propose(
    pipeline: FeaturePipeline,
    features: pd.DataFrame,
    stages: list[str | None],
    scores: np.ndarray,
    snapshots: pd.DataFrame,
    owners: pd.Series,
    nurture_below: float,
) -> list[Proposal]:
    """Every playbook rule that applies to each snapshot (`owners`: each snapshot's lead's owner); closed
    leads get none. A reassignment names the strongest rep of the team with room, or is dropped."""
    out = []
    as_of = pd.to_datetime(snapshots["as_of"]).reset_index(drop=True)
    owners = owners.reset_index(drop=True)
    rows = features.to_dict("records")  # a lookup in a dict, not in a pandas row: the rules read many fields
    for i in range(len(features)):
        if stages[i] in CLOSED:
            continue
        owner = None if pd.isna(owners.iat[i]) else str(owners.iat[i])
        lead = Lead(rows[i], stages[i], float(scores[i]), nurture_below, owner)
        for action in PLAYBOOK:
            if why := action.reason(lead):
                event = action.event(lead)
                if action.key == "reassign":
                    rep = strongest_rep(pipeline, lead, as_of.iat[i])
                    if rep is None:
                        continue
                    event = Event(lead=(("owner_id", rep), ("assigned_at", _AS_OF)))
                out.append(Proposal(i, action, why, event))
    return out


def strongest_rep(pipeline: FeaturePipeline, lead: Lead, as_of: pd.Timestamp) -> str | None:
    """The rep with the best recent win rate among those with a record (STRONG_REP_MIN_CLOSED deals closed in
    the window) and room (open load at most the team's median), in the training history as of `as_of`; None
    when no such rep wins more often than the lead's own owner."""
    reps = pd.Series(pipeline.history_["owner_id"].dropna().unique(), dtype=object)
    if reps.empty:
        return None
    figures = pipeline.owner_figures(
        reps, pd.Series([lead.features["industry"]] * len(reps), dtype=object), pd.Series([as_of] * len(reps))
    )
    load = figures["owner_open_load"]
    able = (figures["owner_closed_deals"] >= STRONG_REP_MIN_CLOSED) & (load <= load.median())
    able &= (reps != lead.owner).to_numpy()
    if not able.any():
        return None
    best = figures.loc[able.to_numpy(), "owner_win_rate"].idxmax()
    own_rate = lead.features["owner_win_rate"]
    if pd.notna(own_rate) and figures.loc[best, "owner_win_rate"] <= own_rate:
        return None
    return str(reps.iat[best])


OwnerContext = Callable[[int, str], np.ndarray]  # (snapshot row, new owner) -> its OWNER_COLUMNS values


def owners_moved(pipeline: FeaturePipeline, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> OwnerContext:
    """The owner figures of a snapshot's lead if it moved to another owner, as a client that re-scores these
    tables with the lead's owner_id changed would see them: the new owner's figures from the same histories
    the context adds up, plus the lead itself under the new owner (the old owner's figures are not read). The
    histories are indexed on the first call only: most scorings move no lead."""
    parts: list[tuple] = []

    def figures(row: int, owner: str) -> np.ndarray:
        if not parts:
            parts.extend(pipeline.owner_parts(tables))
        return moved_owner_figures(pipeline, tables, snapshots, row, [owner], parts)[0]

    return figures


def moved_owner_figures(
    pipeline: FeaturePipeline,
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    row: int,
    owners: list[str],
    parts: list[tuple] | None = None,
) -> np.ndarray:
    """OWNER_COLUMNS of snapshot `row`'s lead with each of `owners` as its new owner (one row each, one pass):
    each owner's figures from the histories the context adds up (`parts`, default `pipeline.owner_parts`), plus
    the lead itself under that owner. One copy of the lead per owner is exact: an owner's figures count only
    the copy that names them."""
    parts = parts if parts is not None else pipeline.owner_parts(tables)
    leads = owner_history(tables)
    lead = leads[leads["lead_id"] == snapshots["lead_id"].iat[row]].iloc[[0]]
    mine = lead.iloc[np.zeros(len(owners), dtype=int)].reset_index(drop=True).assign(owner_id=list(owners))
    as_of = pd.Series([snapshots["as_of"].iat[row]] * len(owners))
    moved = owner_features([*parts, (OwnerHistory(mine), 1)], mine["owner_id"], mine["industry"], as_of)
    return moved[OWNER_COLUMNS].to_numpy()


def what_if_features(
    pipeline: FeaturePipeline,
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    context: pd.DataFrame,
    proposals: list[Proposal],
    owner_context: OwnerContext | None = None,
) -> pd.DataFrame:
    """The features of each proposal's lead with its event appended (one row per proposal with an event, in
    order), all through the pipeline in one pass: every event is added to a copy of its lead in one set of
    what-if tables. `owner_context` gives a moved lead's owner figures (default `owners_moved` on `tables`)."""
    scored = [k for k, p in enumerate(proposals) if p.event is not None]
    snapshots = snapshots.reset_index(drop=True)
    as_of = pd.to_datetime(snapshots["as_of"])
    rows = np.array([proposals[k].row for k in scored], dtype=int)
    variant = np.array([f"{snapshots['lead_id'].iat[r]}{_VARIANT}{k}" for r, k in zip(rows, scored, strict=True)])
    lead_ids = snapshots["lead_id"].to_numpy(object)[rows]
    position = pd.Series(np.arange(len(tables["leads"])), index=tables["leads"]["lead_id"].to_numpy())
    leads = tables["leads"].iloc[position.loc[lead_ids].to_numpy()].reset_index(drop=True)
    leads["lead_id"] = variant
    variant_tables = {"leads": leads, "outcomes": tables["outcomes"].iloc[0:0]}
    for name in EVENT_TABLES:
        table = tables[name]
        by_lead = table.groupby("lead_id", sort=False).indices
        parts = [by_lead.get(lead_id, np.array([], dtype=int)) for lead_id in lead_ids]
        own = table.iloc[np.concatenate(parts)] if parts else table.iloc[0:0]
        variant_tables[name] = own.assign(lead_id=np.repeat(variant, [len(p) for p in parts]))
    appended = [
        {**row, "lead_id": variant[j]}
        for j, k in enumerate(scored)
        for row in proposals[k].event.at(as_of.iat[rows[j]])["activities"]
    ]
    if appended:  # typed by the contract, as the rows a client appends would be
        new_rows = validate_table("activities", pd.DataFrame(appended)).tables["activities"]
        variant_tables["activities"] = pd.concat([variant_tables["activities"], new_rows], ignore_index=True)
    variant_context = context.reset_index(drop=True).iloc[rows].reset_index(drop=True).copy()
    owner_context = owner_context or owners_moved(pipeline, tables, snapshots)
    moved = [(j, dict(proposals[k].event.lead).get("owner_id")) for j, k in enumerate(scored)]
    moved = [(j, str(owner)) for j, owner in moved if owner is not None]
    if moved:  # the owner figures a client sees after moving the lead (all else is equal)
        figures = np.array([owner_context(int(rows[j]), owner) for j, owner in moved], dtype=float)
        variant_context.loc[[j for j, _ in moved], OWNER_COLUMNS] = figures
    variant_snapshots = pd.DataFrame({"lead_id": variant, "as_of": as_of.iloc[rows].to_numpy()})
    return pipeline.transform(variant_tables, variant_snapshots, context=variant_context)


def what_if_gains(
    pipeline: FeaturePipeline,
    health: HealthModel,
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    context: pd.DataFrame,
    proposals: list[Proposal],
    probability: np.ndarray,
    owner_context: OwnerContext | None = None,
) -> np.ndarray:
    """Health points each proposal's event would add: the score of its lead with the event appended
    (`what_if_features`) minus the lead's score now; 0 for a proposal without an event."""
    gains = np.zeros(len(proposals))
    scored = [k for k, p in enumerate(proposals) if p.event is not None]
    if scored:
        features = what_if_features(pipeline, tables, snapshots, context, proposals, owner_context)
        rows = np.array([proposals[k].row for k in scored], dtype=int)
        gains[scored] = 100 * (health.predict(features) - np.asarray(probability)[rows])
    return gains


def recommend(
    pipeline: FeaturePipeline,
    health: HealthModel,
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    context: pd.DataFrame,
    features: pd.DataFrame,
    stages: list[str | None],
    probability: np.ndarray,
    nurture_below: float,
    owner_context: OwnerContext | None = None,
) -> list[list[dict[str, object]]]:
    """Per lead, the applicable actions ranked by expected gain (playbook order breaks ties; returning to
    nurture is always last): what, why, by when, the gain in health points and the event that earns it."""
    scores = 100 * np.asarray(probability)
    owners = snapshots["lead_id"].map(tables["leads"].set_index("lead_id")["owner_id"])
    proposals = propose(pipeline, features, stages, scores, snapshots, owners, nurture_below)
    gains = what_if_gains(pipeline, health, tables, snapshots, context, proposals, probability, owner_context)
    as_of = pd.to_datetime(snapshots["as_of"]).reset_index(drop=True)
    per_lead: list[list[dict[str, object]]] = [[] for _ in range(len(features))]
    order = {a.key: k for k, a in enumerate(PLAYBOOK)}
    for proposal, gain in zip(proposals, gains, strict=True):
        when = as_of.iat[proposal.row]
        per_lead[proposal.row].append(
            {
                "action": proposal.action.key,
                "title": proposal.action.title,
                "reason": proposal.reason,
                "due": (when + proposal.action.due).isoformat(),
                "expected_gain": round(float(gain), 2),
                "as_event": None if proposal.event is None else proposal.event.at(when),
            }
        )
    for actions in per_lead:
        actions.sort(key=lambda a: (a["action"] == "nurture", -a["expected_gain"], order[a["action"]]))
    return per_lead
