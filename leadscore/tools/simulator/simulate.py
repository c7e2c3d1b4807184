"""Simulate a CRM export with known truth: `simulate(n_leads, seed, out_dir)`.

The generative story is told in docs/simulator.md. The export holds only what a CRM would hold;
`truth/` holds the hidden state, the true stage timeline, oracle probabilities and counterfactuals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from leadscore.tools.simulator import text, world
from leadscore.tools.simulator.dynamics import ACTIONS, LOST, STAGES, WON, Chains, rollout_won_day, step
from leadscore.tools.simulator.story import Story, resolve

DAY = 86_400.0
HOUR = 3_600.0
EXPORT_TIME = pd.Timestamp("2026-06-30 00:00", tz="Asia/Shanghai")
PAGE_CATEGORIES = ["product", "pricing", "case_study", "docs", "download", "careers", "about", "blog", "other"]
# Page mix by phase of the deal: pricing, docs and downloads rise as a decision nears.
PAGE_MIX = {
    "early": [0.35, 0.08, 0.12, 0.08, 0.04, 0.02, 0.1, 0.15, 0.06],
    "middle": [0.3, 0.12, 0.15, 0.18, 0.1, 0.01, 0.04, 0.06, 0.04],
    "late": [0.18, 0.32, 0.1, 0.15, 0.16, 0.01, 0.03, 0.02, 0.03],
    "job_seeker": [0.05, 0.0, 0.0, 0.0, 0.0, 0.7, 0.2, 0.0, 0.05],
    "competitor": [0.3, 0.3, 0.05, 0.2, 0.15, 0.0, 0.0, 0.0, 0.0],
    "spam": [0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.2, 0.3],
}
STAGE_WEB_INTENSITY = np.array([0.6, 0.8, 1.0, 1.2, 1.2, 1.7, 1.5, 1.4])
ATTACHMENTS = ["方案", "报价单", "测试报告", "演示确认单", "技术协议", "合同", "付款凭证", "物流单"]
# Attachment that evidences entering a stage.
STAGE_EVIDENCE = {3: "方案", 5: "报价单", 6: "技术协议", 7: "合同"}
# Shifts every deal's log-odds: how hard this market is to win in (sets the overall win rate).
MARKET_OFFSET = -0.8
HABIT_LAG_DAYS = {"accurate": 0.5, "lagging": 8.0, "skipper": 2.0, "stuck": 2.0}


@dataclass
class _Rows:
    """Rows collected day by day as column arrays, concatenated once at the end."""

    columns: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **cols: np.ndarray) -> None:
        for name, values in cols.items():
            self.columns.setdefault(name, []).append(np.asarray(values))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: np.concatenate(v) for k, v in self.columns.items()})


@dataclass
class SimulationSummary:
    out_dir: Path
    counts: dict[str, int]
    seconds: float = 0.0


def load_effects(story: Story, load: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a rep's load at a lead's arrival does to it: log-odds lost, first-touch delay factor, touch factor."""
    pressure = story.load_pressure(load) * story.load_penalty
    return pressure, np.exp(pressure), 1.0 / (1.0 + pressure)


def static_eta(story: Story, fit, hidden_fit, urgency, disposition, rep_skill, load_loss) -> np.ndarray:
    """A deal's static log-odds: the story's terms in one sum (the order keeps the classic floats)."""
    return (
        story.market_offset
        + fit
        + hidden_fit
        + story.urgency_weight * urgency
        + rep_skill
        + story.disposition_weight * disposition
        - load_loss
    )


def first_touch_hours(diligence: np.ndarray, spread: np.ndarray, delay_factor: np.ndarray) -> np.ndarray:
    """Delay to first touch: a diligent rep calls within minutes, a lazy or overloaded one the next day."""
    median_hours = np.exp(np.log(0.4) + 3.5 * (1 - diligence))
    return np.exp(np.log(median_hours) + spread) * delay_factor


def _initial_chains(
    leads: pd.DataFrame, reps: world.Reps, rng: np.random.Generator, story: Story
) -> tuple[Chains, np.ndarray]:
    n = len(leads)
    owner = leads["_owner"].to_numpy()
    diligence = np.where(owner >= 0, reps.diligence[np.maximum(owner, 0)], 0.0)
    load_loss, delay_factor, touch_factor = load_effects(story, leads["_load"].to_numpy())
    delay_hours = first_touch_hours(diligence, rng.normal(0, 1.0, n), delay_factor)
    created_t = (leads["created_at"] - (EXPORT_TIME - pd.Timedelta(days=365))).dt.total_seconds().to_numpy()
    first_touch_t = created_t + delay_hours * HOUR
    urgency = leads["_urgency"].to_numpy()
    eta = static_eta(
        story,
        leads["_fit_observable"].to_numpy(),
        leads["_hidden_fit"].to_numpy(),
        urgency,
        leads["_disposition"].to_numpy(),
        leads["_rep_skill"].to_numpy(),
        load_loss,
    )
    chains = Chains.starting(
        eta=eta,
        urgency=urgency,
        inbound_rate=0.02 * np.exp(story.inbound_urgency * urgency),
        touch_factor=touch_factor,
        invalid=leads["_intent"].to_numpy() == text.INTENTS.index("无效"),
        duplicate=leads["_duplicate_of"].notna().to_numpy(),
        requires_sample=leads["_requires_sample"].to_numpy(bool),
        requires_tender=leads["_requires_tender"].to_numpy(bool),
        diligence=diligence,
        has_owner=owner >= 0,
        created_day=(created_t // DAY).astype(np.int32),
        first_touch_day=(first_touch_t // DAY).astype(np.int32),
        fast_first_touch=delay_hours <= 2.0,
    )
    return chains, np.stack([created_t, first_touch_t])


SIDE_STREAM = 5  # tags the seed's stream for what only non-classic stories draw


def simulate(
    n_leads: int,
    seed: int,
    out_dir: str | Path,
    *,
    story: str | Story | Path | None = None,
    days: int = 365,
    table_format: str = "parquet",
    n_snapshots: int | None = None,
    oracle_replicates: int = 300,
    progress: bool = True,
) -> SimulationSummary:
    """Simulate `n_leads` leads created over `days` days before the export and write the export plus truth.

    `story`: a preset name (`classic`, `profile`, `behaviour`, `notes`, `rep`), a story.json path, a Story, or
    None / "random" for the story the seed draws (docs/simulator.md)."""
    if n_leads < 10:
        raise ValueError(f"--leads must be at least 10, got {n_leads}")
    if table_format not in {"parquet", "csv"}:
        raise ValueError(f"format must be parquet or csv, got {table_format!r}")
    story = resolve(story, seed)
    rng = np.random.default_rng(seed)
    side = np.random.default_rng([seed, SIDE_STREAM])
    start = EXPORT_TIME - pd.Timedelta(days=days)
    reps = world.make_reps(max(6, n_leads // 300), rng, story, side)
    leads = world.make_leads(n_leads, reps, start, days, rng, story, side)
    leads = world.add_duplicates(leads, rng)
    chains, (created_t, first_touch_t) = _initial_chains(leads, reps, rng, story)
    rep_note_quality = np.where(leads["_owner"] >= 0, reps.note_quality[np.maximum(leads["_owner"], 0)], 0.5)

    n_snap = n_snapshots or int(np.clip(n_leads // 10, 100, 2000))
    snap_candidates = rng.choice(n_leads, min(n_leads, 4 * n_snap), replace=False)
    snap_day = chains.created_day[snap_candidates] + rng.integers(0, 180, len(snap_candidates))
    captured: list[tuple[np.ndarray, int, Chains]] = []

    activities, web, timeline = _Rows(), _Rows(), _Rows()
    timeline.add(lead=np.arange(n_leads), t=created_t, stage=np.zeros(n_leads, dtype=np.int8))
    close_t = np.full(n_leads, np.nan)
    for day in tqdm(range(days), desc="simulating days", disable=not progress, unit="day"):
        ev = step(chains, day, rng)
        _emit_day(
            day, chains, ev, created_t, first_touch_t, rep_note_quality, leads, close_t, activities, timeline, rng
        )
        _emit_web(day, chains, ev, created_t, leads, web, rng, story.web_fit)
        due = snap_candidates[(snap_day == day)]
        due = due[(chains.stage[due] < WON) & (chains.created_day[due] <= day)]
        if len(due):
            captured.append((due, day, chains.take(due)))

    tables = _export_tables(
        leads, reps, chains, close_t, activities.frame(), web.frame(), timeline.frame(), start, days, rng, story, side
    )
    truth = _truth_tables(leads, reps, chains, timeline.frame(), start)
    snapshots, counterfactuals = _oracle(captured, n_snap, start, days, oracle_replicates, seed, progress)
    truth["snapshots"], truth["counterfactuals"] = snapshots, counterfactuals
    summary = _write(out_dir, tables, truth, table_format, seed, n_leads, start)
    _write_story(Path(out_dir), story, seed, leads, chains)
    _write_intent_labels(Path(out_dir), tables["leads"], truth["leads"], seed)
    return summary


def _emit_day(day, chains, ev, created_t, first_touch_t, note_quality, leads, close_t, activities, timeline, rng):
    """Turn one day's transitions into activity and true-timeline rows (web events: `_emit_web`)."""
    touch = np.flatnonzero(ev.rep_touch | ev.inbound)
    if len(touch):
        inbound = ev.inbound[touch]
        t = np.where(
            ev.first_touch[touch], first_touch_t[touch], day * DAY + 9 * HOUR + rng.random(len(touch)) * 11 * HOUR
        )
        action = np.full(len(touch), "", dtype=object)
        for name in ["wechat", "decision_maker", "finance", "sample", "demo"]:  # later wins: demo is shown first
            action[ev.actions[name][touch]] = name
        stage_now = chains.stage[touch]
        lost_now = stage_now == LOST
        invalid_kind = leads["_invalid_kind"].to_numpy()[touch]
        key = np.where(
            rng.random(len(touch)) < 0.7 * (1 - note_quality[touch]),
            "vague",
            "stage:" + np.minimum(stage_now, 7).astype(str),
        )
        key = np.where(action != "", "action:" + action, key)
        closed_at_first = lost_now & ev.first_touch[touch]
        dup = chains.duplicate[touch] & closed_at_first
        inv = chains.invalid[touch] & closed_at_first
        key = np.where(dup, "duplicate", key)
        key = np.where(inv & ~dup, "invalid:" + np.array(text.INVALID_KINDS + ["spam"])[invalid_kind], key)
        channel = np.where(rng.random(len(touch)) < np.where(chains.wechat[touch], 0.45, 0.05), "微信", "电话")
        channel = np.where((stage_now >= 3) & (rng.random(len(touch)) < 0.12), "拜访", channel)
        channel = np.where(rng.random(len(touch)) < 0.04, "邮件", channel)
        channel = np.where(action == "demo", "演示", channel)
        service = np.isin(leads["_intent"].to_numpy()[touch], [3, 4])
        actor_role = np.where(
            action == "demo", "售前", np.where(service & (rng.random(len(touch)) < 0.6), "客服", "销售")
        )
        medical = leads["_industry"].to_numpy()[touch] == 0
        contact_role = np.where(rng.random(len(touch)) < 0.5, np.where(medical, "设备科主任", "技术负责人"), "采购经理")
        contact_role = np.where(
            action == "finance", "财务处长", np.where(action == "decision_maker", "总经理", contact_role)
        )
        contact_role = np.where(rng.random(len(touch)) < 0.15, None, contact_role)
        duration = np.where(np.isin(channel, ["电话"]), np.round(rng.lognormal(5.0, 0.8, len(touch))), np.nan)
        duration = np.where(np.isin(channel, ["拜访", "演示"]), np.round(rng.uniform(1800, 5400, len(touch))), duration)
        diligence = chains.diligence[touch]
        plan = ~inbound & ~lost_now & (rng.random(len(touch)) < 0.3 + 0.5 * diligence)
        activities.add(
            lead=touch,
            t=t,
            direction=np.where(inbound, "inbound", "outbound"),
            channel=channel,
            actor_role=actor_role,
            contact_role=contact_role,
            note_key=key,
            attachment=np.full(len(touch), None),
            next_stage=np.where(plan, np.minimum(stage_now, 7), -1),
            next_due=t + rng.uniform(1, 7, len(touch)) * DAY,
            duration=duration,
        )
        changed = ev.advanced[touch] | lost_now | ev.stepped_back[touch]
        timeline.add(lead=touch[changed], t=t[changed] + 60, stage=chains.stage[touch][changed])
        close_t[touch[lost_now | (stage_now == WON)]] = t[lost_now | (stage_now == WON)] + 60
        _emit_evidence(touch, t, ev, chains, note_quality, activities, rng)

    quiet_loss = np.flatnonzero(ev.active & (chains.stage == LOST) & ~(ev.rep_touch | ev.inbound))
    if len(quiet_loss):
        t = np.maximum(day * DAY + 9 * HOUR + rng.random(len(quiet_loss)) * 11 * HOUR, created_t[quiet_loss] + 60)
        timeline.add(lead=quiet_loss, t=t, stage=chains.stage[quiet_loss])
        close_t[quiet_loss] = t


def _emit_evidence(touch, t, ev, chains, note_quality, activities, rng):
    """Attachments that evidence a stage: sent right after the contact that moved the deal on."""
    entered = chains.stage[touch]
    att = np.full(len(touch), None, dtype=object)
    for stage, name in STAGE_EVIDENCE.items():
        att[ev.advanced[touch] & (entered == stage)] = name
    att[ev.advanced[touch] & (ev.previous_stage[touch] == 4)] = "测试报告"
    att[ev.actions["demo"][touch]] = "演示确认单"
    keep = (att != None) & (rng.random(len(touch)) < 0.5 + 0.4 * note_quality[touch])  # noqa: E711
    if not keep.any():
        return
    idx, n = touch[keep], int(keep.sum())
    activities.add(
        lead=idx,
        t=t[keep] + rng.uniform(0.2, 4, n) * HOUR,
        direction=np.full(n, "outbound"),
        channel=np.where(rng.random(n) < 0.5, "邮件", "微信"),
        actor_role=np.full(n, "销售"),
        contact_role=np.full(n, None),
        note_key="evidence:" + att[keep].astype(str),
        attachment=att[keep],
        next_stage=np.full(n, -1),
        next_due=np.full(n, np.nan),
        duration=np.full(n, np.nan),
    )


def _emit_web(day, chains, ev, created_t, leads, web, rng, web_fit):
    active = np.flatnonzero(ev.active)
    if not len(active):
        return
    invalid_kind = leads["_invalid_kind"].to_numpy()[active]
    stage = np.minimum(chains.stage[active], 7)
    rate = 0.12 * np.exp(leads["_web_urgency"].to_numpy()[active] + web_fit * np.clip(chains.eta[active], -2, 2))
    rate = rate * STAGE_WEB_INTENSITY[stage] * np.where(chains.stalled[active], 0.3, 1.0)
    kind_rate = np.array([0.02, 0.02, 0.15, 0.3])  # spam, ads, job seekers, competitors
    rate = np.where(invalid_kind >= 0, kind_rate[np.maximum(invalid_kind, 0)], rate)
    counts = rng.poisson(rate)
    lead = np.repeat(active, counts)
    if not len(lead):
        return
    day_start = np.maximum(day * DAY, created_t[lead])
    t = day_start + rng.random(len(lead)) * ((day + 1) * DAY - day_start)
    stage = np.repeat(stage, counts)
    kind = np.repeat(invalid_kind, counts)
    phase = np.where(stage <= 2, "early", np.where(stage <= 4, "middle", "late"))
    phase = np.where(kind == 2, "job_seeker", np.where(kind == 3, "competitor", np.where(kind >= 0, "spam", phase)))
    mix = np.array([PAGE_MIX[p] for p in phase])
    category = world.choice_rows(mix / mix.sum(axis=1, keepdims=True), rng)
    web.add(lead=lead, t=t, category=category, late=stage >= 5)


def _export_tables(
    leads, reps, chains, close_t, acts, web, timeline, start, days, rng, story, side
) -> dict[str, pd.DataFrame]:
    n = len(leads)
    export_t = days * DAY
    to_ts = lambda t: start + pd.to_timedelta(np.round(t), unit="s")  # noqa: E731
    lead_ids = leads["lead_id"].to_numpy()
    won = chains.stage == WON
    lost = chains.stage == LOST

    # Rows stamped after the outcome, as real exports have: payment after a win, 已选竞品 after a loss.
    won_idx, lost_idx = np.flatnonzero(won), np.flatnonzero(lost & ~chains.invalid & ~chains.duplicate)
    after = pd.concat(
        [
            _after_outcome(won_idx, close_t[won_idx] + rng.uniform(1, 20, len(won_idx)) * DAY, "付款凭证", "won"),
            _after_outcome(won_idx, close_t[won_idx] + rng.uniform(3, 30, len(won_idx)) * DAY, "物流单", "won"),
            _after_outcome(lost_idx, close_t[lost_idx] + rng.uniform(0, 3, len(lost_idx)) * DAY, None, "lost"),
        ]
    )
    acts = pd.concat([acts, after], ignore_index=True)
    acts = acts[acts["t"] <= export_t].sort_values(["lead", "t"], kind="stable")
    notes = np.empty(len(acts), dtype=object)
    keys = _mix_stage_keys(acts["note_key"].to_numpy(), story.note_stage_mix, side)
    for key in np.unique(keys):
        mask = keys == key
        notes[mask] = text.pick_notes(key, int(mask.sum()), rng, rich=story.rich_text)
    if story.note_reveal > 0:
        notes = _add_tone(notes, keys, leads["_disposition"].to_numpy()[acts["lead"].to_numpy()], story, side)
    next_stage = acts["next_stage"].to_numpy()
    next_pool = {s: np.array(v, dtype=object) for s, v in text.NEXT_ACTIONS.items()}
    next_action = np.full(len(acts), None, dtype=object)
    for s, pool in next_pool.items():
        mask = next_stage == s
        next_action[mask] = pool[rng.integers(len(pool), size=mask.sum())]
    lead_idx = acts["lead"].to_numpy()
    activities = pd.DataFrame(
        {
            "lead_id": lead_ids[lead_idx],
            "ts": to_ts(acts["t"].to_numpy()),
            "actor_id": leads["owner_id"].to_numpy()[lead_idx],
            "actor_role": acts["actor_role"].to_numpy(),
            "channel": acts["channel"].to_numpy(),
            "direction": acts["direction"].to_numpy(),
            "duration_seconds": acts["duration"].to_numpy(),
            "contact_role": acts["contact_role"].to_numpy(),
            "note": notes,
            "attachment_type": acts["attachment"].to_numpy(),
            "next_action": next_action,
            "next_action_due": to_ts(np.where(next_stage >= 0, acts["next_due"].to_numpy(), np.nan)),
        }
    )

    post_web = _post_win_web(won_idx, close_t, rng)
    web = pd.concat([web, post_web], ignore_index=True)
    web = web[web["t"] <= export_t].sort_values(["lead", "t"], kind="stable")
    web_events = _web_table(web, lead_ids, leads, to_ts, rng)

    stage_changes = _recorded_stages(timeline, leads, reps, export_t, rng)
    stage_changes = pd.DataFrame(
        {
            "lead_id": lead_ids[stage_changes["lead"]],
            "ts": to_ts(stage_changes["t"].to_numpy()),
            "stage": np.array(STAGES, dtype=object)[stage_changes["stage"]],
        }
    )

    status = np.where(won, "won", np.where(lost, "lost", "open"))
    budget = leads["budget_cny"].to_numpy(float)
    amount = np.where(np.isfinite(budget), budget, np.round(np.exp(rng.normal(12.5, 0.8, n)), -3))
    outcomes = pd.DataFrame(
        {
            "lead_id": lead_ids,
            "status": status,
            "closed_at": to_ts(np.where(won | lost, close_t, np.nan)),
            "amount_cny": np.where(won, np.round(amount * rng.uniform(0.6, 1.3, n), -2), np.nan),
        }
    )

    contract = leads.copy()
    contract = world.add_missing_values(contract, rng)
    contract["form_text"] = _form_texts(contract, leads, rng, story)
    lead_columns = [
        "lead_id",
        "created_at",
        "channel",
        "campaign",
        "province",
        "city",
        "industry",
        "customer_type",
        "company_name",
        "company_size",
        "budget_cny",
        "form_text",
        "phone",
        "email",
        "owner_id",
        "assigned_at",
    ]
    return {
        "leads": contract[lead_columns],
        "web_events": web_events,
        "activities": activities,
        "stage_changes": stage_changes,
        "outcomes": outcomes,
    }


def _mix_stage_keys(keys: np.ndarray, share: float, side: np.random.Generator) -> np.ndarray:
    """Some stage notes are written from a neighbouring stage's pool (reps look back and ahead): the note
    stops being a clean read-out of the true stage."""
    if share <= 0:
        return keys
    keys = keys.copy()
    stage_rows = np.flatnonzero(np.char.startswith(keys.astype(str), "stage:"))
    moved = stage_rows[side.random(len(stage_rows)) < share]
    stage = np.array([int(k[6:]) for k in keys[moved]], dtype=int)
    shifted = np.clip(stage + side.choice([-1, 1], len(moved)), 0, 7)
    keys[moved] = np.char.add("stage:", shifted.astype(str)).astype(object)
    return keys


def _add_tone(notes: np.ndarray, keys: np.ndarray, disposition: np.ndarray, story, side) -> np.ndarray:
    """Informative notes (about the stage or an action) carry the customer's tone with probability
    note_reveal: positive with probability sigmoid(tone_slope * disposition), else negative."""
    keys = keys.astype(str)
    informative = np.char.startswith(keys, "stage:") | np.char.startswith(keys, "action:")
    reveal = informative & (side.random(len(notes)) < story.note_reveal)
    positive = side.random(len(notes)) < 1.0 / (1.0 + np.exp(-story.tone_slope * disposition))
    tone = np.where(reveal, np.where(positive, 1, -1), 0)
    return text.add_tone(notes, tone, side)


def _after_outcome(idx: np.ndarray, t: np.ndarray, attachment: str | None, outcome: str) -> pd.DataFrame:
    n = len(idx)
    return pd.DataFrame(
        {
            "lead": idx,
            "t": t,
            "direction": "outbound",
            "channel": "微信",
            "actor_role": "销售",
            "contact_role": None,
            "note_key": outcome,
            "attachment": attachment,
            "next_stage": -1,
            "next_due": np.full(n, np.nan),
            "duration": np.full(n, np.nan),
        }
    )


def _post_win_web(won_idx: np.ndarray, close_t: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Customers who bought read the docs and download manuals afterwards."""
    counts = rng.poisson(3, len(won_idx))
    lead = np.repeat(won_idx, counts)
    t = np.repeat(close_t[won_idx], counts) + rng.uniform(0.1, 30, len(lead)) * DAY
    category = np.where(rng.random(len(lead)) < 0.6, PAGE_CATEGORIES.index("docs"), PAGE_CATEGORIES.index("download"))
    return pd.DataFrame({"lead": lead, "t": t, "category": category, "late": np.ones(len(lead), dtype=bool)})


def _web_table(web: pd.DataFrame, lead_ids, leads, to_ts, rng) -> pd.DataFrame:
    n = len(web)
    category = web["category"].to_numpy()
    names = np.array(PAGE_CATEGORIES, dtype=object)
    event_type = np.where(names[category] == "download", "download", "page_view").astype(object)
    roll = rng.random(n)
    event_type[(roll < 0.05) & (event_type == "page_view")] = "video_view"
    event_type[(roll > 0.97) & (event_type == "page_view")] = "email_click"
    event_type[(roll > 0.94) & (roll <= 0.97) & (event_type == "page_view")] = "email_open"
    event_type[(roll > 0.92) & (roll <= 0.94) & (event_type == "page_view")] = "live_chat"
    event_type[(roll > 0.91) & (roll <= 0.92) & (event_type == "page_view")] = "webinar"
    slugs = np.array([text.PRODUCTS[i][0] for i in world.INDUSTRIES], dtype=object)
    product = slugs[leads["_industry"].to_numpy()[web["lead"].to_numpy()]]
    page = "/" + names[category] + "/" + product
    dwell = np.round(
        rng.lognormal(3.8, 0.9, n) * np.where(web["late"].to_numpy() & np.isin(category, [1, 3]), 1.8, 1.0)
    )
    dwell = np.where(np.isin(event_type, ["email_open", "email_click"]), np.nan, dwell)
    return pd.DataFrame(
        {
            "lead_id": lead_ids[web["lead"].to_numpy()],
            "ts": to_ts(web["t"].to_numpy()),
            "event_type": event_type,
            "page_category": names[category],
            "page": page,
            "dwell_seconds": dwell,
        }
    )


def _recorded_stages(timeline: pd.DataFrame, leads, reps, export_t: float, rng) -> pd.DataFrame:
    """What the rep typed into the CRM: late, skipped or stuck, depending on the rep's habit."""
    owner = leads["_owner"].to_numpy()[timeline["lead"].to_numpy()]
    habit = np.where(owner >= 0, reps.habit[np.maximum(owner, 0)], "lagging")
    stage = timeline["stage"].to_numpy()
    closing = stage >= WON
    intermediate = (stage > 0) & ~closing
    lag_days = np.array([HABIT_LAG_DAYS[h] for h in habit])
    lag = rng.exponential(lag_days) * DAY + np.where(habit == "lagging", 2 * DAY, 0)
    lag = np.where(stage == 0, 0.0, np.where(closing, rng.exponential(2.0, len(stage)) * DAY, lag))
    keep = np.ones(len(stage), dtype=bool)
    keep &= ~(intermediate & (habit == "skipper") & (rng.random(len(stage)) < 0.5))
    keep &= ~(intermediate & (habit == "stuck") & (stage > 3))
    keep &= ~(intermediate & (habit != "accurate") & (rng.random(len(stage)) < 0.1))
    recorded = pd.DataFrame({"lead": timeline["lead"].to_numpy(), "t": timeline["t"].to_numpy() + lag, "stage": stage})[
        keep
    ]
    recorded = recorded.sort_values(["lead", "t"], kind="stable")
    recorded["t"] = recorded.groupby("lead")["t"].cummax()  # a later change is never typed before an earlier one
    recorded = recorded[recorded["t"] <= export_t]
    same_as_before = recorded["stage"].eq(recorded.groupby("lead")["stage"].shift())
    return recorded[~same_as_before].reset_index(drop=True)


def _form_texts(contract: pd.DataFrame, leads: pd.DataFrame, rng: np.random.Generator, story: Story) -> np.ndarray:
    empty_rate = contract["channel"].map({"400电话": 0.5, "展会": 0.3, "企业微信": 0.15}).fillna(0.06).to_numpy()
    empty = rng.random(len(contract)) < empty_rate
    out = np.full(len(contract), None, dtype=object)
    intent = leads["_intent"].to_numpy()
    kind = leads["_invalid_kind"].to_numpy()
    # Plain arrays, not .iat per row: the same values (NaN for missing), a fraction of the time.
    industry, city = contract["industry"].to_numpy(), contract["city"].to_numpy()
    budget, phone = contract["budget_cny"].to_numpy(dtype=float), contract["phone"].to_numpy()
    style = text.TextStyle.of(story)
    for i in np.flatnonzero(~empty):
        out[i] = text.form_text(
            text.INTENTS[intent[i]],
            text.INVALID_KINDS[kind[i]] if kind[i] >= 0 else None,
            industry[i],
            city[i],
            budget[i],
            rng,
            phone=phone[i],
            style=style,
        )
    return out


def family_variance(story: Story, leads: pd.DataFrame, eta: np.ndarray) -> dict[str, float]:
    """Variance of each log-odds term over the world's valid leads: how much of the static log-odds each signal
    family carries. Profile is the firmographic part (scaled), intent the form's qualification term."""
    valid = leads["_intent"].to_numpy() != text.INTENTS.index("无效")
    firmographic = leads["_firmographic"].to_numpy()
    load_loss = load_effects(story, leads["_load"].to_numpy())[0]
    terms = {
        "profile": firmographic,
        "intent": leads["_fit_observable"].to_numpy() - firmographic,
        "behaviour": story.urgency_weight * leads["_urgency"].to_numpy(),
        "notes": story.disposition_weight * leads["_disposition"].to_numpy(),
        "rep": leads["_rep_skill"].to_numpy() - load_loss,
        "noise": leads["_hidden_fit"].to_numpy(),
    }
    out = {name: float(values[valid].var()) for name, values in terms.items()}
    out["total"] = float(eta[valid].var())
    return out


def _write_story(out: Path, story: Story, seed: int, leads: pd.DataFrame, chains: Chains) -> None:
    """truth/story.json: the story's parameters (enough to replay it: --story truth/story.json) and the
    variance each signal family carries in this world."""
    record = {**story.to_json(), "seed": seed, "variance": family_variance(story, leads, chains.eta)}
    (out / "truth" / "story.json").write_text(json.dumps(record, ensure_ascii=False, indent=2))


INTENT_LABEL_SAMPLE = 3000


def _write_intent_labels(out: Path, leads: pd.DataFrame, truth_leads: pd.DataFrame, seed: int) -> None:
    """labels/intent.csv: a random sample of form texts labelled with their intent, as a customer's hand-labelled
    file would be (raw text, phones unmasked; empty forms skipped: there is nothing to label). Not a contract
    table; its own random stream, so writing it changes nothing else."""
    text = leads["form_text"].fillna("").astype(str)
    has_text = np.flatnonzero(text.str.strip().to_numpy() != "")
    rng = np.random.default_rng([seed, 4])
    pick = rng.choice(has_text, min(INTENT_LABEL_SAMPLE, len(has_text)), replace=False)
    labels = truth_leads.set_index("lead_id")["true_intent"]
    sample = pd.DataFrame(
        {"text": text.to_numpy()[pick], "label": labels.loc[leads["lead_id"].to_numpy()[pick]].to_numpy()}
    )
    (out / "labels").mkdir(parents=True, exist_ok=True)
    sample.to_csv(out / "labels" / "intent.csv", index=False)


def _truth_tables(leads, reps, chains, timeline, start) -> dict[str, pd.DataFrame]:
    lead_ids = leads["lead_id"].to_numpy()
    truth_leads = pd.DataFrame(
        {
            "lead_id": lead_ids,
            "true_intent": np.array(text.INTENTS, dtype=object)[leads["_intent"].to_numpy()],
            "invalid_kind": np.array(text.INVALID_KINDS + [None], dtype=object)[leads["_invalid_kind"].to_numpy()],
            "is_spam": leads["_intent"].to_numpy() == text.INTENTS.index("无效"),
            "duplicate_of": leads["_duplicate_of"].to_numpy(),
            "invalid_phone": leads["_bad_phone"].to_numpy(bool),
            "requires_sample": chains.requires_sample,
            "requires_tender": chains.requires_tender,
            "fit_observable": leads["_fit_observable"].to_numpy(),
            "hidden_fit": leads["_hidden_fit"].to_numpy(),
            "urgency": leads["_urgency"].to_numpy(),
            "fast_first_touch": chains.fast_first_touch & chains.has_owner,
            "final_true_stage": np.array(STAGES, dtype=object)[chains.stage],
            # What the story's other terms and a routing evaluation need (assignment.py):
            "disposition": leads["_disposition"].to_numpy(),
            "true_industry": np.array(world.INDUSTRIES, dtype=object)[leads["_draw_industry"].to_numpy()],
            "true_city": np.array([r[1] for r in world.REGIONS], dtype=object)[leads["_region"].to_numpy()],
            "owner_load": leads["_load"].to_numpy(),
            "rep_skill": leads["_rep_skill"].to_numpy(),
            "eta": chains.eta,
        }
    )
    timeline_frame = pd.DataFrame(
        {
            "lead_id": lead_ids[timeline["lead"].to_numpy()],
            "ts": start + pd.to_timedelta(np.round(timeline["t"].to_numpy()), unit="s"),
            "true_stage": np.array(STAGES, dtype=object)[timeline["stage"].to_numpy()],
        }
    ).sort_values(["lead_id", "ts"], kind="stable")
    return {"leads": truth_leads, "stage_timeline": timeline_frame, "reps": reps.frame()}


def _oracle(captured, n_snap, start, days, replicates, seed, progress) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Oracle P(won within 30/60/90 days) per snapshot, and true effects of actions taken at the snapshot."""
    if not captured:
        return pd.DataFrame(), pd.DataFrame()
    lead = np.concatenate([c[0] for c in captured])
    day = np.concatenate([np.full(len(c[0]), c[1]) for c in captured])
    states = [c[2] for c in captured]
    merged = Chains(**{k: np.concatenate([getattr(s, k) for s in states]) for k in states[0].__dataclass_fields__})
    rng = np.random.default_rng(seed + 1)
    keep = np.sort(rng.choice(len(lead), min(n_snap, len(lead)), replace=False))
    lead, day, merged = lead[keep], day[keep], merged.take(keep)
    # Days are stepped in lockstep for all snapshots: a chain's own "today" is its snapshot day + offset.
    # Shifting created/first-touch days by -day puts every snapshot at day 0.
    merged.created_day = merged.created_day - day
    merged.first_touch_day = merged.first_touch_day - day
    copies = merged.take(np.repeat(np.arange(len(lead)), replicates))
    won_at = rollout_won_day(copies, 0, 90, seed + 2, progress=progress, desc="oracle rollouts").reshape(
        len(lead), replicates
    )
    as_of = start + pd.to_timedelta(day + 1, unit="D")
    snapshots = pd.DataFrame(
        {
            "lead_id": [f"L{i:07d}" for i in lead],
            "as_of": as_of,
            "true_stage": np.array(STAGES, dtype=object)[merged.stage],
            "stalled": merged.stalled,
            "p_won_30": ((won_at > 0) & (won_at <= 30)).mean(axis=1),
            "p_won_60": ((won_at > 0) & (won_at <= 60)).mean(axis=1),
            "p_won_90": (won_at > 0).mean(axis=1),
            "matured": (day + 1 + 90) <= days,
        }
    )
    cf_index = np.sort(rng.choice(len(lead), min(500, len(lead)), replace=False))
    base = merged.take(np.repeat(cf_index, replicates))
    p_without = (rollout_won_day(base, 0, 90, seed + 3) > 0).reshape(len(cf_index), replicates).mean(axis=1)
    rows = []
    for action in tqdm(ACTIONS, desc="counterfactuals", disable=not progress):
        forced = base.take(np.arange(len(base)))
        getattr(forced, action)[:] = True
        p_with = (rollout_won_day(forced, 0, 90, seed + 3) > 0).reshape(len(cf_index), replicates).mean(axis=1)
        rows.append(
            pd.DataFrame(
                {
                    "lead_id": snapshots["lead_id"].to_numpy()[cf_index],
                    "as_of": as_of[cf_index],
                    "action": action,
                    "already_done": getattr(merged, action)[cf_index],
                    "p_won_90_without": p_without,
                    "p_won_90_with": p_with,
                    "effect": p_with - p_without,
                }
            )
        )
    return snapshots, pd.concat(rows, ignore_index=True)


def _write(out_dir, tables, truth, table_format, seed, n_leads, start) -> SimulationSummary:
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if table_format == "csv":
            frame.to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
        else:
            frame.to_parquet(out / f"{name}.parquet", index=False)
    for name, frame in truth.items():
        frame.to_parquet(out / "truth" / f"{name}.parquet", index=False)
    counts = {name: len(frame) for name, frame in tables.items()}
    manifest = {
        "seed": seed,
        "n_leads": n_leads,
        "export_time": EXPORT_TIME.isoformat(),
        "start": start.isoformat(),
        "rows": counts,
        "truth_rows": {name: len(frame) for name, frame in truth.items()},
    }
    (out / "truth" / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    return SimulationSummary(out, counts)
