"""Working days on the Chinese calendar: statutory holidays off, adjusted working days (调休) on.

The calendar is the `chinese-calendar` package (maintained, offline: its tables ship in the wheel, updated
each year when the State Council publishes the next year's arrangement). Outside the years it covers, a day
is a working day when it is Monday to Friday, and `coverage_note` says so in Chinese so a warning measured
there can tell the reader.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import chinese_calendar
import numpy as np
import pandas as pd

from features.contract import TIMEZONE


@lru_cache(maxsize=1)
def _covered_years() -> tuple[int, int]:
    years = [d.year for d in chinese_calendar.holidays]
    return min(years), max(years)


@lru_cache(maxsize=1)
def _table() -> tuple[dt.date, np.ndarray]:
    """First date and the running count of working days from it, over the contract's years 1900-2200 (the
    weekday rule outside the calendar's years)."""
    low, high = _covered_years()
    first = dt.date(1900, 1, 1)
    days = pd.date_range(first, dt.date(2200, 12, 31), freq="D")
    work = (days.weekday < 5).astype(np.int32)
    inside = np.flatnonzero((days.year >= low) & (days.year <= high))
    work[inside] = [chinese_calendar.is_workday(days[i].date()) for i in inside]
    return first, np.concatenate([[0], np.cumsum(work)])


def _is_workday(day: dt.date) -> bool:
    low, high = _covered_years()
    if low <= day.year <= high:
        return chinese_calendar.is_workday(day)
    return day.weekday() < 5


def is_workday(day: dt.date) -> bool:
    """A working day in mainland China (statutory holidays and 调休 within the covered years)."""
    return _is_workday(day)


def covered(day: dt.date) -> bool:
    low, high = _covered_years()
    return low <= day.year <= high


def coverage_note(day: dt.date) -> str | None:
    """None inside the calendar's years; else the Chinese note that the weekday rule was used."""
    if covered(day):
        return None
    low, high = _covered_years()
    return f"{day.year}年的法定节假日安排未收录（日历覆盖{low}-{high}年），按周一至周五计工作日"


def working_days_between(start: pd.Series | pd.DatetimeIndex, end: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Working days d with start's date < d <= end's date (Asia/Shanghai dates), per row; NaN where either
    end is missing. A lead last touched on Friday and looked at on Monday is 1 working day untouched."""
    first, running = _table()
    start_days = _day_index(start, first, len(running) - 1)
    end_days = _day_index(end, first, len(running) - 1)
    out = np.full(len(start_days), np.nan)
    ok = ~(np.isnan(start_days) | np.isnan(end_days))
    s, e = start_days[ok].astype(int), end_days[ok].astype(int)
    out[ok] = np.maximum(running[e] - running[s], 0)
    return out


def _day_index(stamps, first: dt.date, size: int) -> np.ndarray:
    values = pd.to_datetime(pd.Series(stamps).reset_index(drop=True), utc=True).dt.tz_convert(TIMEZONE)
    dates = values.dt.tz_localize(None).dt.normalize()
    index = ((dates - pd.Timestamp(first)) / pd.Timedelta(days=1)).to_numpy(float)
    if np.nanmax(index, initial=0) >= size or np.nanmin(index, initial=0) < 0:
        raise ValueError("a date outside 1900-2200, which the data contract refuses")
    return index
