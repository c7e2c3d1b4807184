"""Point in time: a feature as of T reads nothing stamped after T, and the look-ups are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.catalogue import FEATURES
from features.contract import EVENT_TABLES
from features.pipeline import raw_features
from features.pointintime import EventIndex
from features.snapshots import make_snapshots
from tests.helpers import make_tables

T0 = pd.Timestamp("2026-01-01", tz="Asia/Shanghai")


@settings(max_examples=50, deadline=None)
@given(
    event_offsets=st.lists(st.integers(0, 100 * 86_400), min_size=0, max_size=40),
    event_leads=st.lists(st.integers(0, 4), min_size=40, max_size=40),
    snap_offsets=st.lists(st.integers(0, 100 * 86_400), min_size=1, max_size=10),
    window_days=st.integers(1, 40),
)
def test_event_index_counts_match_brute_force(event_offsets, event_leads, snap_offsets, window_days) -> None:
    ts = pd.Series(T0 + pd.to_timedelta(event_offsets, unit="s"))
    codes = np.array(event_leads[: len(event_offsets)])
    index = EventIndex(codes, ts)
    snap_codes = np.arange(len(snap_offsets)) % 5
    as_of = pd.Series(T0 + pd.to_timedelta(snap_offsets, unit="s"))
    start = as_of - pd.Timedelta(days=window_days)
    got = index.count_between(snap_codes, start, as_of)
    until = index.count_until(snap_codes, as_of)
    last = index.last_row(snap_codes, as_of)
    first = index.first_row(snap_codes, as_of)
    for i, (code, t, s) in enumerate(zip(snap_codes, as_of, start, strict=True)):
        mine = (codes == code) & (ts <= t).to_numpy()
        assert got[i] == (mine & (ts > s).to_numpy()).sum()
        assert until[i] == mine.sum()
        if mine.any():
            assert ts[last[i]] == ts[mine].max() and codes[last[i]] == code
            assert ts[first[i]] == ts[codes == code].min()
        else:
            assert last[i] == -1 and first[i] == -1


ROLES = ["采购经理", "财务处长", "总经理", None]
PAGES = ["pricing", "docs", "product", "careers"]
STAGES = ["初步接触", "需求确认", "报价", "合同谈判"]
ATTACH = [None, "报价单", "合同", "方案"]
event = st.tuples(st.integers(0, 2), st.integers(-40 * 24, 40 * 24), st.integers(0, 3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    acts=st.lists(event, max_size=25),
    web=st.lists(event, max_size=25),
    stages=st.lists(event, max_size=8),
    outcome_hours=st.lists(st.integers(-20 * 24, 40 * 24), min_size=3, max_size=3),
)
def test_features_as_of_t_equal_features_from_rows_up_to_t(acts, web, stages, outcome_hours) -> None:
    """Property: features as of T from all rows == features from only the rows stamped at or before T."""
    as_of = pd.Timestamp("2026-03-01 12:00", tz="Asia/Shanghai")
    stamp = lambda hours: (as_of + pd.Timedelta(hours=hours)).isoformat()  # noqa: E731
    leads = [
        {
            "lead_id": f"L{i}",
            "created_at": "2026-01-01 09:00",
            "owner_id": "rep",
            "industry": "医疗器械",
            "form_text": "询问DR设备报价",
        }
        for i in range(3)
    ]
    rows = {
        "activities": [
            {
                "lead_id": f"L{n}",
                "ts": stamp(h),
                "contact_role": ROLES[k],
                "attachment_type": ATTACH[k],
                "channel": "电话",
                "note": f"跟进{k}，已发报价单",
                "next_action": "回访",
                "next_action_due": stamp(h + 48),
            }
            for n, h, k in acts
        ],
        "web_events": [
            {
                "lead_id": f"L{n}",
                "ts": stamp(h),
                "event_type": "page_view",
                "page_category": PAGES[k],
                "dwell_seconds": 30 + k,
            }
            for n, h, k in web
        ],
        "stage_changes": [{"lead_id": f"L{n}", "ts": stamp(h), "stage": STAGES[k]} for n, h, k in stages],
    }
    # Other leads of the same owner close before or after T: the owner figures must see only the former.
    history = [
        {"lead_id": f"H{i}", "created_at": "2025-12-01", "owner_id": "rep", "industry": "医疗器械"} for i in range(3)
    ]
    outcomes = [{"lead_id": f"H{i}", "status": "won", "closed_at": stamp(h)} for i, h in enumerate(outcome_hours)]
    everything = make_tables(leads=leads + history, outcomes=outcomes, **rows)
    past = {name: [r for r in rows[name] if pd.Timestamp(r["ts"]) <= as_of] for name in rows}
    past_outcomes = [o for o in outcomes if pd.Timestamp(o["closed_at"]) <= as_of]
    up_to_t = make_tables(leads=leads + history, outcomes=past_outcomes, **past)
    snapshots = pd.DataFrame({"lead_id": ["L0", "L1", "L2"], "as_of": as_of})
    a = raw_features(everything, snapshots)
    b = raw_features(up_to_t, snapshots)
    pd.testing.assert_frame_equal(a, b)


def test_fitted_pipeline_ignores_rows_added_after_t(tables, fitted_pipeline) -> None:
    rng = np.random.default_rng(0)
    snaps = make_snapshots(tables).sample(2000, random_state=0)
    snaps = snaps.sort_values("as_of").groupby("lead_id").tail(1).reset_index(drop=True)
    latest = snaps.set_index("lead_id")["as_of"]
    grown = dict(tables)
    for name in EVENT_TABLES:
        extra = tables[name][tables[name]["lead_id"].isin(latest.index)].sample(1500, random_state=1, replace=True)
        extra = extra.reset_index(drop=True)
        extra["ts"] = extra["lead_id"].map(latest) + pd.to_timedelta(
            rng.integers(1, 365 * 86_400, len(extra)), unit="s"
        )
        grown[name] = pd.concat([tables[name], extra], ignore_index=True)
    before = fitted_pipeline.transform(tables, snaps)
    after = fitted_pipeline.transform(grown, snaps)
    pd.testing.assert_frame_equal(before, after)


def test_a_careless_pipeline_would_see_the_future(tables) -> None:
    """The export holds rows after the outcome, so reading past as_of does change features (the trap is armed)."""
    snaps = make_snapshots(tables)
    snaps = snaps[snaps["matured"]].sample(2000, random_state=0).reset_index(drop=True)
    careless = snaps.assign(as_of=pd.Timestamp("2100-01-01", tz="Asia/Shanghai"))
    honest = raw_features(tables, snaps)
    leaky = raw_features(tables, careless)
    assert (leaky["activities_total"] > honest["activities_total"]).mean() > 0.5
    assert (leaky["has_付款凭证"] > honest["has_付款凭证"]).sum() > 50
    assert set(FEATURES) - {"form_text_win_p", "notes_win_p", "notes_stage_level"} <= set(honest.columns)


def test_snapshot_labels_follow_outcomes_and_open_leads_are_censored() -> None:
    created = pd.Timestamp("2026-01-01 09:00", tz="Asia/Shanghai")
    tables = make_tables(
        leads=[{"lead_id": x, "created_at": created.isoformat()} for x in ["won", "lost", "open"]],
        outcomes=[
            {"lead_id": "won", "status": "won", "closed_at": (created + pd.Timedelta(days=100)).isoformat()},
            {"lead_id": "lost", "status": "lost", "closed_at": (created + pd.Timedelta(days=50)).isoformat()},
            {"lead_id": "open", "status": "open"},
        ],
    )
    snaps = make_snapshots(tables, until=created + pd.Timedelta(days=200))
    won = snaps[snaps["lead_id"] == "won"]
    # Snapshots on days 1, 15, ..., 99 while open; won on day 100, so won within 90 days from day 15 on.
    assert won["won_within"].tolist() == [False, True, True, True, True, True, True, True]
    assert not snaps[snaps["lead_id"] == "lost"]["won_within"].any()
    assert (snaps[snaps["lead_id"] == "lost"]["as_of"] < created + pd.Timedelta(days=50)).all()
    open_snaps = snaps[snaps["lead_id"] == "open"]
    assert not open_snaps["won_within"].any()
    assert (
        open_snaps["matured"] == (open_snaps["as_of"] + pd.Timedelta(days=90) <= created + pd.Timedelta(days=200))
    ).all()
    assert not open_snaps["matured"].all(), "recent snapshots of open leads are censored, not negatives"
