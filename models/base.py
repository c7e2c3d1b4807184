"""The contract every model of the artifact follows, and what a training pass and a scoring call hand them.

A model is a scikit-learn estimator (LightGBM's `LGBMModel` is the example): hyperparameters in `__init__`
and nothing else there, `fit` returns self, fitted state ends in `_`, and at predict time the input's columns
are checked against `feature_names_in_` (a missing column is a ValueError naming it, as feature-engine does).
On top of that, each model says
- `from_training(data, fitted)`: how one training pass fits it from what the pass knows (its labels are in
  `TrainingSet`; hyperparameters chosen by model selection arrive in `data.params[name]`);
- `answer(batch)`: its part of each lead's answer (a pydantic `Answer`), and `flat(part)`: its headline
  columns for tables.
models/registry.py lists the models; adding one is its class and one line there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.base import BaseEstimator


@dataclass
class TrainingSet:
    """What one training pass knows, for every model: the snapshots' features (with the detail columns), the
    lead of each row, every label kind as known at the pass's cutoff, and what model selection chose."""

    features: pd.DataFrame  # FeaturePipeline.fit_transform(..., details=True)
    groups: np.ndarray  # lead_id per row: folds never split a lead
    outcome: pd.DataFrame  # days to the win / loss / censoring and the event code (features.labels)
    matured: np.ndarray  # the 90-day label is known
    stage_labels: pd.Series  # a confirmed stage, or NaN (training/stage.py)
    intent_texts: list[str] | None = None  # a labelled file of form texts, if one was given
    intent_labels: list[str] | None = None
    intent_label_set: tuple[str, ...] | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # model name -> chosen hyperparameters
    client: Any = None  # a Dask client: boosters are trained across its workers
    tables: dict[str, pd.DataFrame] | None = None  # the export the pass learns from (models of the leads' history)
    until: pd.Timestamp | None = None  # what the pass knows of outcomes: closed at or before this time

    @property
    def won_90(self) -> np.ndarray:
        from features.labels import won_within

        return won_within(self.outcome["days"].to_numpy(), self.outcome["event"].to_numpy()).astype(int)


@dataclass
class ScoringBatch:
    """What a scoring call hands every model: the snapshots, their tables and features (with the detail
    columns), and the health model's calibrated probability (which the close-date curve is anchored to)."""

    tables: dict[str, pd.DataFrame]
    snapshots: pd.DataFrame  # lead_id, as_of; row i of features is snapshot i
    features: pd.DataFrame
    win_probability: np.ndarray


class LeadModel(BaseEstimator):
    """Base of every model in the artifact (see the module's docstring for the contract)."""

    name: ClassVar[str]  # key in the artifact and in the answer
    Answer: ClassVar[type[BaseModel] | None] = None  # its part of a lead's answer; None: not a separate part

    @classmethod
    def from_training(cls, data: TrainingSet, fitted: dict[str, LeadModel]) -> LeadModel | None:
        """This model fitted by a training pass (None if the pass has nothing to fit it on)."""
        raise NotImplementedError

    def answer(self, batch: ScoringBatch) -> list[BaseModel]:
        """Its part of each snapshot's answer, in order."""
        raise NotImplementedError

    @staticmethod
    def flat(part: dict[str, Any]) -> dict[str, Any]:
        """Its headline columns of one answer (`part`: its answer as a dict)."""
        return {}

    def warm_up(self) -> LeadModel:
        """Load what the first request would otherwise wait for."""
        return self

    def _inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        """X's columns in the order seen at fit time; a ValueError names any that are missing."""
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise ValueError(f"{type(self).__name__}: the input lacks columns seen at fit time: {shown}")
        return X[list(self.feature_names_in_)]


def rounded(values: pd.Series) -> dict[str, float]:
    """Probabilities by label, rounded for an answer."""
    return {str(k): round(float(v), 4) for k, v in values.items()}
