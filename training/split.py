"""The time split every evaluation uses: fit on the past, judge on the later period, no label from the future.

The cutoff is where the last `test_share` of matured snapshots begins. Snapshots before it are the training
rows, labelled with what was known at the cutoff (a deal won after it is still open there, and its 90-day
label is matured only if the horizon ends before the cutoff); snapshots from the cutoff on are the test rows,
labelled with everything the export knows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.labels import HORIZON_DAYS, followup_days, snapshot_outcomes, won_within


@dataclass(frozen=True)
class TimeSplit:
    cutoff: pd.Timestamp
    train: pd.DataFrame  # lead_id, as_of, won_within, matured: as known at the cutoff
    test: pd.DataFrame  # lead_id, as_of, won_within, matured: as known at the export's end


def time_split(tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame, test_share: float = 0.2) -> TimeSplit:
    """Split `make_snapshots(tables)` at the cutoff (see the module's docstring)."""
    matured = snapshots.loc[snapshots["matured"], "as_of"]
    if matured.empty:
        raise ValueError("no snapshot has a matured 90-day label: the export covers too short a period")
    threshold = matured.quantile(1 - test_share)
    cutoff = matured[matured >= threshold].min()
    before = (snapshots["as_of"] < cutoff).to_numpy()
    train = snapshots[before].reset_index(drop=True)
    durations, events = snapshot_outcomes(tables, train, until=cutoff)
    train = train.assign(
        won_within=won_within(durations, events, HORIZON_DAYS),
        matured=followup_days(tables, train, until=cutoff) >= HORIZON_DAYS,
    )
    return TimeSplit(cutoff, train, snapshots[~before].reset_index(drop=True))
