"""The health model: calibrated P(won within 90 days of as_of) from the features of a (lead, as_of) snapshot.

LightGBM's log-odds, then a Platt calibration fitted on cross-fitted (grouped by lead) out-of-fold log-odds.
Why cross-fitted and not the latest period: the latest period holds the oldest leads, older than any the
earlier period's booster saw, so a time-held-out calibrator learned the booster's extrapolation error rather
than its calibration (docs/models.md). Platt (a * margin + b) rather than isotonic: both met the calibration
bar, and a linear map of the log-odds keeps the ranking, gives a smooth 0-100 score without plateaus, and lets
an explanation in log-odds be rescaled exactly (models/explain.py).
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from tqdm.auto import tqdm

from features.catalogue import FEATURES
from models.base import LeadModel, TrainingSet

PARAMS = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 2,
    "seed": 0,
}
NUM_ROUNDS = 500  # smaller, slower trees: +0.003 AUC on a later period, measured (docs/models.md)


class HealthModel(LeadModel):
    """`params` / `num_rounds`: the booster's (PARAMS / NUM_ROUNDS by default); `calibration_folds`: folds of
    the cross-fitted Platt step. Fitted: `booster_`, `slope_`, `intercept_` (P = sigmoid(slope * margin +
    intercept)), `feature_names_in_`."""

    name = "health"

    def __init__(
        self, params: dict[str, Any] | None = None, num_rounds: int = NUM_ROUNDS, calibration_folds: int = 4
    ) -> None:
        self.params = params
        self.num_rounds = num_rounds
        self.calibration_folds = calibration_folds

    @classmethod
    def from_training(cls, data: TrainingSet, fitted: dict[str, LeadModel]) -> HealthModel:
        rows = data.matured
        model = cls(**data.params.get(cls.name, {}))
        return model.fit(data.features[rows], data.won_90[rows], groups=data.groups[rows], client=data.client)

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, client=None, progress: bool = False
    ) -> HealthModel:
        """The booster on every row, calibrated on out-of-fold log-odds (folds grouped by `groups`, e.g. the
        lead). With a Dask `client`, every booster is trained by `lightgbm.dask` across its workers."""
        x = X[FEATURES]
        y = np.asarray(y, dtype=int)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        bar = tqdm(total=self.calibration_folds + 1, desc="health model", disable=not progress, unit="booster")
        margin = np.zeros(len(y))
        for fit_rows, held_out in GroupKFold(self.calibration_folds).split(x, y, groups):
            booster = self._boost(x.iloc[fit_rows], y[fit_rows], client)
            margin[held_out] = booster.predict(x.iloc[held_out], raw_score=True)
            bar.update(1)
        self.booster_ = self._boost(x, y, client)
        bar.update(1)
        bar.close()
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(margin[:, None], y)
        self.slope_, self.intercept_ = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        return self

    def _boost(self, x: pd.DataFrame, y: np.ndarray, client=None) -> lgb.Booster:
        params = self.params or PARAMS
        if client is None:
            return lgb.train(params, lgb.Dataset(x, y), self.num_rounds)
        import dask.dataframe as dd
        from lightgbm.dask import DaskLGBMClassifier

        workers = max(1, len(client.scheduler_info()["workers"]))
        x = x.reset_index(drop=True)
        distributed = {k: v for k, v in params.items() if k != "num_threads"}  # each worker uses its own threads
        model = DaskLGBMClassifier(client=client, n_estimators=self.num_rounds, n_jobs=None, **distributed)
        model.fit(dd.from_pandas(x, npartitions=workers), dd.from_pandas(pd.Series(y), npartitions=workers))
        return model.booster_

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's log-odds before calibration."""
        return self.booster_.predict(self._inputs(X), raw_score=True)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(won within 90 days)."""
        return self.calibrate(self.margin(X))

    def calibrate(self, margin: np.ndarray) -> np.ndarray:
        """The Platt map from log-odds to probability."""
        return 1.0 / (1.0 + np.exp(-(self.slope_ * np.asarray(margin) + self.intercept_)))

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP contributions to the log-odds (rows x feature_names_in_) and the bias per row: they add
        up to `margin`. LightGBM's `pred_contrib` (the same values as shap's TreeExplainer, shared/FACTS.md)."""
        contrib = np.asarray(self.booster_.predict(self._inputs(X), pred_contrib=True))
        return contrib[:, :-1], contrib[:, -1]

    def __getstate__(self) -> dict:
        # A booster pickles as its model text, which is stable across LightGBM builds.
        state = dict(self.__dict__)
        if "booster_" in state:
            state["booster_"] = state["booster_"].model_to_string()
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("booster_"), str):
            state["booster_"] = lgb.Booster(model_str=state["booster_"])
        self.__dict__.update(state)
