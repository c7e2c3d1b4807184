"""Flat exports: one table, one row per lead, a binary target column, no event tables (issue 4, item 10).

A JSON config names the columns (see configs/xeducation.json and docs/models-flat.md). The model is LightGBM
on lightly cleaned columns plus a Platt step fitted on out-of-fold predictions. It is evaluated by stratified
K-fold CV in which the Platt step of each fold is fitted on inner folds of that fold's training rows only, so
the reported AUC and ECE are out-of-sample. Parameters are fixed in DEFAULT_PARAMS (chosen once, before any
sweep; see docs/models-flat.md for the sweep, which moved AUC by < 0.002), not tuned on the reported folds.

FlatPreprocessor and FlatModel are defined here for now; if flat models are ever served they should move to
models/ (serving must not import training/).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tqdm.auto import tqdm

from training.audit import leakage_audit
from training.metrics import expected_calibration_error

log = logging.getLogger(__name__)

# Modest, regularised LightGBM: small trees, slow learning, smoothed categorical splits.
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.02,
    "n_estimators": 600,
    "num_leaves": 15,
    "min_child_samples": 30,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 5.0,
    "cat_smooth": 20.0,
    "cat_l2": 10.0,
    "min_data_per_group": 50,
    "verbose": -1,
    "n_jobs": 1,
}
MISSING = "__missing__"
RARE = "__rare__"
RULE_FORMULA_NOTE = "rule formula baseline: not applicable (flat export has no stage or event history)"


class FlatConfigError(ValueError):
    """A flat-export config or table that cannot be trained on; the message says what to fix."""


@dataclass
class FlatConfig:
    target: str
    path: str | None = None
    id_columns: list[str] = field(default_factory=list)
    exclude: dict[str, str] = field(default_factory=dict)  # column -> why it is left out
    categorical: list[str] | None = None  # None: inferred (non-numeric columns)
    numeric: list[str] | None = None  # None: inferred (numeric columns)
    missing_markers: list[str] = field(default_factory=list)
    ratios: list[dict[str, str]] = field(default_factory=list)  # {"name", "numerator", "denominator"}
    min_level_count: int = 20
    params: dict[str, Any] = field(default_factory=dict)  # overrides of DEFAULT_PARAMS
    calibration: str = "platt"  # "platt" or "none"
    folds: int = 5
    inner_folds: int = 3
    seed: int = 0
    base_dir: Path = field(default=Path("."), repr=False)

    @classmethod
    def load(cls, source: str | Path | dict[str, Any]) -> FlatConfig:
        """Read a JSON file (relative `path` resolved against the file's folder) or a dict."""
        if isinstance(source, dict):
            raw, base = dict(source), Path(".")
        else:
            source = Path(source)
            if not source.is_file():
                raise FlatConfigError(f"config file not found: {source}")
            try:
                raw = json.loads(source.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise FlatConfigError(f"config {source} is not valid JSON: {exc}") from exc
            base = source.resolve().parent
        model = raw.pop("model", {}) or {}
        raw.pop("description", None)
        known = {f for f in cls.__dataclass_fields__ if f != "base_dir"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise FlatConfigError(f"unknown config keys: {', '.join(unknown)}")
        if "target" not in raw:
            raise FlatConfigError("config must name the target column ('target')")
        for key in ("params", "calibration", "folds", "inner_folds", "seed", "min_level_count"):
            if key in model:
                raw[key] = model[key]
        config = cls(**raw, base_dir=base)
        if config.calibration not in {"platt", "none"}:
            raise FlatConfigError(f"calibration must be 'platt' or 'none', not {config.calibration!r}")
        if isinstance(config.exclude, list):
            raise FlatConfigError("'exclude' must map each column to the reason it is left out")
        return config

    def resolve_path(self, data_path: str | Path | None = None) -> Path:
        if data_path is not None:
            return Path(data_path)
        if self.path is None:
            raise FlatConfigError("no data file: give 'path' in the config or a data path")
        path = Path(self.path)
        return path if path.is_absolute() else self.base_dir / path

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "base_dir"}
        return json.loads(json.dumps(out, default=str))


def load_flat_table(config: FlatConfig, data_path: str | Path | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Read the table, check it against the config and return (input columns, 0/1 target). Missing markers
    become NaN; id and excluded columns are dropped; constant columns are dropped (they carry nothing)."""
    path = config.resolve_path(data_path)
    if not path.is_file():
        raise FlatConfigError(f"data file not found: {path}")
    try:
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise FlatConfigError(f"data file {path} is empty") from exc
    if table.empty:
        raise FlatConfigError(f"data file {path} has no rows")
    if config.target not in table.columns:
        raise FlatConfigError(f"target column {config.target!r} is not in {path.name}")
    named = [*config.id_columns, *config.exclude, *(config.categorical or []), *(config.numeric or [])]
    named += [r[k] for r in config.ratios for k in ("numerator", "denominator")]
    absent = [c for c in dict.fromkeys(named) if c not in table.columns]
    if absent:
        raise FlatConfigError(f"column(s) named in the config are not in {path.name}: {', '.join(absent)}")
    target = table[config.target]
    values = set(target.dropna().unique().tolist())
    if target.isna().any() or not values or not values <= {0, 1}:  # True/False compare equal to 1/0
        raise FlatConfigError(
            f"target column {config.target!r} must be binary 0/1 without missing values; "
            f"found {sorted(map(str, values))[:5]}{' and missing values' if target.isna().any() else ''}"
        )
    if len(values) < 2:
        raise FlatConfigError(f"target column {config.target!r} has a single class")
    features = table.drop(columns=[config.target, *config.id_columns, *config.exclude])
    if config.missing_markers:
        features = features.replace(config.missing_markers, np.nan)
    if config.categorical is not None or config.numeric is not None:
        keep = [*(config.categorical or []), *(config.numeric or [])]
        features = features[[c for c in features.columns if c in keep]]
    constant = [c for c in features.columns if features[c].nunique(dropna=True) <= 1]
    features = features.drop(columns=constant)
    if features.shape[1] == 0:
        raise FlatConfigError("no input columns left after dropping ids, excluded and constant columns")
    return features.reset_index(drop=True), target.astype(int).to_numpy()


class FlatPreprocessor:
    """Raw flat rows -> LightGBM inputs. Categorical text is trimmed and case-folded ("google" == "Google"),
    levels seen fewer than `min_level_count` times pool into one rare level, missing is its own level;
    numeric columns become floats; configured ratios (e.g. time per visit) and a count of missing fields
    are added."""

    def __init__(
        self,
        categorical: list[str] | None = None,
        numeric: list[str] | None = None,
        missing_markers: list[str] | None = None,
        ratios: list[dict[str, str]] | None = None,
        min_level_count: int = 20,
    ) -> None:
        self.categorical = categorical
        self.numeric = numeric
        self.missing_markers = list(missing_markers or [])
        self.ratios = list(ratios or [])
        self.min_level_count = min_level_count

    def fit(self, frame: pd.DataFrame) -> FlatPreprocessor:
        frame = self._markers(frame)
        if self.categorical is None and self.numeric is None:
            cat = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
            num = [c for c in frame.columns if c not in cat]
        else:
            cat = [c for c in (self.categorical or []) if c in frame.columns]
            num = [c for c in (self.numeric or []) if c in frame.columns]
        self.categorical_, self.numeric_ = cat, num
        self.input_columns_ = [*cat, *num]
        self.levels_: dict[str, list[str]] = {}
        for name in cat:
            counts = self._clean(frame[name]).value_counts()
            self.levels_[name] = sorted(counts[counts >= self.min_level_count].index) + [RARE, MISSING]
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        absent = [c for c in self.input_columns_ if c not in frame.columns]
        if absent:
            raise ValueError(f"input column(s) missing: {', '.join(absent)}")
        frame = self._markers(frame[self.input_columns_])
        out = pd.DataFrame(index=frame.index)
        for name in self.categorical_:
            clean = self._clean(frame[name])
            levels = self.levels_[name]
            clean = clean.where(clean.isin(levels) | clean.isna(), RARE).fillna(MISSING)
            out[name] = pd.Categorical(clean, categories=levels)
        for name in self.numeric_:
            try:
                out[name] = pd.to_numeric(frame[name]).astype(float)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"numeric column {name!r} holds non-numeric values") from exc
        for ratio in self.ratios:
            den = out[ratio["denominator"]]
            out[ratio["name"]] = out[ratio["numerator"]] / den.where(den > 0)
        out["n_missing_fields"] = frame.isna().sum(axis=1).astype(float)
        return out

    def _markers(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.replace(self.missing_markers, np.nan) if self.missing_markers else frame

    @staticmethod
    def _clean(column: pd.Series) -> pd.Series:
        text = column.astype("string").str.strip().str.casefold()
        return text.where(text != "", pd.NA).astype(object).where(text.notna(), np.nan)


class FlatModel:
    """Preprocessor + LightGBM + optional Platt step; `predict_proba` takes raw flat rows. Picklable."""

    def __init__(self, preprocessor: FlatPreprocessor, params: dict[str, Any], calibration: str = "platt") -> None:
        self.preprocessor = preprocessor
        self.params = params
        self.calibration = calibration

    def fit(self, frame: pd.DataFrame, y: np.ndarray, *, inner_folds: int = 3, seed: int = 0) -> FlatModel:
        self.preprocessor.fit(frame)
        inputs = self.preprocessor.transform(frame)
        self.booster_ = lgb.LGBMClassifier(**self.params).fit(inputs, y)
        self.calibrator_ = None
        if self.calibration == "platt":
            # Platt on out-of-fold raw scores of the training rows (in-sample scores are overconfident).
            raw = np.empty(len(y))
            for train, test in StratifiedKFold(inner_folds, shuffle=True, random_state=seed).split(frame, y):
                inner = FlatModel(_copy(self.preprocessor), self.params, calibration="none")
                inner.fit(frame.iloc[train], y[train])
                raw[test] = inner._raw(frame.iloc[test])
            self.calibrator_ = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y)
        return self

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict_proba(self.preprocessor.transform(frame), raw_score=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raw = self._raw(frame)
        if self.calibrator_ is not None:
            p = self.calibrator_.predict_proba(raw.reshape(-1, 1))[:, 1]
        else:
            p = 1 / (1 + np.exp(-raw))
        return np.column_stack([1 - p, p])

    @property
    def input_columns(self) -> list[str]:
        return list(self.preprocessor.input_columns_)


def _copy(pre: FlatPreprocessor) -> FlatPreprocessor:
    return FlatPreprocessor(pre.categorical, pre.numeric, pre.missing_markers, pre.ratios, pre.min_level_count)


@dataclass
class FlatResult:
    model: FlatModel
    metrics: dict[str, float]
    audit: pd.DataFrame  # leakage_audit over model inputs AND excluded columns; `in_model` says which
    config: dict[str, Any]
    oof: np.ndarray  # calibrated out-of-fold probabilities, row order of the table
    y: np.ndarray
    notes: list[str] = field(default_factory=list)


def _logreg_baseline(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    cat = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
    num = [c for c in train.columns if c not in cat]
    encode = ColumnTransformer(
        [
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"), OneHotEncoder(handle_unknown="ignore")
                ),
                cat,
            ),
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), num),
        ]
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=3000)).fit(train.astype({c: object for c in cat}), y)
    return model.predict_proba(test.astype({c: object for c in cat}))[:, 1]


def _lgbm_default_baseline(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    cat = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]

    def encode(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for c in cat:
            frame[c] = pd.Categorical(frame[c], categories=sorted(train[c].dropna().unique()))
        return frame

    return lgb.LGBMClassifier(verbose=-1, n_jobs=1).fit(encode(train), y).predict_proba(encode(test))[:, 1]


def _summary(prefix: str, folds: list[float], oof: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        f"{prefix}auc_mean": float(np.mean(folds)),
        f"{prefix}auc_std": float(np.std(folds)),
        f"{prefix}oof_ece": expected_calibration_error(oof, y),
        f"{prefix}oof_auc": float(roc_auc_score(y, oof)),
    }


def train_flat(
    config_path_or_dict: str | Path | dict[str, Any], data_path: str | Path | None = None, progress: bool = True
) -> FlatResult:
    """Config -> checked table -> K-fold CV of the calibrated LightGBM and two baselines on the same folds ->
    leakage audit -> final model fitted on every row."""
    config = FlatConfig.load(config_path_or_dict)
    features, y = load_flat_table(config, data_path)
    if min(np.bincount(y)) < config.folds:
        raise FlatConfigError(f"too few rows of the rarer class ({min(np.bincount(y))}) for {config.folds}-fold CV")
    params = {**DEFAULT_PARAMS, **config.params, "random_state": config.seed}

    def new_model() -> FlatModel:
        pre = FlatPreprocessor(
            config.categorical, config.numeric, config.missing_markers, config.ratios, config.min_level_count
        )
        return FlatModel(pre, params, config.calibration)

    splits = list(StratifiedKFold(config.folds, shuffle=True, random_state=config.seed).split(features, y))
    candidates = {"": new_model, "baseline_logreg_": None, "baseline_lgbm_default_": None}
    oof = {name: np.empty(len(y)) for name in candidates}
    fold_auc: dict[str, list[float]] = {name: [] for name in candidates}
    for train, test in tqdm(splits, desc="flat CV folds", disable=not progress):
        x_train, x_test = features.iloc[train], features.iloc[test]
        oof[""][test] = (
            new_model()
            .fit(x_train, y[train], inner_folds=config.inner_folds, seed=config.seed)
            .predict_proba(x_test)[:, 1]
        )
        oof["baseline_logreg_"][test] = _logreg_baseline(x_train, y[train], x_test)
        oof["baseline_lgbm_default_"][test] = _lgbm_default_baseline(x_train, y[train], x_test)
        for name in candidates:
            fold_auc[name].append(roc_auc_score(y[test], oof[name][test]))
    metrics: dict[str, float] = {}
    for name in candidates:
        summary = _summary(name or "cv_", fold_auc[name], oof[name], y)
        if not name:
            summary = {k.replace("cv_oof", "oof"): v for k, v in summary.items()}
        metrics.update(summary)
    metrics.update({"n_rows": float(len(y)), "positive_rate": float(y.mean()), "n_folds": float(config.folds)})

    audit = _audit(config, features, y, data_path, full_auc=metrics["cv_auc_mean"])
    flagged_inputs = audit[audit["flagged"] & audit["in_model"]]["feature"].tolist()
    metrics["audit_flagged_inputs"] = float(len(flagged_inputs))
    notes = [RULE_FORMULA_NOTE]
    if flagged_inputs:
        notes.append(f"leakage audit flags model inputs: {', '.join(flagged_inputs)}")
        log.warning("leakage audit flags model inputs: %s", ", ".join(flagged_inputs))
    model = new_model().fit(features, y, inner_folds=config.inner_folds, seed=config.seed)
    return FlatResult(model, metrics, audit, config.to_dict(), oof[""], y, notes)


def _audit(
    config: FlatConfig, features: pd.DataFrame, y: np.ndarray, data_path: str | Path | None, full_auc: float
) -> pd.DataFrame:
    """Audit the model inputs together with the excluded columns, so the report shows why they are out."""
    excluded = list(config.exclude)
    if excluded:
        path = config.resolve_path(data_path)
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        extra = table[excluded].reset_index(drop=True)
        if config.missing_markers:
            extra = extra.replace(config.missing_markers, np.nan)
        extra = extra.loc[:, extra.nunique(dropna=True) > 1]
        frame = pd.concat([features, extra], axis=1)
    else:
        frame = features
    audit = leakage_audit(frame, y, full_auc=full_auc)
    audit["in_model"] = audit["feature"].isin(features.columns)
    audit["excluded_reason"] = audit["feature"].map(config.exclude).fillna("")
    return audit
