"""Point-in-time look-ups: what a table held for a lead *as of* a time T, vectorised by binary search.

Every feature reads event tables only through `EventIndex`, which sees rows stamped at or before T and
nothing after. Event times are rounded up and as-of times down to the second, so rounding can hide an
event from T but never show a later one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_SHIFT = np.int64(2**33)  # seconds span per lead in the composite key: about 272 years
_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
Times = pd.Series | np.ndarray  # timestamps, or as-of seconds already converted by `as_of_seconds`


def _seconds(ts: pd.Series | pd.DatetimeIndex, *, round_up: bool) -> np.ndarray:
    ns = (pd.to_datetime(ts, utc=True) - _EPOCH).to_numpy(dtype="timedelta64[ns]").astype(np.int64)
    sec = -((-ns) // 10**9) if round_up else ns // 10**9
    return np.clip(sec, 0, int(_SHIFT) - 1)


def as_of_seconds(as_of: pd.Series) -> np.ndarray:
    """As-of times as the index's seconds (rounded down): convert once, query many times."""
    return _seconds(as_of, round_up=False)


def _as_seconds(times: Times) -> np.ndarray:
    return times if isinstance(times, np.ndarray) else as_of_seconds(times)


class EventIndex:
    """One event table sorted by (lead, time), answering as-of counts, sums and row look-ups."""

    def __init__(self, lead_codes: np.ndarray, ts: pd.Series, mask: np.ndarray | None = None) -> None:
        keep = (lead_codes >= 0) & ts.notna().to_numpy()
        if mask is not None:
            keep &= mask
        rows = np.flatnonzero(keep)
        key = lead_codes[rows].astype(np.int64) * _SHIFT + _seconds(ts.iloc[rows], round_up=True)
        sort = np.argsort(key, kind="stable")
        self.order, self.keys = rows[sort], key[sort]

    def subset(self, mask: np.ndarray) -> EventIndex:
        """The index of the rows where `mask` (over the original table) is true, without sorting again."""
        sub = object.__new__(EventIndex)
        keep = np.asarray(mask, bool)[self.order]
        sub.order, sub.keys = self.order[keep], self.keys[keep]
        return sub

    @staticmethod
    def _key(lead_codes: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        return lead_codes.astype(np.int64) * _SHIFT + seconds

    def _end(self, lead_codes: np.ndarray, times: Times) -> np.ndarray:
        return np.searchsorted(self.keys, self._key(lead_codes, _as_seconds(times)), side="right")

    def _lead_start(self, lead_codes: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.keys, self._key(lead_codes, np.zeros(len(lead_codes), dtype=np.int64)), side="left")

    def count_between(self, lead_codes: np.ndarray, start: Times, end: Times) -> np.ndarray:
        """Rows with start < ts <= end for each (lead, start, end); end is the as-of time."""
        return self._end(lead_codes, end) - self._end(lead_codes, start)

    def count_until(self, lead_codes: np.ndarray, as_of: Times) -> np.ndarray:
        """Rows with ts <= as_of for each lead."""
        return self._end(lead_codes, as_of) - self._lead_start(lead_codes)

    def positions_until(self, lead_codes: np.ndarray, as_of: Times) -> tuple[np.ndarray, np.ndarray]:
        """(start, end): each lead's rows at or before as_of are sorted positions start..end-1 (see `order`)."""
        return self._lead_start(lead_codes), self._end(lead_codes, as_of)

    def sum_between(self, values: np.ndarray, lead_codes: np.ndarray, start: Times, end: Times) -> np.ndarray:
        """Sum of `values` (one per original row, NaN counts as 0) over rows with start < ts <= end."""
        cumsum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(np.asarray(values, float)[self.order]))])
        return cumsum[self._end(lead_codes, end)] - cumsum[self._end(lead_codes, start)]

    def first_row(self, lead_codes: np.ndarray, as_of: Times) -> np.ndarray:
        """Row number of each lead's first row, if it is at or before as_of; else -1."""
        start, end = self.positions_until(lead_codes, as_of)
        found = end > start
        return np.where(found, self.order[np.minimum(start, len(self.order) - 1)] if len(self.order) else -1, -1)

    def last_row(self, lead_codes: np.ndarray, as_of: Times) -> np.ndarray:
        """Row number (in the original table) of each lead's last row at or before as_of, or -1."""
        start, end = self.positions_until(lead_codes, as_of)
        found = end > start
        return np.where(found, self.order[np.maximum(end - 1, 0)] if len(self.order) else -1, -1)


def lead_codes(lead_ids: pd.Series, leads: pd.Index) -> np.ndarray:
    """Integer code of each lead_id in the leads index; -1 where unknown."""
    return leads.get_indexer(lead_ids)
