"""Training examples as (lead, as_of) snapshots across each lead's open life, labelled from what follows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.labels import HORIZON_DAYS, export_time, snapshot_outcomes, won_within

__all__ = ["make_snapshots"]


def make_snapshots(
    tables: dict[str, pd.DataFrame],
    *,
    step_days: float = 14.0,
    first_after_days: float = 1.0,
    horizon_days: int = HORIZON_DAYS,
    max_age_days: float = 365.0,
    until: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One snapshot per lead every `step_days` while it is open, from `first_after_days` after creation.

    Columns: lead_id, as_of, won_within (label: won in (as_of, as_of + horizon], as known at `until`) and
    matured (the whole horizon lies before `until`, so the label is known). Open leads are censored, never
    "lost". `until` defaults to the export's end.
    """
    end_of_data = until or export_time(tables)
    leads = tables["leads"][["lead_id", "created_at"]]
    outcomes = tables["outcomes"].drop_duplicates("lead_id").set_index("lead_id")
    closed_at = leads["lead_id"].map(outcomes["closed_at"])
    open_until = closed_at.where(closed_at.notna(), end_of_data).clip(upper=end_of_data)

    n_steps = int(np.ceil(max_age_days / step_days)) + 1
    offsets = pd.to_timedelta(first_after_days + step_days * np.arange(n_steps), unit="D")
    lead_pos = np.repeat(np.arange(len(leads)), n_steps)
    created = leads["created_at"].iloc[lead_pos].reset_index(drop=True)
    as_of = created + pd.to_timedelta(np.tile(offsets.to_numpy(), len(leads)))
    alive = (as_of < open_until.to_numpy()[lead_pos]).to_numpy()
    lead_pos, as_of = lead_pos[alive], as_of[alive].reset_index(drop=True)

    snapshots = pd.DataFrame({"lead_id": leads["lead_id"].to_numpy()[lead_pos], "as_of": as_of})
    durations, events = snapshot_outcomes(tables, snapshots, until=end_of_data)
    snapshots["won_within"] = won_within(durations, events, horizon_days)
    snapshots["matured"] = (as_of + pd.Timedelta(days=horizon_days) <= end_of_data).to_numpy(bool)
    return snapshots
