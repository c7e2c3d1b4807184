"""The stage model: a lead's real stage at as_of (one of the 8 open stages) from follow-up notes, attachments,
decision-chain roles, behaviour and the recorded stage, with class probabilities and a flag when the
recorded stage differs.

Closed leads need no model: their stage (赢单 / 丢单) is the outcomes table's. The model scores open
snapshots. Two layers: a TF-IDF text model on the latest notes (notes follow the real stage, the recorded
stage lags or skips) gives 8 stage probabilities, out-of-fold on training rows so the booster never sees
the text model's verdict on text it was fitted on; a LightGBM multiclass booster reads them with the
feature pipeline's columns. Labels come from training/stage.py (confirmed stages only).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.catalogue import CATEGORICAL
from features.pipeline import SnapshotTexts
from features.text import OutOfFoldTextClassifier

OPEN_STAGES = ["新线索", "初步接触", "需求确认", "方案沟通", "样品验证", "报价", "招标比价", "合同谈判"]
TEXT_COLUMNS = [f"notes_stage_p_{i}" for i in range(len(OPEN_STAGES))]
PARAMS = {
    "objective": "multiclass",
    "num_class": len(OPEN_STAGES),
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 2,
    "seed": 0,
}
NUM_ROUNDS = 300


class StageModel:
    """fit(features, texts, labels) on confirmed labels; predict_proba / predict on any open snapshots.

    `mismatch_threshold`: the inferred stage must be at least this probable to flag a recorded stage as
    wrong (a lower-confidence disagreement is not flagged)."""

    def __init__(
        self,
        num_rounds: int = NUM_ROUNDS,
        mismatch_threshold: float = 0.5,
        text_splits: int = 4,
        text_max_features: int = 50_000,
        random_state: int = 0,
    ) -> None:
        self.num_rounds = num_rounds
        self.mismatch_threshold = mismatch_threshold
        self.text_splits = text_splits  # folds of the out-of-fold text model (fewer: faster, e.g. in tests)
        self.text_max_features = text_max_features
        self.random_state = random_state

    def fit(
        self, features: pd.DataFrame, texts: SnapshotTexts, labels: pd.Series, groups: np.ndarray | None = None
    ) -> StageModel:
        """Learn from the rows whose label is one of the open stages; `groups` (lead ids) keep a lead's
        snapshots in one fold of the out-of-fold text model."""
        labels = pd.Series(labels).reset_index(drop=True)
        keep = labels.isin(OPEN_STAGES).to_numpy()
        if keep.sum() == 0:  # e.g. an export with no stage history: answer the recorded stage, flag nothing
            self.text_model_, self.booster_, self.feature_names_ = None, None, []
            return self
        y = labels[keep].map({s: i for i, s in enumerate(OPEN_STAGES)}).to_numpy(int)
        notes = texts.notes.reset_index(drop=True)[keep].to_frame()
        self.text_model_ = OutOfFoldTextClassifier(
            n_splits=self.text_splits, max_features=self.text_max_features, random_state=self.random_state
        )
        oof = self.text_model_.fit_transform(notes, y, groups=None if groups is None else np.asarray(groups)[keep])
        x = self._matrix(features.reset_index(drop=True)[keep], self._spread(oof))
        self.feature_names_ = list(x.columns)
        params = dict(PARAMS, seed=self.random_state)
        self.booster_ = lgb.train(params, lgb.Dataset(x, y, categorical_feature=self._categorical(x)), self.num_rounds)
        return self

    def _spread(self, proba: np.ndarray) -> np.ndarray:
        """Text probabilities over all 8 stages (a stage absent from training gets 0)."""
        out = np.zeros((len(proba), len(OPEN_STAGES)))
        out[:, self.text_model_.classes_.astype(int)] = proba
        return out

    @staticmethod
    def _categorical(x: pd.DataFrame) -> list[str]:
        return [c for c in CATEGORICAL if c in x.columns]

    @staticmethod
    def _matrix(features: pd.DataFrame, text_proba: np.ndarray) -> pd.DataFrame:
        x = features.reset_index(drop=True).copy()
        for i, name in enumerate(TEXT_COLUMNS):
            x[name] = text_proba[:, i]
        return x

    def predict_proba(self, features: pd.DataFrame, texts: SnapshotTexts) -> pd.DataFrame:
        """One column per open stage, rows summing to 1, index as `features`."""
        if self.booster_ is None:  # fitted without labels: certain of the recorded stage (新线索 if none)
            recorded = features["recorded_stage"].astype(object).where(lambda s: s.isin(OPEN_STAGES), OPEN_STAGES[0])
            one_hot = np.asarray([[float(r == s) for s in OPEN_STAGES] for r in recorded])
            return pd.DataFrame(
                one_hot.reshape(len(features), len(OPEN_STAGES)), columns=OPEN_STAGES, index=features.index
            )
        text_proba = self._spread(self.text_model_.transform(texts.notes.reset_index(drop=True).to_frame()))
        x = self._matrix(features, text_proba)[self.feature_names_]
        proba = self.booster_.predict(x)
        proba = proba / proba.sum(axis=1, keepdims=True)
        return pd.DataFrame(proba, columns=OPEN_STAGES, index=features.index)

    def predict(self, features: pd.DataFrame, texts: SnapshotTexts) -> pd.DataFrame:
        """inferred_stage, confidence (its probability), recorded_stage and mismatch: the inferred stage
        differs from the recorded one with at least `mismatch_threshold` confidence."""
        return self.decide(self.predict_proba(features, texts), features["recorded_stage"])

    def decide(self, proba: pd.DataFrame, recorded_stage: pd.Series) -> pd.DataFrame:
        """`predict`'s answer from probabilities already computed (scoring needs both, once)."""
        inferred = proba.idxmax(axis=1)
        confidence = proba.max(axis=1)
        recorded = pd.Series(recorded_stage.astype(object).to_numpy(), index=proba.index)
        mismatch = (inferred != recorded).to_numpy() & (confidence >= self.mismatch_threshold).to_numpy()
        if self.booster_ is None:  # fitted without labels: it only repeats the recorded stage
            mismatch[:] = False
        return pd.DataFrame(
            {"inferred_stage": inferred, "confidence": confidence, "recorded_stage": recorded, "mismatch": mismatch},
            index=proba.index,
        )
