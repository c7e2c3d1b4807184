"""Leak guards run on every import, whatever the vendor: a lead field that only exists for won (or lost, or
closed) leads, or that is stamped after the outcome, tells the model the answer. Such a field is left out
by default and the report says why; `keep_despite_guard` in the mapping file keeps it.

The tests are on how a field is filled, not on what it says, so they catch fields no vendor list names:
- outcome-only: at least 98 % of the rows where the field is filled belong to one outcome (won, lost or
  closed), while that outcome is at most 90 % of the leads;
- filled during the deal: filled for at least half of one outcome's leads but for less than half as many of
  the others (a value typed in as the deal progresses is a current value, not what was known at the time);
- stamped after the outcome: a time field that, for most closed leads, lies at or after the close.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import parse_timestamps

NOT_TESTED = {"lead_id", "created_at"}
MIN_ROWS = 20


@dataclass(frozen=True)
class Finding:
    field: str
    reason: str


def _present(column: pd.Series) -> np.ndarray:
    text = column.astype("string").str.strip()
    return (text.notna() & (text != "")).to_numpy()


def lead_outcomes(leads: pd.DataFrame, outcomes: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """Per lead row: its status (won / lost / open) and close time, from the first outcome row per lead."""
    first = outcomes.drop_duplicates("lead_id").set_index("lead_id") if len(outcomes) else None
    if first is None:
        return np.full(len(leads), "open", dtype=object), pd.Series(pd.NaT, index=leads.index)
    status = leads["lead_id"].map(first["status"]).fillna("open").to_numpy(object)
    closed = parse_timestamps(leads["lead_id"].map(first["closed_at"]).astype("string"))
    return status, closed.set_axis(leads.index)


def find_leaks(leads: pd.DataFrame, outcomes: pd.DataFrame) -> list[Finding]:
    """The lead columns to leave out, with the reason in words."""
    leads = leads.reset_index(drop=True)
    status, closed_at = lead_outcomes(leads, outcomes)
    groups = {
        "won": status == "won",
        "lost": status == "lost",
        "closed (won or lost)": np.isin(status, ["won", "lost"]),
    }
    created = parse_timestamps(leads["created_at"].astype("string")) if "created_at" in leads else None
    findings = []
    for column in leads.columns:
        if column in NOT_TESTED or column.startswith("_"):
            continue
        present = _present(leads[column])
        reason = _outcome_only(present, groups) or _stamped_after(leads[column], present, closed_at, created)
        if reason:
            findings.append(Finding(column, reason))
    return findings


def _outcome_only(present: np.ndarray, groups: dict[str, np.ndarray]) -> str | None:
    n = len(present)
    if present.sum() < 5 or n < MIN_ROWS:
        return None
    for name, members in groups.items():
        share_of_leads = members.mean()
        if members.sum() < 5 or share_of_leads > 0.9:
            continue
        share_of_filled = (present & members).sum() / present.sum()
        if share_of_filled >= 0.98:
            return (
                f"filled only for {name} leads ({share_of_filled:.0%} of its {int(present.sum())} values, "
                f"while {name} leads are {share_of_leads:.0%} of all): it exists because of the outcome"
            )
        rest = ~members
        if members.sum() >= MIN_ROWS and rest.sum() >= MIN_ROWS:
            fill_in, fill_out = present[members].mean(), present[rest].mean()
            if fill_in >= 0.5 and fill_out <= fill_in / 2:
                return (
                    f"filled for {fill_in:.0%} of {name} leads but {fill_out:.0%} of the others: it looks filled "
                    "in as the deal progressed (a current value, not what was known when the lead was scored)"
                )
    return None


def _stamped_after(column: pd.Series, present: np.ndarray, closed_at: pd.Series, created) -> str | None:
    if present.sum() < 5:
        return None
    times = parse_timestamps(column.astype("string"))
    readable = times.notna().to_numpy()
    if readable.sum() < 0.9 * present.sum():  # not a time field
        return None
    closed = closed_at.notna().to_numpy() & readable
    if closed.sum() < 5:
        return None
    after = (times[closed] >= closed_at[closed]).mean()
    if after >= 0.5:
        return f"a time that lies at or after the close for {after:.0%} of closed leads: stamped after the outcome"
    return None
