"""The manager's cockpit: the morning's three questions from the scored leads, server-rendered in Chinese.

Who missed what they should have done today (per rep), which step loses the most deals for which kind of
customer (the funnel by customer type x stage), which leads are about to be lost (the early warnings); then
data health per rep, the response heat map (hours since creation x action type), channel and campaign
quality, and the measured change in win probability after each next action (observational).

Everything is read through `LeadReads`, which the prediction log implements (its `summary` column keeps what
the manager pages read of each scoring: `summary`). Charts are plotly figures built here and drawn by
plotly.js, which the service serves from plotly's own wheel (no CDN: the service runs offline).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import plotly.graph_objects as go

from features.contract import STAGE_LADDER, STAGE_RANK, TIMEZONE
from features.text import mask_personal
from models.schema import LeadAnswer

FUNNEL = STAGE_LADDER[:9]  # 新线索 ... 合同谈判, 赢单
HEAT_HOURS = (1, 2, 4, 8, 24, 48, 72)  # the heat map's columns: done within this many hours of creation
HEAT_ACTIONS = {"电话": "call", "微信": "wechat", "邮件": "email", "报价单": "quote"}
HEALTH_FLAG = 70.0
NOTE_MIN_CHARS = 5
SHANGHAI = ZoneInfo(TIMEZONE)
DAY = timedelta(days=1)


class LeadReads(Protocol):
    """What the cockpit and score history read (the prediction log implements it)."""

    def latest(self) -> list[dict[str, Any]]: ...

    def history(self, lead_id: str) -> list[dict[str, Any]]: ...

    def cockpit_rows(self) -> list[dict[str, Any]]: ...


# The parts of an answer the cockpit, the lead list and the team view read (pydantic's nested `include`). The
# prediction log keeps them beside the whole answer, so those pages parse a small part of each row's JSON
# (bench.cockpit has the figures); a lead's own page reads the whole answer.
ANSWER_READ: dict[str, Any] = {
    "as_of": True, "health_score": True, "win_probability": True, "stage_evidence_missing": True,
    "activity_index": True, "close_date": {"won_within_30d", "won_within_60d", "won_within_90d"},
    "stage": {"recorded", "inferred", "mismatch"}, "golden_checklist": {"complete"},
    "health_radar": {"information"}, "screening": {"phone_invalid", "spam_text", "job_seeker_text"},
    "risk": {"level": True, "lost_within_7d": True, "lost_within_14d": True, "lost_within_30d": True,
             "reasons": True, "escalate_to": True, "stalls": {"__all__": {"kind"}}},
    "next_actions": {"__all__": {"action": True, "title": True, "as_event": {
        "activities": {"__all__": {"channel", "contact_role", "attachment_type"}}}}},
}  # fmt: skip
ACTIVITY_READ = ("ts", "channel", "contact_role", "attachment_type")


def summary(answer: LeadAnswer, events: dict[str, list[dict[str, str]]]) -> str:
    """What the manager pages read of one scored lead, as JSON: the answer's parts above and the events' stage
    changes and activities (a note cut to the length data health tests, so its text is not kept twice)."""
    activities = [
        {k: row[k] for k in ACTIVITY_READ if k in row}
        | ({"note": row["note"][:NOTE_MIN_CHARS]} if "note" in row else {})
        for row in events.get("activities", [])
    ]
    part = {
        "answer": answer.model_dump(mode="json", include=ANSWER_READ),
        "events": {"stage_changes": events.get("stage_changes", []), "activities": activities},
    }
    return json.dumps(part, ensure_ascii=False)


def read(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer and events of a log row as the manager pages read them: its summary, or for a row logged
    before there was one, the whole answer and events (plain JSON: no validation, the log only holds validated
    answers)."""
    if row.get("summary"):
        part = json.loads(row["summary"])
        return part["answer"], part["events"]
    return json.loads(row["answer"]), json.loads(row["events"]) if row.get("events") else {}


def load(row: dict[str, Any]) -> dict[str, Any]:
    """One log row as the cockpit reads it (`read`), times parsed."""
    answer, events = read(row)
    return {
        "id": row["id"],
        "lead_id": row["lead_id"],
        "shown_id": mask_personal(row["lead_id"]),
        "answer": answer,
        "events": events,
        "owner": row.get("owner_id") or "未分配",
        "channel": row.get("channel") or "未知",
        "campaign": row.get("campaign") or "—",
        "customer_type": row.get("customer_type") or "未填",
        "as_of": _stamp(answer["as_of"]),
        "created": _stamp(row.get("created_at")),
    }


@lru_cache(maxsize=200_000)
def _stamp(text: str | None) -> datetime | None:
    """An ISO 8601 time (no offset: Asia/Shanghai) as an aware datetime; None if missing or unreadable. The
    standard library's parser: pandas' costs some 50 us a call, and a cockpit parses every event's time."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp.replace(tzinfo=SHANGHAI) if stamp.tzinfo is None else stamp


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600.0


# ---------------------------------------------------------------------------------------------- sections


def today(leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rep: leads whose golden checklist was missed (incomplete after its two hours, in the first week) and
    leads whose planned next step is overdue, with the warnings that escalated; worst reps first."""
    reps: dict[str, dict[str, Any]] = defaultdict(lambda: {"checklist": [], "overdue": [], "escalated": 0})
    for lead in leads:
        a = lead["answer"]
        age_hours = _hours(lead["as_of"], lead["created"]) if lead["created"] is not None else None
        closed = (a.get("stage") or {}).get("recorded") in ("赢单", "丢单")
        if closed:
            continue
        rep = reps[lead["owner"]]
        if not (a.get("golden_checklist") or {}).get("complete") and age_hours is not None and 2 < age_hours <= 24 * 7:
            rep["checklist"].append(lead)
        risk = a.get("risk") or {}
        if any(s["kind"] == "overdue" for s in risk.get("stalls", [])):
            rep["overdue"].append(lead)
        rep["escalated"] += risk.get("escalate_to") == "manager"
    rows = [
        {"owner": mask_personal(owner), "checklist": r["checklist"][:5], "overdue": r["overdue"][:5],
         "n_checklist": len(r["checklist"]), "n_overdue": len(r["overdue"]), "escalated": r["escalated"]}
        for owner, r in reps.items()
        if r["checklist"] or r["overdue"] or r["escalated"]
    ]  # fmt: skip
    return sorted(rows, key=lambda r: -(r["n_checklist"] + r["n_overdue"] + r["escalated"]))


def at_risk(leads: list[dict[str, Any]], n: int = 15) -> list[dict[str, Any]]:
    """The open leads most likely to be lost within 7 days, 高危 first."""
    order = {"高危": 0, "预警": 1, "关注": 2, "正常": 3}
    risky = [lead for lead in leads if (lead["answer"].get("risk") or {}).get("level") in ("高危", "预警")]
    risky.sort(key=lambda lead: (order[lead["answer"]["risk"]["level"]], -lead["answer"]["risk"]["lost_within_7d"]))
    return risky[:n]


def _reached(lead: dict[str, Any]) -> dict[int, datetime]:
    """The first time the lead was at each stage rank or beyond (新线索 at creation)."""
    first: dict[int, datetime] = {}
    if lead["created"] is not None:
        first[0] = lead["created"]
    for change in lead["events"].get("stage_changes", []):
        rank = STAGE_RANK.get(change.get("stage"))
        when = _stamp(change.get("ts"))
        if rank is None or when is None or rank == STAGE_RANK["丢单"]:
            continue
        for k in range(rank + 1):  # reaching a stage passes every stage below it (optional ones skipped)
            if k not in first or when < first[k]:
                first[k] = when
    return first


def funnel(leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per customer type: per step of the ladder the leads that reached it, the conversion to the next, the
    median days the step took; the step with the worst drop-off (at least 5 leads in it) is flagged."""
    by_type: dict[str, list[dict[int, datetime]]] = defaultdict(list)
    for lead in leads:
        by_type[lead["customer_type"]].append(_reached(lead))
    out = []
    for kind, reached in sorted(by_type.items(), key=lambda kv: -len(kv[1])):
        steps = []
        for k in range(len(FUNNEL) - 1):
            here = [r for r in reached if k in r]
            on = [r for r in here if k + 1 in r]
            days = [(r[k + 1] - r[k]) / DAY for r in on]
            steps.append({"from": FUNNEL[k], "to": FUNNEL[k + 1], "reached": len(here), "next": len(on),
                          "conversion": len(on) / len(here) if here else None,
                          "median_days": float(np.median(days)) if days else None, "worst": False})  # fmt: skip
        candidates = [s for s in steps if s["reached"] >= 5 and s["conversion"] is not None]
        if candidates:
            min(candidates, key=lambda s: s["conversion"])["worst"] = True
        out.append({"customer_type": mask_personal(kind), "leads": len(reached), "steps": steps})
    return out


def data_health(leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rep, each 0-100: field completeness (the radar's information axis), stage changes backed by evidence,
    stage matching the inferred one, activity notes with content; their mean below 70 is flagged."""
    reps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lead in leads:
        reps[lead["owner"]].append(lead)
    out = []
    for owner, mine in reps.items():
        answers = [lead["answer"] for lead in mine]
        notes = [row for lead in mine for row in lead["events"].get("activities", [])]
        staged = [a for a in answers if a.get("stage")]
        figures = {
            "completeness": float(np.mean([(a.get("health_radar") or {}).get("information", 0.0) for a in answers])),
            "evidence": 100.0 * float(np.mean([not a.get("stage_evidence_missing") for a in answers])),
            "stage_match": 100.0 * float(np.mean([not a["stage"].get("mismatch") for a in staged])) if staged else None,
            "notes": 100.0 * float(np.mean([len(r.get("note") or "") >= NOTE_MIN_CHARS for r in notes]))
            if notes
            else None,
        }
        known = [v for v in figures.values() if v is not None]
        score = float(np.mean(known)) if known else 0.0
        out.append({"owner": mask_personal(owner), "leads": len(mine), **figures, "score": score,
                    "flagged": score < HEALTH_FLAG})  # fmt: skip
    return sorted(out, key=lambda r: r["score"])


def heat_map(leads: list[dict[str, Any]]) -> dict[str, Any]:
    """Completion rate of each action type within h hours of creation, over the leads observed for at least
    h hours (call, WeChat, e-mail: activities by channel; quote: a 报价单 attachment)."""
    rows = {name: [] for name in HEAT_ACTIONS}
    observed = []
    for lead in leads:
        if lead["created"] is None:
            continue
        observed.append(_hours(lead["as_of"], lead["created"]))
        first = dict.fromkeys(HEAT_ACTIONS, np.inf)
        for act in lead["events"].get("activities", []):
            when = _stamp(act.get("ts"))
            if when is None:
                continue
            hours = _hours(when, lead["created"])
            for name in (act.get("channel"), act.get("attachment_type")):
                if name in first and hours >= 0:
                    first[name] = min(first[name], hours)
        for name in HEAT_ACTIONS:
            rows[name].append(first[name])
    seen = np.array(observed)
    rates, counts = [], []
    for name in HEAT_ACTIONS:
        done = np.array(rows[name])
        rates.append([float((done[seen >= h] <= h).mean()) if (seen >= h).any() else None for h in HEAT_HOURS])
        counts.append([int((seen >= h).sum()) for h in HEAT_HOURS])
    return {"actions": list(HEAT_ACTIONS), "hours": list(HEAT_HOURS), "rates": rates, "counts": counts}


def _won_within_30(lead: dict[str, Any]) -> bool | None:
    """Won within 30 days of creation, if the lead has been watched that long (else None)."""
    if lead["created"] is None or lead["as_of"] - lead["created"] < 30 * DAY:
        return None
    for change in lead["events"].get("stage_changes", []):
        when = _stamp(change.get("ts"))
        if change.get("stage") == "赢单" and when is not None and when - lead["created"] <= 30 * DAY:
            return True
    return False


def sources(leads: list[dict[str, Any]], by: str) -> dict[str, Any]:
    """Per channel or campaign: leads, invalid / spam share, mean health score, 30-day win rate (of the leads
    old enough to know it), and leads and mean score per month of creation."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lead in leads:
        groups[lead[by]].append(lead)
    rows, months = [], {}
    for name, mine in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        screens = [lead["answer"].get("screening") or {} for lead in mine]
        invalid = [bool(s.get("phone_invalid") or s.get("spam_text") or s.get("job_seeker_text")) for s in screens]
        won = [w for lead in mine if (w := _won_within_30(lead)) is not None]
        rows.append({"name": mask_personal(name), "leads": len(mine), "invalid_share": float(np.mean(invalid)),
                     "score": float(np.mean([lead["answer"]["health_score"] for lead in mine])),
                     "win_30d": float(np.mean(won)) if won else None, "win_30d_n": len(won)})  # fmt: skip
        per_month: dict[str, list[float]] = defaultdict(list)
        for lead in mine:
            if lead["created"] is not None:
                per_month[lead["created"].strftime("%Y-%m")].append(lead["answer"]["health_score"])
        months[mask_personal(name)] = {m: (len(v), float(np.mean(v))) for m, v in sorted(per_month.items())}
    return {"rows": rows, "months": months}


def _done(action: dict[str, Any], activities: list[dict[str, Any]], start: datetime, end: datetime) -> bool:
    """Whether an activity logged in (start, end] is the action's event: same channel, and the contact role
    and attachment it names, if any."""
    wanted = ((action.get("as_event") or {}).get("activities") or [None])[0]
    if wanted is None:
        return False
    for act in activities:
        when = _stamp(act.get("ts"))
        if when is None or not start < when <= end:
            continue
        if all(act.get(k) == wanted.get(k) for k in ("channel", "contact_role", "attachment_type") if wanted.get(k)):
            return True
    return False


def action_effect(loaded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each next action recommended at one scoring of a lead that was scored again later: how often it was
    done before the next scoring, and the mean change of the win probability (in points) between the two
    scorings when it was done and when not. Observational: reps choose what they do, so the difference is
    not the action's effect."""
    by_lead: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in loaded:
        by_lead[row["lead_id"]].append(row)
    stats: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"done": [], "not": []})
    titles: dict[str, str] = {}
    for scorings in by_lead.values():
        ordered = sorted(scorings, key=lambda s: (s["as_of"], s["id"]))
        for before, after in zip(ordered, ordered[1:], strict=False):
            if after["as_of"] <= before["as_of"]:
                continue
            change = 100 * (after["answer"]["win_probability"] - before["answer"]["win_probability"])
            activities = after["events"].get("activities", [])
            for action in before["answer"].get("next_actions", []):
                if not (action.get("as_event") or {}).get("activities"):
                    continue  # a reassignment or nurture adds no activity: whether it was done cannot be seen here
                titles[action["action"]] = action["title"]
                done = _done(action, activities, before["as_of"], after["as_of"])
                stats[action["action"]]["done" if done else "not"].append(change)
    out = []
    for key, s in stats.items():
        n = len(s["done"]) + len(s["not"])
        done_mean = float(np.mean(s["done"])) if s["done"] else None
        not_mean = float(np.mean(s["not"])) if s["not"] else None
        out.append({"action": key, "title": titles[key], "recommended": n, "done_share": len(s["done"]) / n,
                    "change_done": done_mean, "change_not": not_mean,
                    "difference": None if done_mean is None or not_mean is None else done_mean - not_mean})  # fmt: skip
    return sorted(out, key=lambda r: -r["recommended"])


# ---------------------------------------------------------------------------------------------- charts


def _layout(title: str, height: int = 300, **more: Any) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 14}}, "height": height, "autosize": True,
            "margin": {"l": 60, "r": 10, "t": 40, "b": 40}, "font": {"family": "sans-serif", "size": 11}, **more}  # fmt: skip


def heat_figure(heat: dict[str, Any]) -> go.Figure:
    labels = {"电话": "电话", "微信": "微信", "邮件": "邮件", "报价单": "报价"}
    z = [[None if v is None else round(100 * v, 1) for v in row] for row in heat["rates"]]
    return go.Figure(
        go.Heatmap(z=z, x=[f"{h}小时内" for h in heat["hours"]], y=[labels[a] for a in heat["actions"]],
                   colorscale="Blues", zmin=0, zmax=100, text=z, texttemplate="%{text}%",
                   hovertemplate="%{y} %{x}：%{z}%<extra></extra>", colorbar={"title": "%"}),
        layout=_layout("响应热力图：创建后各时段的完成率"),
    )  # fmt: skip


def funnel_figure(rows: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure(layout=_layout("各客户类型的阶段转化率", 340, yaxis={"tickformat": ".0%", "range": [0, 1]},
                                   legend={"orientation": "h", "y": -0.25}))  # fmt: skip
    for r in rows[:5]:
        fig.add_trace(go.Bar(name=r["customer_type"], x=[f"{s['from']}→{s['to']}" for s in r["steps"]],
                             y=[s["conversion"] for s in r["steps"]]))  # fmt: skip
    return fig


def channel_figure(months: dict[str, dict[str, tuple[int, float]]]) -> go.Figure:
    fig = go.Figure(layout=_layout("各渠道每月线索数", 300, legend={"orientation": "h", "y": -0.25}))
    for name, per_month in list(months.items())[:6]:
        fig.add_trace(go.Scatter(name=name, x=list(per_month), y=[v[0] for v in per_month.values()],
                                 mode="lines+markers"))  # fmt: skip
    return fig


def action_figure(rows: list[dict[str, Any]]) -> go.Figure:
    shown = [r for r in rows if r["difference"] is not None]
    return go.Figure(
        go.Bar(x=[r["title"] for r in shown], y=[round(r["difference"], 2) for r in shown],
               marker_color=["#38a169" if r["difference"] >= 0 else "#e53e3e" for r in shown],
               hovertemplate="%{x}：%{y:+.2f}分<extra></extra>"),
        layout=_layout("做了与没做：下次评分时赢单概率的变化之差（观察性）", 320, yaxis={"title": "百分点"}),
    )  # fmt: skip


def trend_figure(entries: list[Any]) -> go.Figure:
    """The lead page's score trend, each point with what moved the score since the one before."""
    x = [e.as_of[:16].replace("T", " ") for e in entries]
    hover = [f"{e.health_score:.1f}分（{e.tier}）<br>{e.summary}" for e in entries]
    fig = go.Figure(
        go.Scatter(x=x, y=[e.health_score for e in entries], mode="lines+markers", text=hover,
                   hovertemplate="%{x}<br>%{text}<extra></extra>", line={"color": "#2b6cb0"}),
        layout=_layout("健康分走势", 260, yaxis={"range": [0, 100], "title": "健康分"}, xaxis={"type": "category"}),
    )  # fmt: skip
    for e, xi in zip(entries, x, strict=True):
        if e.change is not None and abs(e.change) >= 0.1:
            fig.add_annotation(x=xi, y=e.health_score, text=f"{e.change:+.1f}", showarrow=False, yshift=12)
    return fig


def figure_json(fig: go.Figure) -> str:
    """The figure for plotly.js, safe inside a <script> element."""
    return fig.to_json().replace("</", "<\\/")


def build(reads: LeadReads) -> dict[str, Any]:
    """Everything the cockpit template shows."""
    every = [load(r) for r in reads.cockpit_rows()]  # one read: the latest row of each lead is the one shown
    newest: dict[str, dict[str, Any]] = {}
    for row in every:
        if row["lead_id"] not in newest or row["id"] > newest[row["lead_id"]]["id"]:
            newest[row["lead_id"]] = row
    leads = sorted(newest.values(), key=lambda lead: -lead["answer"]["health_score"])
    heat = heat_map(leads)
    channels = sources(leads, "channel")
    campaigns = sources(leads, "campaign")
    funnel_rows = funnel(leads)
    effect = action_effect(every)
    return {
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        "leads": len(leads),
        "today": today(leads),
        "at_risk": at_risk(leads),
        "funnel": funnel_rows,
        "health": data_health(leads),
        "heat": heat,
        "channels": channels["rows"],
        "campaigns": campaigns["rows"][:15],
        "effect": effect,
        "charts": {
            "heat": figure_json(heat_figure(heat)),
            "funnel": figure_json(funnel_figure(funnel_rows)),
            "channels": figure_json(channel_figure(channels["months"])),
            "effect": figure_json(action_figure(effect)),
        },
        "health_flag": HEALTH_FLAG,
    }
