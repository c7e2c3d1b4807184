"""The health model: calibrated P(won within 90 days of as_of) from the features of a (lead, as_of) snapshot.

A *scorer* of one family gives log-odds (its margin) and their additive contributions per feature; the
health model calibrates the margin by Platt on cross-fitted (grouped by lead) out-of-fold margins. The
families (training/selection.py chooses among them by time-split cross-validation inside the training export):
- `BoostedTrees`: LightGBM, optionally on its `n_features` most important features (importance learned on
  the rows it is fitted on); contributions are TreeSHAP (`pred_contrib`, the same values as shap's);
- `LinearScorer`: a logistic regression on imputed, scaled numbers and one-hot categories; its
  contributions are exact (coefficient times value, summed per feature);
- `NaiveBayesScorer`: Odoo-style frequency tables under independence; exact log-likelihood ratios;
- `BlendScorer`: a weighted sum of members' log-odds; contributions are the same weighted sum.
Why cross-fitted calibration and not the latest period: the latest period holds the oldest leads, older than
any the earlier period's booster saw, so a time-held-out calibrator learned the booster's extrapolation error
rather than its calibration (docs/models.md). Platt (a * margin + b) rather than isotonic: a linear map of the
log-odds keeps the ranking, gives a smooth 0-100 score, and lets an explanation be rescaled exactly
(models/explain.py).
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.naive_bayes import CategoricalNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from features.catalogue import CATEGORICAL, FEATURES
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


class BoostedTrees(BaseEstimator):
    """LightGBM log-odds. `n_features`: keep only the most important (by total gain of a first fit on the
    same rows) and refit on them; None keeps every feature."""

    family = "lightgbm"

    def __init__(
        self, params: dict[str, Any] | None = None, num_rounds: int = NUM_ROUNDS, n_features: int | None = None
    ):
        self.params = params
        self.num_rounds = num_rounds
        self.n_features = n_features

    def fit(self, X: pd.DataFrame, y: np.ndarray, client=None) -> BoostedTrees:
        columns = list(FEATURES)
        if self.n_features is not None and self.n_features < len(columns):
            first = self._boost(X[columns], y, client)
            gain = pd.Series(first.feature_importance("gain"), index=columns)
            columns = list(gain.sort_values(ascending=False).index[: self.n_features])
            columns = [c for c in FEATURES if c in set(columns)]  # catalogue order
        self.columns_ = columns
        self.booster_ = self._boost(X[columns], y, client)
        return self

    def _boost(self, x: pd.DataFrame, y: np.ndarray, client=None) -> lgb.Booster:
        params = {**PARAMS, **(self.params or {})}
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
        return self.booster_.predict(X[self.columns_], raw_score=True)

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        contrib = np.asarray(self.booster_.predict(X[self.columns_], pred_contrib=True))
        return _spread(contrib[:, :-1], self.columns_), contrib[:, -1]

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


def _spread(values: np.ndarray, columns: list[str]) -> np.ndarray:
    """Contributions over `columns` as a rows x FEATURES matrix (0 for a feature the scorer does not read)."""
    out = np.zeros((len(values), len(FEATURES)))
    out[:, [FEATURES.index(c) for c in columns]] = values
    return out


def _as_object(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), "∅")


class LinearScorer(BaseEstimator):
    """A logistic regression on `columns` (default every feature): numbers imputed by their median with a
    missing indicator and scaled, categories one-hot (levels seen 20+ times). Its log-odds are a sum over
    the transformed columns, so each feature's contribution is exact: coefficient times value, summed over
    the columns it became; the intercept is the bias."""

    family = "logistic"

    def __init__(self, columns: list[str] | None = None, C: float = 0.1):
        self.columns = columns
        self.C = C

    def fit(self, X: pd.DataFrame, y: np.ndarray, client=None) -> LinearScorer:
        columns = list(self.columns or FEATURES)
        self.numeric_ = [c for c in columns if c not in CATEGORICAL]
        self.categorical_ = [c for c in columns if c in CATEGORICAL]
        numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                                StandardScaler())  # fmt: skip
        categories = make_pipeline(
            FunctionTransformer(_as_object), OneHotEncoder(handle_unknown="ignore", min_frequency=20)
        )
        self.design_ = ColumnTransformer(
            [("numbers", numbers, self.numeric_), ("categories", categories, self.categorical_)]
        )
        z = self.design_.fit_transform(X[columns])
        self.model_ = LogisticRegression(C=self.C, max_iter=2000).fit(z, y)
        self.owner_ = self._owners()
        return self

    def _owners(self) -> np.ndarray:
        """The catalogue index of the feature each transformed column comes from."""
        owners = []
        imputer = self.design_.named_transformers_["numbers"][0]
        owners += [FEATURES.index(c) for c in self.numeric_]
        owners += [FEATURES.index(self.numeric_[i]) for i in getattr(imputer.indicator_, "features_", [])]
        if self.categorical_:
            encoder = self.design_.named_transformers_["categories"][-1]
            for name in encoder.get_feature_names_out(self.categorical_):
                owners.append(FEATURES.index(max((c for c in self.categorical_ if name.startswith(c + "_")), key=len)))
        return np.array(owners, dtype=int)

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        z = self.design_.transform(X[self.numeric_ + self.categorical_])
        return z.toarray() if hasattr(z, "toarray") else np.asarray(z)

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.decision_function(self._design(X))

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        per_column = self._design(X) * self.model_.coef_[0]
        values = np.zeros((len(X), len(FEATURES)))
        np.add.at(values.T, self.owner_, per_column.T)
        return values, np.full(len(X), float(self.model_.intercept_[0]))


# The fields Odoo's predictive lead scoring reads, mapped to ours (numbers bucketed into levels).
NAIVE_BAYES_FIELDS = ["channel", "industry", "customer_type", "province", "recorded_stage", "has_email", "has_phone"]
_BUCKETS = {"budget_cny": [-1, 1e5, 5e5, 2e6, np.inf], "company_size": [-1, 20, 100, 1000, np.inf]}


def naive_bayes_levels(features: pd.DataFrame) -> pd.DataFrame:
    out = features[NAIVE_BAYES_FIELDS].astype(object)
    for name, edges in _BUCKETS.items():
        out[name] = pd.cut(features[name], edges).astype(object)
    return out.where(out.notna(), "∅").astype(str)


class NaiveBayesScorer(BaseEstimator):
    """Frequency tables of won / not won per field value, combined under independence (sklearn's
    CategoricalNB, Laplace-smoothed). Its log-odds are the prior's plus one log-likelihood ratio per field:
    exact contributions (the budget and size buckets count for budget_cny and company_size)."""

    family = "naive_bayes"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X: pd.DataFrame, y: np.ndarray, client=None) -> NaiveBayesScorer:
        levels = naive_bayes_levels(X)
        self.fields_ = list(levels.columns)
        # Unseen values get their own code; min_categories leaves room for it.
        self.encoder_ = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        codes = self.encoder_.fit_transform(levels) + 1
        self.model_ = CategoricalNB(alpha=self.alpha, min_categories=[len(c) + 1 for c in self.encoder_.categories_])
        self.model_.fit(codes, y)
        return self

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        codes = (self.encoder_.transform(naive_bayes_levels(X)) + 1).astype(int)
        values = np.zeros((len(X), len(FEATURES)))
        for j, field in enumerate(self.fields_):
            table = self.model_.feature_log_prob_[j]  # classes x levels
            values[:, FEATURES.index(field)] = table[1, codes[:, j]] - table[0, codes[:, j]]
        prior = self.model_.class_log_prior_
        return values, np.full(len(X), float(prior[1] - prior[0]))

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        values, bias = self.contributions(X)
        return bias + values.sum(axis=1)


class BlendScorer(BaseEstimator):
    """A weighted sum of members' log-odds (the weights chosen by model selection on time-split folds)."""

    family = "blend"

    def __init__(self, members: tuple = (), weights: tuple[float, ...] = ()):
        self.members = members
        self.weights = weights

    def fit(self, X: pd.DataFrame, y: np.ndarray, client=None) -> BlendScorer:
        if len(self.members) != len(self.weights) or not self.members:
            raise ValueError("a blend needs one weight per member")
        self.members_ = [clone(m).fit(X, y, client=client) for m in self.members]
        return self

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        return sum(w * m.margin(X) for w, m in zip(self.weights, self.members_, strict=True))

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        parts = [m.contributions(X) for m in self.members_]
        values = sum(w * v for w, (v, _) in zip(self.weights, parts, strict=True))
        bias = sum(w * b for w, (_, b) in zip(self.weights, parts, strict=True))
        return values, bias


def trees_of(scorer: BaseEstimator) -> list[BoostedTrees]:
    """The LightGBM scorers in a fitted scorer (itself, or a blend's members): what TreeSHAP can check."""
    if isinstance(scorer, BlendScorer):
        return [tree for member in scorer.members_ for tree in trees_of(member)]
    return [scorer] if isinstance(scorer, BoostedTrees) else []


def describe(scorer: BaseEstimator) -> str:
    """A scorer's family and the hyperparameters that tell candidates apart, e.g. lightgbm(n_features=30)."""
    if isinstance(scorer, BlendScorer):
        inner = " + ".join(f"{w:.2f}×{describe(m)}" for w, m in zip(scorer.weights, scorer.members, strict=True))
        return f"blend({inner})"
    shown = {k: v for k, v in scorer.get_params(deep=False).items() if v is not None and k != "params"}
    if getattr(scorer, "params", None):
        shown["params"] = "regularised"
    if "columns" in shown:
        shown["columns"] = f"{len(shown['columns'])} fields"
    return f"{scorer.family}({', '.join(f'{k}={v}' for k, v in shown.items())})"


class HealthModel(LeadModel):
    """`scorer`: the family that gives log-odds (default LightGBM on every feature); `calibration_folds`:
    folds of the cross-fitted Platt step. Fitted: `scorer_`, `slope_`, `intercept_` (P = sigmoid(slope *
    margin + intercept)), `feature_names_in_`."""

    name = "health"

    def __init__(self, scorer: BaseEstimator | None = None, calibration_folds: int = 4) -> None:
        self.scorer = scorer
        self.calibration_folds = calibration_folds

    @classmethod
    def from_training(cls, data: TrainingSet, fitted: dict[str, LeadModel]) -> HealthModel:
        rows = data.matured
        model = cls(**data.params.get(cls.name, {}))
        return model.fit(data.features[rows], data.won_90[rows], groups=data.groups[rows], client=data.client)

    def fit(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, client=None) -> HealthModel:
        """The scorer on every row, calibrated on out-of-fold margins (folds grouped by `groups`, e.g. the
        lead). With a Dask `client`, boosters are trained by `lightgbm.dask` across its workers."""
        x = X[FEATURES]
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2:
            raise ValueError(f"the health model needs won and not-won snapshots to learn from; all {len(y)} are {y[0]}")
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        scorer = self.scorer if self.scorer is not None else BoostedTrees()
        margin = np.zeros(len(y))
        for fit_rows, held_out in GroupKFold(self.calibration_folds).split(x, y, groups):
            part = clone(scorer).fit(x.iloc[fit_rows], y[fit_rows], client=client)
            margin[held_out] = part.margin(x.iloc[held_out])
        self.scorer_ = clone(scorer).fit(x, y, client=client)
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(margin[:, None], y)
        self.slope_, self.intercept_ = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        return self

    @property
    def family(self) -> str:
        return describe(self.scorer_)

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """The scorer's log-odds before calibration."""
        return self.scorer_.margin(self._inputs(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(won within 90 days)."""
        return self.calibrate(self.margin(X))

    def calibrate(self, margin: np.ndarray) -> np.ndarray:
        """The Platt map from log-odds to probability."""
        return 1.0 / (1.0 + np.exp(-(self.slope_ * np.asarray(margin) + self.intercept_)))

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Contributions to the log-odds (rows x FEATURES) and the bias per row: they add up to `margin`."""
        return self.scorer_.contributions(self._inputs(X))
