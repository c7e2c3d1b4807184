"""Which rep wins which kind of lead: each rep's win rate by industry, region and channel, shrunk (empirical
Bayes), and the channels' lead quality month by month. Fitted on every training from the training history.

Routing (models/assignment.py) ranks reps by a lead's win probability if each took it. The health model sees a
rep's overall recent record (the owner figures); this model adds how the rep does with *this kind* of lead. It
reads the leads created in the year before the pass's cutoff, each labelled with what was known at the cutoff
(won within 90 days of creation; a lead younger than 90 days that is still open is left out):

- the rep's main effect: the rep's win rate shrunk towards the team's under a beta prior whose strength (in
  leads) comes from the spread of the reps' rates less binomial noise (method of moments): a rep with three
  leads and two wins is "the team's rate, nudged up", not 67 %;
- per industry, region (city, else province) and channel: the rep's rate there, shrunk towards what the rep's
  main effect and the segment's team rate predict, under that dimension's own prior strength; the lift of a
  cell (log-odds over that expectation) is what routing adds to the health model's probability;
- `channels_`: per month and channel, the 7-day touch rate, the 30-day win rate and a quality weight (the
  channel's shrunk 30-day win rate over the month's) for the monthly re-weighting of channels.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from features.labels import OPEN, snapshot_outcomes, won_within
from models.base import LeadModel, TrainingSet

SEGMENTS = ("industry", "region", "channel")
SEGMENT_ZH = {"industry": "行业", "region": "地区", "channel": "渠道"}
_EPS = 0.002  # rates are kept inside (EPS, 1 - EPS) before taking log-odds


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, float)))


def prior_strength(n: np.ndarray, wins: np.ndarray, expected: np.ndarray, lo: float, hi: float) -> float:
    """The beta prior's strength k (in leads) for observed rates wins / n around `expected`: the spread of the
    true rates is the observed spread less binomial noise (E[n (r - q)^2] = n tau^2 + q (1 - q)), and a
    beta prior of mean q and strength k has variance q (1 - q) / (k + 1). No spread beyond noise: `hi`."""
    n, wins, q = (np.asarray(a, float) for a in (n, wins, expected))
    seen = n > 0
    if seen.sum() < 2:
        return hi
    n, r, q = n[seen], wins[seen] / n[seen], q[seen]
    tau2 = (np.sum(n * (r - q) ** 2) - np.sum(q * (1 - q))) / np.sum(n)
    if tau2 <= 0:
        return hi
    return float(np.clip(np.average(q * (1 - q), weights=n) / tau2 - 1, lo, hi))


def lead_history(
    tables: dict[str, pd.DataFrame], until: pd.Timestamp, horizon_days: int = 90, window_days: int = 365
) -> pd.DataFrame:
    """The leads created in the `window_days` before `until` with what was known of them at `until`: owner,
    industry, region (city, else province), channel, created_at, won (within `horizon_days` of creation),
    known (the label is decided: closed by `until`, or open for the whole horizon)."""
    leads = tables["leads"]
    created = leads["created_at"]
    leads = leads[(created <= until) & (created > until - pd.Timedelta(days=window_days))].reset_index(drop=True)
    snaps = pd.DataFrame({"lead_id": leads["lead_id"], "as_of": leads["created_at"]})
    durations, events = snapshot_outcomes(tables, snaps, until=until)
    return pd.DataFrame(
        {
            "lead_id": leads["lead_id"].to_numpy(object),
            "owner_id": leads["owner_id"].to_numpy(object),
            "industry": leads["industry"].to_numpy(object),
            "region": leads["city"].where(leads["city"].notna(), leads["province"]).to_numpy(object),
            "channel": leads["channel"].to_numpy(object),
            "created_at": leads["created_at"],
            "won": won_within(durations, events, horizon_days),
            "known": (events != OPEN) | (durations >= horizon_days),
            "age_days": ((until - leads["created_at"]) / pd.Timedelta(days=1)).to_numpy(float),
            "won_30": won_within(durations, events, 30),
            "known_30": (events != OPEN) | (durations >= 30),
        }
    )


def _cells(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.groupby(keys, sort=True, observed=True)["won"].agg(n="size", wins="sum").astype(float)


class RepSegmentModel(LeadModel):
    """`window_days`: how far back a rep's record reaches; `horizon_days`: the win counted; `min_strength` /
    `max_strength`: bounds of the estimated prior strengths (in leads). Fitted: `team_rate_`, `strength_`
    (per level: main and each segment), `reps_` (per rep: n, wins, shrunk rate, lift), `cells_` (per segment:
    per (rep, level) n, wins, expected, shrunk, lift), `levels_` (per segment: the team's rate per level),
    `channels_` (per month and channel), `as_of_` (the cutoff its history ends at)."""

    name = "rep_segments"
    Answer: ClassVar = None  # used by POST /assign, not a part of /score's answer

    def __init__(
        self, window_days: int = 365, horizon_days: int = 90, min_strength: float = 2.0, max_strength: float = 500.0
    ) -> None:
        self.window_days = window_days
        self.horizon_days = horizon_days
        self.min_strength = min_strength
        self.max_strength = max_strength

    @classmethod
    def from_training(cls, data: TrainingSet, fitted: dict[str, LeadModel]) -> RepSegmentModel | None:
        if data.tables is None or data.until is None:
            return None
        return cls().fit(data.tables, data.until)

    def fit(self, tables: dict[str, pd.DataFrame], until: pd.Timestamp) -> RepSegmentModel:
        history = lead_history(tables, until, self.horizon_days, self.window_days)
        self.as_of_ = pd.Timestamp(until)
        self.channels_ = channel_quality(tables, history, self.min_strength, self.max_strength)
        known = history[history["known"] & history["owner_id"].notna()]
        self.team_rate_ = float(known["won"].mean()) if len(known) else 0.0
        self.strength_ = {}
        reps = _cells(known, ["owner_id"])
        expected = np.full(len(reps), self.team_rate_)
        k = self.strength_["main"] = prior_strength(
            reps["n"], reps["wins"], expected, self.min_strength, self.max_strength
        )
        reps["shrunk"] = (reps["wins"] + k * expected) / (reps["n"] + k)
        reps["lift"] = logit(reps["shrunk"]) - logit(self.team_rate_)
        self.reps_ = reps
        self.levels_, self.cells_ = {}, {}
        for segment in SEGMENTS:
            rows = known[known[segment].notna()]
            levels = _cells(rows, [segment])
            k_level = prior_strength(levels["n"], levels["wins"], np.full(len(levels), self.team_rate_),
                                     self.min_strength, self.max_strength)  # fmt: skip
            levels["rate"] = (levels["wins"] + k_level * self.team_rate_) / (levels["n"] + k_level)
            cells = _cells(rows, ["owner_id", segment])
            main = reps["lift"].reindex(cells.index.get_level_values(0)).to_numpy()
            level_rate = levels["rate"].reindex(cells.index.get_level_values(1)).to_numpy()
            cells["expected"] = sigmoid(logit(level_rate) + main)
            k = self.strength_[segment] = prior_strength(
                cells["n"], cells["wins"], cells["expected"], self.min_strength, self.max_strength
            )
            cells["shrunk"] = (cells["wins"] + k * cells["expected"]) / (cells["n"] + k)
            cells["lift"] = logit(cells["shrunk"]) - logit(cells["expected"])
            self.levels_[segment], self.cells_[segment] = levels, cells
        return self

    def figures(self, rep_ids: list[str], lead: dict[str, str | None]) -> pd.DataFrame:
        """One row per rep (in order) for one lead: the rep's record (n, wins, shrunk rate, main lift) and, per
        segment, the lead's level, the rep's n and wins there, the shrunk rate, the team's rate there and the
        lift; `lift` is the sum of the segment lifts (0 where the rep has no record: the prior)."""
        reps = self.reps_.reindex(rep_ids)
        out = pd.DataFrame(
            {
                "rep_id": rep_ids,
                "n": reps["n"].fillna(0.0).to_numpy(),
                "wins": reps["wins"].fillna(0.0).to_numpy(),
                "rate": reps["shrunk"].fillna(self.team_rate_).to_numpy(),
                "main_lift": reps["lift"].fillna(0.0).to_numpy(),
                "known_rep": reps["n"].notna().to_numpy(),
            }
        )
        total = np.zeros(len(rep_ids))
        for segment in SEGMENTS:
            level = lead.get(segment)
            index = pd.MultiIndex.from_arrays([rep_ids, [level] * len(rep_ids)])
            cells = self.cells_[segment].reindex(index) if level is not None else None
            team = self.levels_[segment]["rate"].get(level, np.nan) if level is not None else np.nan
            out[f"{segment}_level"] = level
            out[f"{segment}_n"] = cells["n"].fillna(0.0).to_numpy() if cells is not None else 0.0
            out[f"{segment}_wins"] = cells["wins"].fillna(0.0).to_numpy() if cells is not None else 0.0
            out[f"{segment}_rate"] = cells["shrunk"].to_numpy() if cells is not None else np.nan
            out[f"{segment}_team"] = team
            lift = cells["lift"].fillna(0.0).to_numpy() if cells is not None else np.zeros(len(rep_ids))
            out[f"{segment}_lift"] = lift
            total += lift
        out["lift"] = total
        return out

    def channel_weights(self) -> pd.DataFrame:
        """The latest month whose 30-day outcomes are all known: each channel's figures and weight."""
        table = self.channels_
        complete = table[table["complete"]]
        if complete.empty:
            return complete
        return complete[complete["month"] == complete["month"].max()].reset_index(drop=True)


def channel_quality(
    tables: dict[str, pd.DataFrame], history: pd.DataFrame, min_strength: float = 2.0, max_strength: float = 500.0
) -> pd.DataFrame:
    """Per month (of creation) and channel: leads, the 7-day touch rate (an outbound activity within 7 days of
    creation, of the leads at least 7 days old), the 30-day win rate (of the leads whose 30-day outcome is
    known), its shrunk value and the weight = shrunk rate / the month's rate (1 = average quality). `complete`:
    every lead of the month is old enough for both figures."""
    if history.empty:
        return pd.DataFrame(columns=["month", "channel", "leads", "touch_7d", "win_30d", "win_30d_shrunk", "weight"])
    acts = tables["activities"]
    outbound = acts[(acts["direction"] != "inbound") & acts["lead_id"].isin(history["lead_id"])]
    first = outbound.groupby("lead_id")["ts"].min()
    # reindex, not map: mapping through an empty datetime Series fails in pandas 3 (no outbound activity yet)
    first_touch = pd.Series(first.reindex(history["lead_id"].to_numpy()).array, index=history.index)
    touch_days = (first_touch - history["created_at"]) / pd.Timedelta(days=1)
    frame = pd.DataFrame(
        {
            "month": history["created_at"].dt.strftime("%Y-%m"),
            "channel": history["channel"].fillna("未知"),
            "touched_7d": (touch_days <= 7).to_numpy(float),
            "touch_known": (history["age_days"] >= 7).to_numpy(float),
            "won_30": history["won_30"].to_numpy(float),
            "known_30": history["known_30"].to_numpy(float),
        }
    )
    frame["touched_7d"] *= frame["touch_known"]
    frame["won_30"] *= frame["known_30"]
    grouped = frame.groupby(["month", "channel"], sort=True)
    table = grouped.agg(
        leads=("touched_7d", "size"), touch_n=("touch_known", "sum"), touched=("touched_7d", "sum"),
        known=("known_30", "sum"), wins=("won_30", "sum"),
    ).reset_index()  # fmt: skip
    month = frame.groupby("month").agg(known=("known_30", "sum"), wins=("won_30", "sum"))
    month_rate = (month["wins"] / month["known"].where(month["known"] > 0)).fillna(0.0)
    expected = table["month"].map(month_rate).to_numpy()
    k = prior_strength(table["known"], table["wins"], expected, min_strength, max_strength)
    table["touch_7d"] = table["touched"] / table["touch_n"].where(table["touch_n"] > 0)
    table["win_30d"] = table["wins"] / table["known"].where(table["known"] > 0)
    table["win_30d_shrunk"] = (table["wins"] + k * expected) / (table["known"] + k)
    table["weight"] = table["win_30d_shrunk"] / np.where(expected > 0, expected, np.nan)
    whole = frame.groupby("month").agg(
        leads=("known_30", "size"), known=("known_30", "sum"), touch=("touch_known", "sum")
    )
    done = (whole["known"] == whole["leads"]) & (whole["touch"] == whole["leads"])
    table["complete"] = table["month"].map(done).to_numpy(bool)
    return table[["month", "channel", "leads", "touch_7d", "win_30d", "win_30d_shrunk", "weight", "complete"]]
