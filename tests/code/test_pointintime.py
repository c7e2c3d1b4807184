"""Point in time: a feature as of T reads nothing stamped after T, and the look-ups are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.contract import EVENT_TABLES
from features.pipeline import FEATURES, build_features
from features.pointintime import EventIndex
from features.snapshots import make_snapshots

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
    for i, (code, t, s) in enumerate(zip(snap_codes, as_of, start, strict=True)):
        mine = (codes == code) & (ts <= t).to_numpy()
        assert got[i] == (mine & (ts > s).to_numpy()).sum()
        assert until[i] == mine.sum()
        if mine.any():
            assert ts[last[i]] == ts[mine].max() and codes[last[i]] == code
        else:
            assert last[i] == -1


def _with_future_rows(tables: dict[str, pd.DataFrame], as_of: pd.Series, rng: np.random.Generator) -> dict:
    """Copies of the event tables with extra rows stamped after each snapshot's as_of (up to a year later)."""
    grown = dict(tables)
    for name in EVENT_TABLES:
        frame = tables[name]
        extra = frame.sample(min(len(frame), 3000), random_state=1).reset_index(drop=True)
        lead_as_of = pd.Series(as_of.groupby(tables["_snap_leads"]).min())
        earliest = extra["lead_id"].map(lead_as_of)
        extra = extra[earliest.notna()].reset_index(drop=True)
        shift = pd.to_timedelta(rng.integers(1, 365 * 86_400, len(extra)), unit="s")
        extra["ts"] = (earliest[earliest.notna()].reset_index(drop=True) + shift).dt.tz_convert("Asia/Shanghai")
        grown[name] = pd.concat([frame, extra], ignore_index=True)
    return grown


def test_features_as_of_t_do_not_change_when_rows_after_t_are_added(tables) -> None:
    rng = np.random.default_rng(0)
    snaps = make_snapshots(tables).sample(3000, random_state=0).reset_index(drop=True)
    # Future rows may only come after every snapshot of their lead, so take each lead's latest snapshot.
    snaps = snaps.sort_values("as_of").groupby("lead_id").tail(1).reset_index(drop=True)
    before = build_features(tables, snaps)
    with_keys = {**tables, "_snap_leads": snaps["lead_id"]}
    lead_as_of = snaps.set_index("lead_id")["as_of"]
    grown = _with_future_rows(with_keys, lead_as_of.reindex(snaps["lead_id"]).reset_index(drop=True), rng)
    grown.pop("_snap_leads")
    added = sum(len(grown[n]) - len(tables[n]) for n in EVENT_TABLES)
    assert added > 1000
    after = build_features(grown, snaps)
    pd.testing.assert_frame_equal(before, after)


def test_a_careless_pipeline_would_see_the_future(tables) -> None:
    """The export holds rows after the outcome, so reading past as_of does change features (the trap is armed)."""
    snaps = make_snapshots(tables)
    snaps = snaps[snaps["matured"]].sample(2000, random_state=0).reset_index(drop=True)
    careless = snaps.assign(as_of=pd.Timestamp("2100-01-01", tz="Asia/Shanghai"))
    honest, leaky = build_features(tables, snaps), build_features(tables, careless)
    assert (leaky["activities_total"] > honest["activities_total"]).mean() > 0.5
    assert set(FEATURES) == set(honest.columns)


def test_snapshot_labels_follow_outcomes_and_open_leads_are_censored() -> None:
    created = pd.Timestamp("2026-01-01 09:00", tz="Asia/Shanghai")
    tables = {
        "leads": pd.DataFrame({"lead_id": ["won", "lost", "open"], "created_at": [created] * 3}),
        "outcomes": pd.DataFrame(
            {
                "lead_id": ["won", "lost", "open"],
                "status": ["won", "lost", "open"],
                "closed_at": [created + pd.Timedelta(days=100), created + pd.Timedelta(days=50), pd.NaT],
            }
        ),
        **{
            name: pd.DataFrame({"lead_id": [], "ts": pd.Series([], dtype="datetime64[ns, Asia/Shanghai]")})
            for name in EVENT_TABLES
        },
    }
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
