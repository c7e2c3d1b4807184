"""Single-feature screen: how well each feature alone ranks the label. A feature far stronger than the
rest is the first suspect for leakage (a field filled in after the outcome)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def single_feature_auc(features: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """AUC of each feature alone (missing ranked lowest; categories by their positive rate on the same
    rows, so the figure is an upper bound for them). `strength` = max(AUC, 1 - AUC); `direction` says
    whether larger values mean more wins."""
    y = np.asarray(y).astype(int)
    rows = []
    for name in features.columns:
        column = features[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column):
            keys = column.astype(object).where(column.notna(), "∅")
            score = keys.map(pd.Series(y, index=features.index).groupby(keys).mean()).to_numpy(float)
        else:
            values = column.to_numpy(float)
            score = np.where(np.isnan(values), np.nanmin(values) - 1 if np.isfinite(values).any() else 0, values)
        auc = roc_auc_score(y, score) if np.unique(score).size > 1 else 0.5
        rows.append(
            {
                "feature": name,
                "auc": auc,
                "strength": max(auc, 1 - auc),
                "direction": "+" if auc >= 0.5 else "-",
                "missing": float(column.isna().mean()),
            }
        )
    return pd.DataFrame(rows).sort_values("strength", ascending=False, ignore_index=True)
