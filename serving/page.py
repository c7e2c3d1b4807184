"""The manager page: the scored leads from the prediction log, rendered server-side (Jinja2) in Chinese.

A list sorted by health score with filters, a page per lead (factor bars, the score trend as a plotly chart
with what moved the score between scorings, radar, timeline, next actions, the early warning), a team view,
the manager's cockpit (serving/cockpit.py), and the assignment log with the leads overdue for a first touch.
Everything shown passes through `mask_personal`: lead ids, owners and
notes may carry a phone number or an e-mail.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from features.text import mask_personal
from models.history import Scoring, entries
from models.schema import HistoryEntry, LeadAnswer
from serving import cockpit
from serving.predlog import PredictionLog
from serving.store import LeadStore

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
FILTERS = [("owner", "负责人"), ("tier", "分层"), ("industry", "行业"), ("stage", "推断阶段"), ("channel", "渠道")]
RADAR_ZH = {"information": "信息完整", "timeliness": "响应及时", "need_clarity": "需求明确", "industry_match": "行业匹配",
            "interaction": "历史互动"}  # fmt: skip
EVENT_ZH = {"web_events": "网站", "activities": "跟进", "stage_changes": "阶段"}


def _view(row: dict[str, Any], answer: dict[str, Any] | None = None) -> dict[str, Any]:
    """One prediction-log row as the pages show it. `answer`: the whole answer as a dict (a lead's page); by
    default what the row's summary holds (the lists)."""
    answer = answer if answer is not None else cockpit.read(row)[0]
    stage, close = answer.get("stage") or {}, answer.get("close_date") or {}
    probabilities = [close.get(f"won_within_{d}d") for d in (30, 60, 90)]
    return {
        "lead_id": row["lead_id"],
        "url_id": row["id"],  # never the lead id in a URL: it may be a phone number
        "shown_id": mask_personal(row["lead_id"]),
        "score": row["health_score"],
        "tier": row["tier"],
        "inferred": stage.get("inferred"),
        "recorded": stage.get("recorded"),
        "mismatch": bool(stage.get("mismatch")),
        "close": " / ".join("—" if p is None else f"{p:.0%}" for p in probabilities),
        "lai": answer.get("activity_index") or 0.0,
        "owner": row.get("owner_id"),
        "industry": row.get("industry"),
        "channel": row.get("channel"),
        "as_of": answer.get("as_of", "")[:16].replace("T", " "),
        "model_version": row["model_version"],
        "answer": answer,
    }


def lead_list(log: PredictionLog, filters: dict[str, str]) -> str:
    rows = [_view(r) for r in log.latest()]
    options = {
        name: sorted({str(v) for r in rows if (v := r["inferred" if name == "stage" else name])}) for name, _ in FILTERS
    }
    chosen = {k: v for k, v in filters.items() if v and k in options}
    shown = [r for r in rows if all(str(r["inferred" if k == "stage" else k]) == v for k, v in chosen.items())]
    return TEMPLATES.get_template("list.html").render(
        title="线索列表", rows=shown, options=options, filters=chosen, filter_labels=FILTERS
    )


def lead_page(log: PredictionLog, row_id: int) -> str | None:
    lead_id = log.lead_of(row_id)
    history = log.history(lead_id) if lead_id is not None else []
    if not history:
        return None
    last = history[-1]
    r = _view(last, LeadAnswer.model_validate_json(last["answer"]).model_dump())
    entries = score_history(history)
    explanation = r["answer"].get("explanation") or {}
    factors = explanation.get("factors") or explanation.get("positive", []) + explanation.get("negative", [])
    factors = sorted(factors, key=lambda f: -f["points"])
    largest = max([abs(f["points"]) for f in factors] or [1.0]) or 1.0
    bars = [{"sentence": f["sentence"], "points": f["points"], "width": max(2, round(160 * abs(f["points"]) / largest))}
            for f in factors]  # fmt: skip
    return TEMPLATES.get_template("lead.html").render(
        title=f"线索 {r['shown_id']}",
        r=r,
        base_score=explanation.get("base_score", 0.0),
        factors=bars,
        actions=r["answer"].get("next_actions", []),
        history=entries,
        trend=cockpit.figure_json(cockpit.trend_figure(entries)),
        radar=radar_svg(r["answer"].get("health_radar", {})),
        timeline=_timeline(json.loads(last["events"]) if last.get("events") else {}),
    )


def team_page(log: PredictionLog) -> str:
    rows = [_view(r) for r in log.latest()]
    owners: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        owners.setdefault(r["owner"] or "未分配", []).append(r)
    team = []
    for owner, leads in sorted(owners.items(), key=lambda kv: -len(kv[1])):
        team.append(
            {
                "owner": owner,
                "owner_url": quote(owner if owner != "未分配" else "", safe=""),
                "leads": len(leads),
                "score": sum(r["score"] for r in leads) / len(leads),
                "lai": sum(r["lai"] for r in leads) / len(leads),
                "overdue": sum(
                    any(a["action"] == "overdue" for a in r["answer"].get("next_actions", [])) for r in leads
                ),
                "checklist": sum(bool((r["answer"].get("golden_checklist") or {}).get("complete")) for r in leads)
                / len(leads),
                "top": f"{sum(r['tier'] == '战略级' for r in leads)} / {sum(r['tier'] == '重点跟进' for r in leads)}",
            }
        )
    return TEMPLATES.get_template("team.html").render(title="团队视图", team=team)


def score_history(rows: list[dict[str, Any]]) -> list[HistoryEntry]:
    """The lead's scorings from its log rows (oldest first), each with the factors that moved its score."""
    return entries(
        Scoring(LeadAnswer.model_validate_json(r["answer"]), _iso(r["logged_at"]), r["endpoint"]) for r in rows
    )


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def cockpit_page(reads: cockpit.LeadReads) -> str:
    return TEMPLATES.get_template("cockpit.html").render(title="经理驾驶舱", c=cockpit.build(reads))


def login_page(error: str | None = None) -> str:
    return TEMPLATES.get_template("login.html").render(title="登录", error=error)


def radar_svg(radar: dict[str, float], size: int = 260) -> str:
    """The five-axis health radar (each 0-100) as an inline SVG polygon (labels kept inside the box)."""
    if not radar:
        return "<p>没有数据</p>"
    centre, reach = size / 2, size / 2 - 62
    names = list(RADAR_ZH)
    angle = [-math.pi / 2 + 2 * math.pi * i / len(names) for i in range(len(names))]
    ring = " ".join(f"{centre + reach * math.cos(a):.1f},{centre + reach * math.sin(a):.1f}" for a in angle)
    shape = " ".join(
        f"{centre + reach * radar.get(n, 0) / 100 * math.cos(a):.1f},{centre + reach * radar.get(n, 0) / 100 * math.sin(a):.1f}"
        for n, a in zip(names, angle, strict=True)
    )
    labels = "".join(
        f'<text x="{centre + (reach + 22) * math.cos(a):.1f}" y="{centre + (reach + 18) * math.sin(a):.1f}" '
        f'font-size="11" text-anchor="middle">{RADAR_ZH[n]} {radar.get(n, 0):.0f}</text>'
        for n, a in zip(names, angle, strict=True)
    )
    return (
        f'<svg id="radar" viewBox="0 0 {size} {size}" width="100%" role="img" aria-label="健康雷达">'
        f'<polygon points="{ring}" fill="none" stroke="#cbd2d9"/>'
        f'<polygon points="{shape}" fill="rgba(43,108,176,.3)" stroke="#2b6cb0"/>{labels}</svg>'
    )


def _timeline(events: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    """Every event the lead came with, newest first, one readable line each (already masked)."""
    items = []
    for name, rows in events.items():
        for row in rows:
            detail = " · ".join(v for k, v in row.items() if k != "ts")
            items.append(
                {"ts": row.get("ts", "")[:16].replace("T", " "), "text": f"[{EVENT_ZH.get(name, name)}] {detail}"}
            )
    return sorted(items, key=lambda e: e["ts"], reverse=True)


def assignment_page(store: LeadStore, log: PredictionLog, hours: float, limit: int = 200) -> str:
    """The assignment log (who got which lead, why, what came of it) and the leads overdue for a first touch."""
    latest = {r["lead_id"]: r for r in log.latest()}
    rows = []
    for d in store.decisions(limit):
        lead_id = d["lead_id"]
        touched = store.first_touch(lead_id, d["decided_at"]) if lead_id and d["chosen_rep"] else None
        scored = latest.get(lead_id) if lead_id else None
        stage = (scored["inferred_stage"] if scored else None) or "—"
        outcome = "已首次跟进 " + _local(touched) if touched else ("未跟进" if d["chosen_rep"] else "—")
        rows.append(
            {
                "decided_at": _local(d["decided_at"]),
                "kind": {"assign": "分配", "reroute": "改派"}.get(d["kind"], d["kind"]),
                "lead": mask_personal(lead_id or "—"),
                "lead_url": scored["id"] if scored else None,
                "rep": d["chosen_rep"] or "未分配",
                "status": d["status"],
                "reason": d["reason"] or "",
                "pool": d["pool"] or "",
                "model_version": d["model_version"] or "",
                "outcome": outcome,
                "score": f"{scored['health_score']:.0f}" if scored else "—",
                "stage": stage,
            }
        )
    overdue = [
        {"lead": mask_personal(o["lead_id"]), "rep": o["owner_id"] or "—", "assigned_at": _local(o["assigned_at"]),
         "hours": f"{o['hours_waiting']:.1f}"}
        for o in store.overdue(hours)
    ]  # fmt: skip
    return TEMPLATES.get_template("assign.html").render(title="线索分配", rows=rows, overdue=overdue, hours=hours)


def _local(stamp) -> str:
    """A stored UTC time in Asia/Shanghai, to the minute."""
    return "" if stamp is None else pd.Timestamp(stamp).tz_convert("Asia/Shanghai").strftime("%Y-%m-%d %H:%M")
