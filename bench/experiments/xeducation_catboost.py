"""How far a different learner gets on X Education: CatBoost (library defaults, fixed before looking) and a
CatBoost/LightGBM blend whose weight is chosen on inner folds, each with the project's Platt step.

Not part of the product or of CI: it needs `pip install catboost` (about 270 MB with plotly and matplotlib)
and takes about 5 minutes on one core. Same table, exclusions and outer folds as `leadscore train --flat
configs/xeducation.json` (StratifiedKFold(5, shuffle, seed 0)); nothing is chosen on an outer test fold.

    pip install catboost && python -m bench.experiments.xeducation_catboost

Measured (stop 13): CatBoost + Platt 0.9074 ± 0.0072 (OOF ECE 0.0081); blend 0.9076 ± 0.0074 (0.0080);
the project's LightGBM + Platt 0.9051 ± 0.0076 (0.0087). docs/models-flat.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from training.flat import DEFAULT_PARAMS, FlatConfig, FlatModel, FlatPreprocessor, load_flat_table
from training.metrics import expected_calibration_error

CONFIG = FlatConfig.load(Path(__file__).resolve().parents[2] / "configs" / "xeducation.json")


def preprocessor(min_level_count: int) -> FlatPreprocessor:
    return FlatPreprocessor(CONFIG.categorical, CONFIG.numeric, CONFIG.missing_markers, CONFIG.ratios, min_level_count)


def catboost_raw(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """CatBoost's log-odds; every level is kept (its ordered target statistics do the pooling)."""
    pre = preprocessor(min_level_count=1).fit(train)
    a, b = pre.transform(train), pre.transform(test)
    for name in pre.categorical_:
        a[name], b[name] = a[name].astype(str), b[name].astype(str)
    model = CatBoostClassifier(
        thread_count=1, verbose=0, random_seed=0, allow_writing_files=False, cat_features=pre.categorical_
    )
    return model.fit(a, y).predict(b, prediction_type="RawFormulaVal")


def lightgbm_raw(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """The project's flat model before its Platt step, on one thread."""
    model = FlatModel(
        preprocessor(CONFIG.min_level_count), {**DEFAULT_PARAMS, "n_jobs": 1, "random_state": 0}, calibration="none"
    )
    return model.fit(train, y)._raw(test)


def platt(inner: np.ndarray, y: np.ndarray, outer: np.ndarray) -> np.ndarray:
    return LogisticRegression(C=1e6, max_iter=1000).fit(inner[:, None], y).predict_proba(outer[:, None])[:, 1]


def main() -> None:
    start = time.time()
    features, y = load_flat_table(CONFIG)
    names = ("catboost + platt", "blend (weight on inner folds) + platt", "lightgbm + platt (the project's)")
    oof = {name: np.empty(len(y)) for name in names}
    aucs: dict[str, list[float]] = {name: [] for name in names}
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(features, y):
        x, yt, xt = features.iloc[train], y[train], features.iloc[test]
        inner = {"cb": np.empty(len(train)), "lgb": np.empty(len(train))}
        for fit, held in StratifiedKFold(3, shuffle=True, random_state=0).split(x, yt):
            inner["cb"][held] = catboost_raw(x.iloc[fit], yt[fit], x.iloc[held])
            inner["lgb"][held] = lightgbm_raw(x.iloc[fit], yt[fit], x.iloc[held])
        grid = np.linspace(0, 1, 11)
        w = grid[np.argmax([roc_auc_score(yt, g * inner["cb"] + (1 - g) * inner["lgb"]) for g in grid])]
        cb, lg = catboost_raw(x, yt, xt), lightgbm_raw(x, yt, xt)
        for name, z_in, z_out in zip(
            names,
            (inner["cb"], w * inner["cb"] + (1 - w) * inner["lgb"], inner["lgb"]),
            (cb, w * cb + (1 - w) * lg, lg),
            strict=True,
        ):
            oof[name][test] = platt(z_in, yt, z_out)
            aucs[name].append(roc_auc_score(y[test], oof[name][test]))
        print(f"fold done, inner-chosen CatBoost weight {w:.1f} ({time.time() - start:.0f} s)")
    for name in names:
        ece = expected_calibration_error(oof[name], y)
        print(f"{name:40s} AUC {np.mean(aucs[name]):.4f} ± {np.std(aucs[name]):.4f}  pooled OOF ECE {ece:.4f}")


if __name__ == "__main__":
    main()
