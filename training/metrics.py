"""Evaluation numbers for `leadscore evaluate`: pure functions of labels and scores (no plotting, no I/O).

Every function tolerates degenerate inputs (one class, empty slices) by answering NaN rather than raising,
because an evaluation report on a small or odd export should still render and say "undefined".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

SMALL_SLICE = "其他(小样本)"
MISSING = "缺失"


def _arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, dtype=float).ravel(), np.asarray(p, dtype=float).ravel()
    if len(y) != len(p):
        raise ValueError(f"labels ({len(y)}) and scores ({len(p)}) differ in length")
    return y, p


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| over equal-width probability bins, weighted by the bins' sizes."""
    edges = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    frame = (
        pd.DataFrame({"bin": edges, "p": p, "y": y})
        .groupby("bin")
        .agg(p=("p", "mean"), y=("y", "mean"), n=("y", "size"))
    )
    return float((frame["n"] * (frame["p"] - frame["y"]).abs()).sum() / len(p))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def _top_rate(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Positive rate among the ceil(share * n) highest scores (stable order, so ties keep input order)."""
    k = max(1, math.ceil(share * len(y)))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean())


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, Brier, ECE, mean prediction, positive rate, lift of the top 10% and n.
    AUC and PR-AUC are NaN when only one class occurs; lift is NaN when there is no positive."""
    y, p = _arrays(y, p)
    n = len(y)
    if n == 0:
        keys = ("auc", "pr_auc", "brier", "ece", "mean_prediction", "positive_rate", "lift_top10")
        return {**dict.fromkeys(keys, float("nan")), "n": 0}
    rate = float(y.mean())
    return {
        "auc": _auc(y, p),
        "pr_auc": float(average_precision_score(y, p)) if y.sum() > 0 else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": float(expected_calibration_error(p, y)),
        "mean_prediction": float(p.mean()),
        "positive_rate": rate,
        "lift_top10": _top_rate(y, p, 0.1) / rate if rate > 0 else float("nan"),
        "n": int(n),
    }


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-width probability bins (the same bins as ECE): bin index, its edges, mean predicted, observed
    rate and size. Empty bins are left out, so every row is backed by data."""
    y, p = _arrays(y, p)
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    table = (
        pd.DataFrame({"bin": index, "p": p, "y": y})
        .groupby("bin")
        .agg(mean_predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
        .reset_index()
    )
    table["lower"], table["upper"] = table["bin"] / bins, (table["bin"] + 1) / bins
    return table[["bin", "mean_predicted", "observed", "n", "lower", "upper"]]


def gain_table(y: np.ndarray, p: np.ndarray, points: int = 20) -> pd.DataFrame:
    """Cumulative gain: contacting the top `share_contacted` of leads by score finds `share_of_wins_found` of
    all wins; `lift` is that over random contact (share found / share contacted)."""
    y, p = _arrays(y, p)
    order = y[np.argsort(-p, kind="stable")]
    found = np.cumsum(order)
    total = found[-1] if len(found) else 0.0
    shares = np.arange(1, points + 1) / points
    rows = []
    for share in shares:
        k = max(1, math.ceil(share * len(y))) if len(y) else 0
        got = float(found[k - 1] / total) if total > 0 else float("nan")
        rows.append({"share_contacted": float(share), "share_of_wins_found": got, "lift": got / share})
    return pd.DataFrame(rows, columns=["share_contacted", "share_of_wins_found", "lift"])


def slice_metrics(y: np.ndarray, p: np.ndarray, slices: pd.DataFrame, min_rows: int = 50) -> pd.DataFrame:
    """Metrics per value of each column of `slices` (rows aligned by position with y and p). Values with fewer
    than `min_rows` rows are pooled into one "其他(小样本)" group per column: small groups give noisy AUCs
    that would mislead more than inform. Missing values form their own group "缺失"."""
    y, p = _arrays(y, p)
    if len(slices) != len(y):
        raise ValueError(f"slices has {len(slices)} rows, labels {len(y)}")
    rows = []
    for column in slices.columns:
        values = pd.Series(slices[column].to_numpy(object)).astype(object)
        values = values.where(values.notna(), MISSING).astype(str)
        counts = values.value_counts()
        small = counts.index[counts < min_rows]
        values = values.where(~values.isin(small), SMALL_SLICE).to_numpy()
        for value in pd.unique(values):
            mask = values == value
            ys, ps = y[mask], p[mask]
            rows.append(
                {
                    "slice": str(column),
                    "value": value,
                    "n": int(mask.sum()),
                    "positive_rate": float(ys.mean()),
                    "auc": _auc(ys, ps),
                    "ece": float(expected_calibration_error(ps, ys)),
                    "mean_prediction": float(ps.mean()),
                }
            )
    table = pd.DataFrame(rows, columns=["slice", "value", "n", "positive_rate", "auc", "ece", "mean_prediction"])
    # Columns in the given order; within one, largest groups first and the pooled small group last.
    table["_col"] = pd.Categorical(table["slice"], categories=[str(c) for c in slices.columns], ordered=True)
    table["_pooled"] = table["value"] == SMALL_SLICE
    table = table.sort_values(["_col", "_pooled", "n"], ascending=[True, True, False], kind="stable")
    return table.drop(columns=["_col", "_pooled"]).reset_index(drop=True)


def compare_models(y: np.ndarray, scores: dict[str, np.ndarray], model: str | None = None) -> pd.DataFrame:
    """One row per scorer with `binary_metrics`. If `model` names one of them, the others count as baselines
    and that row gets `auc_gap_to_best_baseline` = its AUC minus the best baseline AUC (NaN elsewhere)."""
    if model is not None and model not in scores:
        raise KeyError(f"model {model!r} not among the scores {list(scores)}")
    table = pd.DataFrame([{"model": name, **binary_metrics(y, s)} for name, s in scores.items()])
    table["auc_gap_to_best_baseline"] = float("nan")
    if model is not None:
        baselines = table.loc[table["model"] != model, "auc"].dropna()
        if len(baselines):
            own = table.loc[table["model"] == model, "auc"].iloc[0]
            table.loc[table["model"] == model, "auc_gap_to_best_baseline"] = own - baselines.max()
    return table


def oracle_share(model_auc: float, oracle_auc: float) -> float:
    """How much of the oracle's lift over chance the model recovers: (model - 0.5) / (oracle - 0.5).
    NaN when the oracle is no better than chance (the ratio means nothing then)."""
    if not np.isfinite(model_auc) or not np.isfinite(oracle_auc) or oracle_auc <= 0.5:
        return float("nan")
    return float((model_auc - 0.5) / (oracle_auc - 0.5))
