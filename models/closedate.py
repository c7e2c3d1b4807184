"""Close-date model: discrete-time competing risks (won / lost / still open) per time bin, one LightGBM.

Each snapshot is expanded into person-period rows, one per bin of `bin_days` it is at risk in, up to its
event or its censoring. A multiclass booster learns, from the snapshot's features plus the bin index, the
conditional probabilities of winning, losing or staying open within that bin given it was open at the
bin's start (the cause-specific discrete hazards). Cumulative incidence of a win,

    CIF_won(k) = sum_{j<=k} S(j) * h_won(j),   S(j) = prod_{i<j} (1 - h_won(i) - h_lost(i)),

is non-decreasing in k by construction, so P(won within 30) <= P(won within 60) <= P(won within 90).
Open (censored) deals are never counted as losses: their rows stop where observation stops.

Anchored to the health model (`anchor_to`): the hazards give each deal's *timing* (how its win chance
spreads over the bins), the calibrated health model gives the *level* at the horizon. Each snapshot's win
curve is scaled by one positive factor so that P(won within 90) is the health model's probability: the
curve stays monotone, the expected close date is unchanged, and the product never shows two different
numbers for the same quantity. Measured: the unanchored curve over-predicts by 6-11 % (90-day ECE 0.019-0.020
over all matured snapshots of an unseen world), anchored 0.008-0.010 (docs/models-closedate.md).
"""

from __future__ import annotations

from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from features.catalogue import FEATURES
from features.labels import HORIZON_DAYS, LOST, OPEN, REPORT_DAYS, WON
from models.base import LeadModel, ScoringBatch, TrainingSet

BIN_FEATURE = "period_bin"

PARAMS = {
    "objective": "multiclass",
    "num_class": 3,
    "learning_rate": 0.08,
    "num_leaves": 31,
    "min_child_samples": 300,  # person-period rows of one snapshot are alike: larger leaves generalise better
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 2,
    "seed": 0,
}


def person_period(
    durations_days: np.ndarray, events: np.ndarray, bin_days: float, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expand snapshots into person-period rows: (snapshot row, bin index, label, weight).

    Bin k covers (k * bin_days, (k + 1) * bin_days] days after as_of. A snapshot has a row for every bin
    it enters at risk (duration > bin start), up to `n_bins`. Label: WON / LOST in the bin holding the event,
    OPEN otherwise. A snapshot censored part-way through a bin gets an OPEN row weighted by the share of
    the bin it was observed (the actuarial adjustment): dropping that row would inflate the hazards, a
    full-weight row would deflate them.
    """
    durations = np.asarray(durations_days, dtype=float)
    events = np.asarray(events, dtype=int)
    if durations.shape != events.shape:
        raise ValueError("durations and events must have the same length")
    if np.isnan(durations).any() or (durations < 0).any():
        raise ValueError("durations must be non-negative numbers of days")
    if not np.isin(events, [OPEN, WON, LOST]).all():
        raise ValueError("events must be 0 (censored), 1 (won) or 2 (lost)")
    # Bins entered: an event at exactly a bin edge belongs to the bin it ends.
    entered = np.clip(np.ceil(durations / bin_days).astype(int), 0, n_bins)
    row = np.repeat(np.arange(len(durations)), entered)
    first = np.repeat(np.cumsum(entered) - entered, entered)
    k = np.arange(len(row)) - first
    last = k == entered[row] - 1
    in_window = durations[row] <= n_bins * bin_days
    label = np.where(last & in_window, events[row], OPEN)
    weight = np.ones(len(row))
    partial = last & in_window & (events[row] == OPEN)
    weight[partial] = (durations[row][partial] - k[partial] * bin_days) / bin_days
    keep = weight > 0
    return row[keep], k[keep], label[keep], weight[keep]


class HorizonModel(Protocol):
    """What anchors the close-date curve: a calibrated P(won within the horizon) per snapshot."""

    def predict(self, features: pd.DataFrame) -> np.ndarray: ...


class CloseDateAnswer(BaseModel):
    """P(won within 30 / 60 / 90 days of as_of) and the expected win date if it is won within 90 days."""

    won_within_30d: float = Field(ge=0, le=1)
    won_within_60d: float = Field(ge=0, le=1)
    won_within_90d: float = Field(ge=0, le=1, description="equals win_probability (the curve is anchored to it)")
    expected_close_date_if_won: str = Field(description="ISO date")


class CloseDateModel(LeadModel):
    """P(won within 30 / 60 / 90 days) and the expected win date, from features of (lead, as_of) snapshots.

    `expected_close_days` is the expected number of days to the win *given* a win within the horizon
    (bin midpoints weighted by the win probability of each bin); read it together with p_won_90.
    """

    name = "close_date"
    Answer = CloseDateAnswer

    def __init__(
        self,
        bin_days: int = 15,
        horizon_days: int = HORIZON_DAYS,
        report_days: tuple[int, ...] = REPORT_DAYS,
        num_rounds: int = 250,
        params: dict | None = None,
    ) -> None:
        self.bin_days = bin_days
        self.horizon_days = horizon_days
        self.report_days = report_days
        self.num_rounds = num_rounds
        self.params = params

    @property
    def n_bins(self) -> int:
        return self.horizon_days // self.bin_days

    @classmethod
    def from_training(cls, data: TrainingSet, fitted: dict[str, LeadModel]) -> CloseDateModel:
        model = cls(**data.params.get(cls.name, {})).fit(data.features[FEATURES], data.outcome)
        # The curve's level at 90 days comes from the calibrated health model (this module's docstring).
        return model.anchor_to(fitted["health"])

    def _rows(self, features: pd.DataFrame, row: np.ndarray, k: np.ndarray) -> pd.DataFrame:
        frame = self._inputs(features).iloc[row].reset_index(drop=True)
        return pd.concat([frame, pd.DataFrame({BIN_FEATURE: k.astype(float)})], axis=1)

    def fit(self, X: pd.DataFrame, y: pd.DataFrame, sample_weight: np.ndarray | None = None) -> CloseDateModel:
        """Fit on snapshot features `X` and outcomes `y` (features.labels.outcome_frame: days from as_of to the
        event or censoring, and the event code)."""
        horizon, bins = self.horizon_days, self.bin_days
        if horizon % bins or any(d % bins or d > horizon for d in self.report_days):
            raise ValueError("horizon and report days must be multiples of bin_days within the horizon")
        if BIN_FEATURE in X.columns:
            raise ValueError(f"features may not contain a column named {BIN_FEATURE!r}")
        if len(X) != len(y):
            raise ValueError("features and outcomes must have the same number of rows")
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        row, k, label, weight = person_period(y["days"].to_numpy(), y["event"].to_numpy(), bins, self.n_bins)
        if sample_weight is not None:
            weight = weight * np.asarray(sample_weight, dtype=float)[row]
        data = lgb.Dataset(self._rows(X, row, k), label, weight=weight)
        self.booster_ = lgb.train({**PARAMS, **(self.params or {})}, data, num_boost_round=self.num_rounds)
        self.person_period_rows_ = len(row)
        self.anchor_ = None
        return self

    def anchor_to(self, health: HorizonModel | None) -> CloseDateModel:
        """Take the level of P(won within the horizon) from `health` (anything with `predict(features)` giving
        a calibrated P(won within horizon_days)); None removes the anchor."""
        self.anchor_ = health
        return self

    def hazards(self, features: pd.DataFrame) -> np.ndarray:
        """Discrete hazards, shape (snapshots, bins, 3): P(open / won / lost in bin k | open at its start)."""
        n = len(features)
        row = np.repeat(np.arange(n), self.n_bins)
        k = np.tile(np.arange(self.n_bins), n)
        proba = self.booster_.predict(self._rows(features, row, k))
        return proba.reshape(n, self.n_bins, 3)

    def cumulative_incidence(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """P(won by the end of bin k) and P(lost by the end of bin k), each shape (snapshots, bins)."""
        h = self.hazards(features)
        alive = np.cumprod(h[:, :, OPEN], axis=1)
        at_start = np.hstack([np.ones((len(h), 1)), alive[:, :-1]])
        return np.cumsum(at_start * h[:, :, WON], axis=1), np.cumsum(at_start * h[:, :, LOST], axis=1)

    def loss_within(
        self, features: pd.DataFrame, days: tuple[float, ...], anchor_level: np.ndarray | None = None
    ) -> np.ndarray:
        """P(lost within each of `days` days of as_of), shape (snapshots, len(days)): the competing-risks
        cumulative incidence of a loss, never anchored (the health anchor is a win probability).

        Between bin edges the hazards are taken as constant in continuous time (a piecewise-exponential
        reading of the discrete model): a deal open at the start of bin k, which stays open through it with
        probability q_k, is still open a fraction f into it with probability q_k ** f, and each exit is a
        loss in the bin's proportion h_lost / (1 - q_k). At bin edges this is exactly the discrete CIF, so 7
        and 14 days come from the same booster as 30 / 60 / 90 without finer bins (docs/warnings.md measures
        it). A loss probability is never above 1 - P(won by then) of the anchored win curve."""
        h = self.hazards(features)
        stay = h[:, :, OPEN]
        alive = np.hstack([np.ones((len(h), 1)), np.cumprod(stay, axis=1)])  # open at the start of bin k
        exit_ = np.maximum(1.0 - stay, 1e-12)
        lost_in_bin, won_in_bin = alive[:, :-1] * h[:, :, LOST], alive[:, :-1] * h[:, :, WON]
        lost_cif = np.hstack([np.zeros((len(h), 1)), np.cumsum(lost_in_bin, axis=1)])
        won_cif = np.hstack([np.zeros((len(h), 1)), np.cumsum(won_in_bin, axis=1)])
        scale = np.ones(len(h))
        if self.anchor_ is not None:  # the win curve's level, as `predict` serves it
            level = self.anchor_.predict(features) if anchor_level is None else anchor_level
            scale = np.asarray(level) / np.maximum(won_cif[:, -1], 1e-300)
        out = np.empty((len(h), len(days)))
        for j, d in enumerate(days):
            if not 0 < d <= self.horizon_days:
                raise ValueError(f"loss horizon {d} days: must lie in (0, {self.horizon_days}]")
            k = min(int(np.ceil(d / self.bin_days)) - 1, self.n_bins - 1)
            f = d / self.bin_days - k
            within = (1.0 - stay[:, k] ** f) / exit_[:, k]
            lost = lost_cif[:, k] + lost_in_bin[:, k] * within
            won = (won_cif[:, k] + won_in_bin[:, k] * within) * scale
            out[:, j] = np.clip(np.minimum(lost, 1.0 - won), 0.0, 1.0)
        return out

    def predict(self, features: pd.DataFrame, anchor_level: np.ndarray | None = None) -> pd.DataFrame:
        """Columns p_won_<d> for each report day (non-decreasing, in [0, 1]), p_lost_<horizon>,
        expected_close_days (given a win within the horizon), indexed like `features`. `anchor_level`: the
        anchor's probabilities for these rows if the caller has them already (scoring does: the health score)."""
        won, lost = self.cumulative_incidence(features)
        anchor = self.anchor_
        if anchor is not None:
            level = anchor.predict(features) if anchor_level is None else anchor_level
            # won[:, -1] > 0: a softmax hazard is never exactly zero.
            won = won * (np.asarray(level) / np.maximum(won[:, -1], 1e-300))[:, None]
        out = {f"p_won_{d}": won[:, d // self.bin_days - 1] for d in self.report_days}
        out[f"p_lost_{self.horizon_days}"] = np.minimum(lost[:, -1], 1.0 - won[:, -1])
        per_bin = np.diff(won, axis=1, prepend=0.0)
        mid = (np.arange(self.n_bins) + 0.5) * self.bin_days
        out["expected_close_days"] = (per_bin @ mid) / np.maximum(won[:, -1], 1e-12)
        return pd.DataFrame(out, index=features.index)

    def answer(self, batch: ScoringBatch) -> list[CloseDateAnswer]:
        predicted = self.predict(batch.features, batch.win_probability).reset_index(drop=True)
        as_of = pd.to_datetime(batch.snapshots["as_of"]).reset_index(drop=True)
        answers = []
        for i, values in enumerate(predicted.to_dict(orient="records")):
            expected = as_of.iat[i] + pd.Timedelta(days=float(values["expected_close_days"]))
            won = {f"won_within_{d}d": round(float(values[f"p_won_{d}"]), 4) for d in self.report_days}
            answers.append(CloseDateAnswer(**won, expected_close_date_if_won=expected.date().isoformat()))
        return answers

    @staticmethod
    def flat(part: dict[str, Any]) -> dict[str, Any]:
        return dict(part)
