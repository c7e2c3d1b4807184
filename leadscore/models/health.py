"""The health model as scoring needs it: LightGBM's log-odds, then a Platt calibration.

Platt (a * margin + b) rather than isotonic: both met the calibration bar (docs/models.md), and a linear
map of the log-odds keeps the ranking, gives a smooth 0-100 score without plateaus, and lets an
explanation in log-odds be rescaled exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.catalogue import FEATURES


@dataclass
class HealthModel:
    booster: lgb.Booster
    slope: float = 1.0  # Platt: P = sigmoid(slope * margin + intercept)
    intercept: float = 0.0

    def margin(self, features: pd.DataFrame) -> np.ndarray:
        """The booster's log-odds before calibration."""
        return self.booster.predict(features[FEATURES], raw_score=True)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated P(won within 90 days)."""
        return 1.0 / (1.0 + np.exp(-(self.slope * self.margin(features) + self.intercept)))

    def __getstate__(self) -> dict:
        # A booster pickles as its model text, which is stable across LightGBM builds.
        return {"model": self.booster.model_to_string(), "slope": self.slope, "intercept": self.intercept}

    def __setstate__(self, state: dict) -> None:
        self.booster = lgb.Booster(model_str=state["model"])
        self.slope, self.intercept = state["slope"], state["intercept"]
