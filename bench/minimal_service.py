"""The reference service of issue 20's throughput goal: BentoML answering the health model's probability and
its top-5 TreeSHAP contributions for features computed beforehand — no request parsing, no feature
pipeline, no other model, no logging. bench.service starts it in the same run as ours:

    MINIMAL_HEALTH_DIR=DIR bentoml serve bench.minimal_service:MinimalHealth --port PORT

DIR holds `health.joblib` (the champion's HealthModel) and `features.parquet` (one row per lead); a request
{"row": i} is answered for row i.
"""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
import joblib
import numpy as np
import pandas as pd

TOP = 5


def write_inputs(health, features: pd.DataFrame, directory: Path) -> None:
    """What the service loads: the health model and the precomputed features."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(health, directory / "health.joblib")
    features.reset_index(drop=True).to_parquet(directory / "features.parquet")


@bentoml.service(traffic={"timeout": 60})
class MinimalHealth:
    def __init__(self) -> None:
        directory = Path(os.environ["MINIMAL_HEALTH_DIR"])
        self.health = joblib.load(directory / "health.joblib")
        self.features = pd.read_parquet(directory / "features.parquet")
        self.names = list(self.health.feature_names_in_)

    @bentoml.api
    def predict(self, row: int) -> dict:
        x = self.features.iloc[[row % len(self.features)]]
        probability = float(self.health.predict(x)[0])
        contributions, _ = self.health.contributions(x)
        top = np.argsort(-np.abs(contributions[0]))[:TOP]
        return {"probability": probability, "top": [[self.names[i], float(contributions[0][i])] for i in top]}
