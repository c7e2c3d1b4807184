"""Browsing behaviour as of T: recency, frequency and dwell by page category and event type, trend,
decision-page intensity and sessions. Reads web_events only through EventIndex (point in time)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import TABLES
from features.pointintime import EventIndex, as_of_seconds

DAY = pd.Timedelta(days=1)
PAGE_CATEGORIES = list(TABLES["web_events"].fields[3].choices)
EVENT_TYPES = list(TABLES["web_events"].fields[2].choices)
DECISION_PAGES = ["pricing", "docs", "download"]  # what buyers read as a decision nears
SESSION_GAP = pd.Timedelta(minutes=30)


def session_starts(web: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
    """A row starts a session when the same lead's previous event is more than 30 minutes earlier.
    Depends only on earlier rows, so it is point-in-time safe."""
    order = np.lexsort((web["ts"].to_numpy(), codes))
    ts = web["ts"].to_numpy()[order]
    lead = codes[order]
    start_sorted = np.ones(len(order), dtype=bool)
    start_sorted[1:] = (lead[1:] != lead[:-1]) | ((ts[1:] - ts[:-1]) > SESSION_GAP.to_timedelta64())
    starts = np.empty(len(order), dtype=bool)
    starts[order] = start_sorted
    return starts


def behaviour_features(web: pd.DataFrame, web_codes: np.ndarray, code: np.ndarray, as_of: pd.Series) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    t = as_of_seconds(as_of)  # converted once; windows are whole days earlier
    w = {days: t - days * 86_400 for days in (1, 7, 14, 30)}
    ts = web["ts"]
    everything = EventIndex(web_codes, ts)
    for days in (1, 7, 30):
        out[f"web_events_{days}d"] = everything.count_between(code, w[days], t)
    out["web_events_total"] = everything.count_until(code, t)
    previous_week = everything.count_between(code, w[14], w[7])
    out["web_trend_7d"] = out["web_events_7d"] - previous_week
    last = everything.last_row(code, t)
    last_ts = ts.reset_index(drop=True).reindex(last).reset_index(drop=True)
    out["days_since_last_web_event"] = ((as_of - last_ts) / DAY).to_numpy(float)
    dwell = web["dwell_seconds"].to_numpy(float)
    out["dwell_minutes_7d"] = everything.sum_between(dwell, code, w[7], t) / 60
    out["dwell_minutes_30d"] = everything.sum_between(dwell, code, w[30], t) / 60

    category = web["page_category"].to_numpy(object)
    for name in PAGE_CATEGORIES:
        index = everything.subset(category == name)
        out[f"{name}_views_7d"] = index.count_between(code, w[7], t)
        out[f"{name}_views_30d"] = index.count_between(code, w[30], t)
    decision = everything.subset(np.isin(category, DECISION_PAGES))
    decision_30d = decision.count_between(code, w[30], t)
    out["decision_page_share_30d"] = np.where(
        out["web_events_30d"] > 0, decision_30d / np.maximum(out["web_events_30d"], 1), np.nan
    )
    out["decision_dwell_minutes_30d"] = decision.sum_between(dwell, code, w[30], t) / 60

    event_type = web["event_type"].to_numpy(object)
    for name in EVENT_TYPES:
        if name == "page_view":
            continue  # page views are the category counts above
        index = everything.subset(event_type == name)
        out[f"{name}_30d"] = index.count_between(code, w[30], t)

    sessions = everything.subset(session_starts(web, web_codes))
    out["sessions_7d"] = sessions.count_between(code, w[7], t)
    out["sessions_30d"] = sessions.count_between(code, w[30], t)
    return pd.DataFrame({k: np.asarray(v, float) for k, v in out.items()})
