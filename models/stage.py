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

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from features.catalogue import CATEGORICAL, FEATURES, TEXT_NOTES
from features.contract import CLOSED_STAGE, OPEN_STAGES
from features.text import OutOfFoldTextClassifier
from models.base import LeadModel, ScoringBatch, TrainingSet, rounded

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


class StageAnswer(BaseModel):
    """The real stage inferred at as_of, and whether the recorded one disagrees."""

    inferred: str = Field(description="one of the eight open stages, or 赢单 / 丢单 for a lead closed by as_of")
    confidence: float = Field(ge=0, le=1)
    probabilities: dict[str, float] = Field(description="stage -> probability")
    recorded: str | None = Field(description="the last stage the rep recorded by as_of")
    mismatch: bool = Field(description="the inferred stage differs from the recorded one with enough confidence")


class StageModel(LeadModel):
    """fit(X, y) on confirmed labels (X: the pipeline's features and its TEXT_NOTES column); predict_proba /
    predict on any open snapshots.

    `mismatch_threshold`: the inferred stage must be at least this probable to flag a recorded stage as
    wrong (a lower-confidence disagreement is not flagged)."""

    name = "stage"
    Answer = StageAnswer

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

    @classmethod
    def from_training(cls, data: TrainingSet, fitted: dict[str, LeadModel]) -> StageModel | None:
        if not pd.Series(data.stage_labels).isin(OPEN_STAGES).any():
            return None  # an export without confirmed stages (no stage history): the artifact has no stage part
        model = cls(**data.params.get(cls.name, {}))
        return model.fit(data.features[FEATURES + [TEXT_NOTES]], data.stage_labels, groups=data.groups)

    def fit(self, X: pd.DataFrame, y: pd.Series, groups: np.ndarray | None = None) -> StageModel:
        """Learn from the rows whose label is one of the open stages; `groups` (lead ids) keep a lead's
        snapshots in one fold of the out-of-fold text model."""
        labels = pd.Series(y).reset_index(drop=True)
        keep = labels.isin(OPEN_STAGES).to_numpy()
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        if TEXT_NOTES not in X.columns:
            raise ValueError(f"StageModel reads the notes: X needs the pipeline's {TEXT_NOTES!r} column")
        if keep.sum() == 0:  # e.g. an export with no stage history: it answers the recorded stage, flags nothing
            self.text_model_ = self.booster_ = None
            return self
        X = X.reset_index(drop=True)[keep]
        target = labels[keep].map({s: i for i, s in enumerate(OPEN_STAGES)}).to_numpy(int)
        self.text_model_ = OutOfFoldTextClassifier(
            n_splits=self.text_splits, max_features=self.text_max_features, random_state=self.random_state
        )
        oof = self.text_model_.fit_transform(
            X[[TEXT_NOTES]], target, groups=None if groups is None else np.asarray(groups)[keep]
        )
        x = self._matrix(X.drop(columns=TEXT_NOTES), self._spread(oof))
        self.booster_columns_ = list(x.columns)
        params = dict(PARAMS, seed=self.random_state)
        self.booster_ = lgb.train(
            params, lgb.Dataset(x, target, categorical_feature=self._categorical(x)), self.num_rounds
        )
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

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        """One column per open stage, rows summing to 1, index as `X`."""
        inputs = self._inputs(X)
        if self.booster_ is None:  # fitted without labels: certain of the recorded stage (新线索 if none)
            recorded = inputs["recorded_stage"].astype(object).where(lambda s: s.isin(OPEN_STAGES), OPEN_STAGES[0])
            one_hot = (recorded.to_numpy()[:, None] == np.array(OPEN_STAGES, dtype=object)[None, :]).astype(float)
            return pd.DataFrame(one_hot, columns=list(OPEN_STAGES), index=X.index)
        text_proba = self._spread(self.text_model_.transform(inputs[[TEXT_NOTES]].reset_index(drop=True)))
        x = self._matrix(inputs.drop(columns=TEXT_NOTES), text_proba)[self.booster_columns_]
        proba = self.booster_.predict(x)
        proba = proba / proba.sum(axis=1, keepdims=True)
        return pd.DataFrame(proba, columns=list(OPEN_STAGES), index=X.index)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """inferred_stage, confidence (its probability), recorded_stage and mismatch: the inferred stage
        differs from the recorded one with at least `mismatch_threshold` confidence."""
        return self.decide(self.predict_proba(X), X["recorded_stage"])

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

    def answer(self, batch: ScoringBatch) -> list[StageAnswer]:
        """Inferred stage with probabilities and the mismatch flag; a lead closed by as_of is 赢单 / 丢单."""
        features = batch.features.reset_index(drop=True)
        proba = self.predict_proba(features)
        predicted = self.decide(proba, features["recorded_stage"])
        outcomes = batch.tables["outcomes"].drop_duplicates("lead_id")[["lead_id", "status", "closed_at"]]
        known = batch.snapshots[["lead_id", "as_of"]].reset_index(drop=True).merge(outcomes, on="lead_id", how="left")
        closed = (known["closed_at"] <= pd.to_datetime(known["as_of"])).fillna(False).to_numpy(bool)
        answers = []
        for i in range(len(predicted)):
            recorded = predicted["recorded_stage"].iat[i]
            recorded = None if pd.isna(recorded) else str(recorded)
            status = known["status"].iat[i]
            if closed[i] and status in CLOSED_STAGE:
                stage = CLOSED_STAGE[status]
                answers.append(StageAnswer(inferred=stage, confidence=1.0, probabilities={stage: 1.0},
                                           recorded=recorded, mismatch=False))  # fmt: skip
                continue
            answers.append(
                StageAnswer(
                    inferred=str(predicted["inferred_stage"].iat[i]),
                    confidence=round(float(predicted["confidence"].iat[i]), 4),
                    probabilities=rounded(proba.iloc[i]),
                    recorded=recorded,
                    mismatch=bool(predicted["mismatch"].iat[i]),
                )
            )
        return answers

    @staticmethod
    def flat(part: dict[str, Any]) -> dict[str, Any]:
        return {"inferred_stage": part["inferred"], "stage_mismatch": part["mismatch"]}

    def warm_up(self) -> StageModel:
        if self.text_model_ is not None:
            self.text_model_.model_.words.tokenizer.warm_up()
        return self
