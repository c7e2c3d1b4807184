"""Source values to contract values: timestamps (time zone, format, epoch milliseconds, date-only), numbers
written with currency signs and thousands separators, HTML notes.

Every parser returns the converted values and a mask of the values it could not read, so the importer can
say which source row and field was bad instead of silently leaving it empty.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import numpy as np
import pandas as pd

UNREADABLE = "unparseable"  # what a bad source value becomes, so the contract's validation reports it
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_EARLIEST, _LATEST = pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")
END_OF_DAY = pd.Timedelta(days=1) - pd.Timedelta(seconds=1)


@dataclass(frozen=True)
class TimeSpec:
    """How one source field writes time.

    tz: the zone of timestamps written without an offset (and of the calendar day of date-only values).
    fmt: a strptime format; None means ISO 8601.
    epoch_ms: numbers are milliseconds since 1970 (fxiaoke, HubSpot); ISO strings are still read.
    date_only: the source knows the day, not the time: the value becomes the last second of that day in
        `tz`, the earliest moment at which the whole day is known, so nothing is seen before it happened.
    """

    tz: str = "Asia/Shanghai"
    fmt: str | None = None
    epoch_ms: bool = False
    date_only: bool = False

    def describe(self) -> str:
        how = (
            "epoch milliseconds (or ISO 8601)" if self.epoch_ms else f"format {self.fmt!r}" if self.fmt else "ISO 8601"
        )
        zone = f"without an offset read as {self.tz}"
        if self.date_only:
            return f"date only ({how}): the last second of that day in {self.tz}"
        return f"{how}; {zone}"


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def parse_times(values: pd.Series, spec: TimeSpec) -> tuple[pd.Series, np.ndarray]:
    """Source values -> UTC timestamps (NaT where missing or unreadable) and the mask of unreadable ones."""
    text = _text(values.reset_index(drop=True))
    utc = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    local = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")  # wall-clock times without an offset
    todo = text.notna()
    if spec.epoch_ms:
        number = pd.to_numeric(text.where(text.str.fullmatch(r"-?\d+(?:\.\d+)?", na=False)), errors="coerce")
        is_number = number.notna()
        if is_number.any():
            utc[is_number] = pd.to_datetime(number[is_number], unit="ms", utc=True, errors="coerce")
        todo &= ~is_number
    if spec.fmt:
        parsed = pd.to_datetime(text[todo], format=spec.fmt, errors="coerce")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # the format has %z
            utc[todo] = parsed.dt.tz_convert("UTC")
        else:
            local[todo] = parsed
    else:
        aware = todo & text.str.contains(_OFFSET, na=False)
        if aware.any():
            utc[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
        naive = todo & ~aware
        if naive.any():
            local[naive] = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
    if spec.date_only:  # the calendar day in the source's zone, then the last second of it
        local = local.where(local.notna(), utc.dt.tz_convert(spec.tz).dt.tz_localize(None))
        local = local.dt.normalize() + END_OF_DAY
        utc[:] = pd.NaT
    has_local = local.notna()
    if has_local.any():
        # A wall-clock time that occurs twice (clocks going back) or never (going forward) becomes the
        # later instant: a time too late hides an event for a moment, a time too early would leak it.
        later = np.zeros(int(has_local.sum()), dtype=bool)
        utc[has_local] = (
            local[has_local].dt.tz_localize(spec.tz, ambiguous=later, nonexistent="shift_forward").dt.tz_convert("UTC")
        )
    utc = utc.where(utc.between(_EARLIEST, _LATEST))
    bad = (text.notna() & utc.isna()).to_numpy()
    return utc, bad


def iso_or_marker(times: pd.Series, bad: np.ndarray) -> list[str | None]:
    """Timestamps as ISO 8601 strings with offset for the contract; unreadable values as a marker the
    contract rejects (and reports) rather than a guess."""
    out: list[str | None] = []
    for value, is_bad in zip(times.tolist(), bad, strict=True):
        out.append(UNREADABLE if is_bad else (value.isoformat() if pd.notna(value) else None))
    return out


_UNITS = {"万": 1e4, "亿": 1e8, "k": 1e3, "K": 1e3}
_NUMBER = re.compile(r"^\(?-?\d+(?:\.\d+)?\)?$")


def parse_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """'$22,700.00', '¥ 1,200', '50万', '1.2亿', '3k' -> floats; NaN where missing; mask of unreadable ones."""
    text = _text(values.reset_index(drop=True))
    cleaned = text.str.replace(r"[\s,¥$€£￥]|元|人民币|RMB|CNY|USD", "", regex=True)
    scale = pd.Series(1.0, index=text.index)
    for unit, factor in _UNITS.items():
        has = cleaned.str.endswith(unit, na=False)
        scale[has] = factor
        cleaned = cleaned.where(~has, cleaned.str[: -len(unit)])
    ok = cleaned.str.fullmatch(_NUMBER.pattern, na=False)
    negative = cleaned.str.startswith("(", na=False)  # accounting style (1,200)
    number = pd.to_numeric(cleaned.where(ok).str.strip("()"), errors="coerce") * scale
    number = number.where(~negative, -number)
    bad = (text.notna() & ~ok).to_numpy()
    return number.astype("float64"), bad


class _TextOnly(HTMLParser):
    BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_html(value: object) -> str | None:
    """The text of an HTML note (Odoo's mail.message body, HubSpot's hs_note_body), tags removed, entities
    decoded, blank lines collapsed; None for an empty note. Uses the standard library's HTML parser."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value)
    if "<" in text:
        parser = _TextOnly()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    text = html.unescape(text)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    joined = "\n".join(line for line in lines if line)
    return joined or None


def is_true(values: pd.Series) -> pd.Series:
    """CRM booleans as written in exports: true/false, 1/0, yes/no, 是/否, 'True' (Odoo), True (JSON)."""
    text = values.astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "yes", "y", "是", "t"]).fillna(False).astype(bool)
