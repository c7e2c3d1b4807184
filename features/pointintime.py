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


def _seconds(ts: pd.Series | pd.DatetimeIndex, *, round_up: bool) -> np.ndarray:
    ns = (pd.to_datetime(ts, utc=True) - _EPOCH).to_numpy(dtype="timedelta64[ns]").astype(np.int64)
    sec = -((-ns) // 10**9) if round_up else ns // 10**9
    return np.clip(sec, 0, int(_SHIFT) - 1)


class EventIndex:
    """One event table sorted by (lead, time), answering as-of counts and last-row look-ups."""

    def __init__(self, lead_codes: np.ndarray, ts: pd.Series, mask: np.ndarray | None = None) -> None:
        keep = (lead_codes >= 0) & ts.notna().to_numpy()
        if mask is not None:
            keep &= mask
        key = lead_codes[keep].astype(np.int64) * _SHIFT + _seconds(ts[keep], round_up=True)
        self.order = np.flatnonzero(keep)[np.argsort(key, kind="stable")]
        self.keys = np.sort(key, kind="stable")

    def _key(self, lead_codes: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        return lead_codes.astype(np.int64) * _SHIFT + seconds

    def count_between(self, lead_codes: np.ndarray, start: pd.Series, end: pd.Series) -> np.ndarray:
        """Rows with start < ts <= end for each (lead, start, end); end is the as-of time."""
        hi = np.searchsorted(self.keys, self._key(lead_codes, _seconds(end, round_up=False)), side="right")
        lo = np.searchsorted(self.keys, self._key(lead_codes, _seconds(start, round_up=False)), side="right")
        return hi - lo

    def count_until(self, lead_codes: np.ndarray, as_of: pd.Series) -> np.ndarray:
        """Rows with ts <= as_of for each lead."""
        hi = np.searchsorted(self.keys, self._key(lead_codes, _seconds(as_of, round_up=False)), side="right")
        lo = np.searchsorted(self.keys, self._key(lead_codes, np.zeros(len(lead_codes), dtype=np.int64)), side="left")
        return hi - lo

    def positions_until(self, lead_codes: np.ndarray, as_of: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """(start, end): each lead's rows at or before as_of are sorted positions start..end-1 (see `order`)."""
        end = np.searchsorted(self.keys, self._key(lead_codes, _seconds(as_of, round_up=False)), side="right")
        start = np.searchsorted(
            self.keys, self._key(lead_codes, np.zeros(len(lead_codes), dtype=np.int64)), side="left"
        )
        return start, end

    def sum_between(self, values: np.ndarray, lead_codes: np.ndarray, start: pd.Series, end: pd.Series) -> np.ndarray:
        """Sum of `values` (one per original row, NaN counts as 0) over rows with start < ts <= end."""
        cumsum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(np.asarray(values, float)[self.order]))])
        hi = np.searchsorted(self.keys, self._key(lead_codes, _seconds(end, round_up=False)), side="right")
        lo = np.searchsorted(self.keys, self._key(lead_codes, _seconds(start, round_up=False)), side="right")
        return cumsum[hi] - cumsum[lo]

    def first_row(self, lead_codes: np.ndarray, as_of: pd.Series) -> np.ndarray:
        """Row number of each lead's first row, if it is at or before as_of; else -1."""
        lo = np.searchsorted(self.keys, self._key(lead_codes, np.zeros(len(lead_codes), dtype=np.int64)), side="left")
        found = self.count_until(lead_codes, as_of) > 0
        return np.where(found, self.order[np.minimum(lo, len(self.order) - 1)] if len(self.order) else -1, -1)

    def last_row(self, lead_codes: np.ndarray, as_of: pd.Series) -> np.ndarray:
        """Row number (in the original table) of each lead's last row at or before as_of, or -1."""
        hi = np.searchsorted(self.keys, self._key(lead_codes, _seconds(as_of, round_up=False)), side="right")
        found = self.count_until(lead_codes, as_of) > 0
        return np.where(found, self.order[np.maximum(hi - 1, 0)] if len(self.order) else -1, -1)


def lead_codes(lead_ids: pd.Series, leads: pd.Index) -> np.ndarray:
    """Integer code of each lead_id in the leads index; -1 where unknown."""
    return leads.get_indexer(lead_ids)
