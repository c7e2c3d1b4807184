"""Labels: what happened after a snapshot's as_of, read from the outcomes table. Defined once here; training,
evaluation, the simulator's checks and the benchmarks all import them.

A snapshot's outcome is (days from as_of to the win or loss, event); a deal still open when observation
stops is censored there (event OPEN), never counted as a loss. The health score's label is "won within
HORIZON_DAYS", and it is *matured* when the whole horizon lies inside observation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import EVENT_TABLES, TIMEZONE

HORIZON_DAYS = 90  # the health score is P(won within 90 days of as_of)
REPORT_DAYS = (30, 60, 90)  # the close-date answer's horizons
OPEN, WON, LOST = 0, 1, 2  # event codes of an outcome: censored (still open), won, lost
DAY = pd.Timedelta(days=1)


def export_time(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """Latest timestamp anywhere in the export: nothing later can be known."""
    stamps = [tables["leads"]["created_at"].max(), tables["outcomes"]["closed_at"].max()]
    stamps += [tables[name]["ts"].max() for name in EVENT_TABLES if len(tables[name])]
    return max(s for s in stamps if pd.notna(s)).tz_convert(TIMEZONE)


def snapshot_outcomes(
    tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame, until: pd.Timestamp | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Days from each snapshot's as_of to its outcome, and the event (OPEN censored, WON, LOST).

    Only what is known at `until` (default: the export's end) counts: a deal closed later, or still open,
    is censored at `until`. Training passes its cutoff here so no later outcome leaks into a label.
    """
    end = until if until is not None else export_time(tables)
    outcomes = tables["outcomes"].drop_duplicates("lead_id").set_index("lead_id")
    closed_at = pd.to_datetime(snapshots["lead_id"].map(outcomes["closed_at"]), utc=True)
    status = snapshots["lead_id"].map(outcomes["status"]).fillna("open").to_numpy()
    as_of = pd.to_datetime(snapshots["as_of"], utc=True)
    known = (closed_at <= end).fillna(False).to_numpy(bool) & np.isin(status, ["won", "lost"])
    stop = closed_at.where(known, end)
    events = np.where(known, np.where(status == "won", WON, LOST), OPEN)
    if (stop < as_of).any():
        raise ValueError("a snapshot's as_of lies after its outcome or after `until`")
    return ((stop - as_of) / DAY).to_numpy(float), events.astype(int)


def followup_days(
    tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame, until: pd.Timestamp | None = None
) -> np.ndarray:
    """Days from as_of to the end of observation: a horizon is matured when it fits inside."""
    end = until if until is not None else export_time(tables)
    return ((end - pd.to_datetime(snapshots["as_of"], utc=True)) / DAY).to_numpy(float)


def won_within(durations: np.ndarray, events: np.ndarray, days: float = HORIZON_DAYS) -> np.ndarray:
    """The label: won within `days` of as_of."""
    return (np.asarray(events) == WON) & (np.asarray(durations) <= days)


def outcome_frame(durations: np.ndarray, events: np.ndarray) -> pd.DataFrame:
    """Outcomes as the close-date model's target: days to the event or censoring, and the event code."""
    return pd.DataFrame({"days": np.asarray(durations, float), "event": np.asarray(events, int)})
