"""Single-feature screens: how well each feature alone ranks the label. A feature far stronger than the
rest is the first suspect for leakage (a field filled in after the outcome)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold


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


# --- leakage audit -------------------------------------------------------------------------------------------


def _is_categorical(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    )


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    if y.size == 0 or np.unique(y).size < 2 or np.unique(score).size < 2:
        return 0.5
    return float(roc_auc_score(y, score))


def _oof_target_rate(keys: np.ndarray, y: np.ndarray, fold: np.ndarray, folds: int, smoothing: float) -> np.ndarray:
    """Each row scored by its level's positive rate fitted on the OTHER folds (shrunk towards the prior), so a
    column with many rare levels cannot look strong just by memorising them."""
    codes, _ = pd.factorize(keys, use_na_sentinel=False)
    n_levels = int(codes.max()) + 1 if codes.size else 0
    pos = np.zeros((folds, n_levels))
    cnt = np.zeros((folds, n_levels))
    np.add.at(pos, (fold, codes), y)
    np.add.at(cnt, (fold, codes), 1)
    score = np.empty(len(y))
    for k in range(folds):
        rows = fold == k
        other_pos, other_cnt = pos.sum(0) - pos[k], cnt.sum(0) - cnt[k]
        prior = other_pos.sum() / max(other_cnt.sum(), 1)
        rate = (other_pos + smoothing * prior) / (other_cnt + smoothing)
        score[rows] = rate[codes[rows]]
    return score


def _strengths(column: pd.Series, y: np.ndarray, fold: np.ndarray, folds: int, smoothing: float) -> tuple[float, float]:
    """(AUC over all rows, AUC over the rows where the feature is filled in)."""
    present = column.notna().to_numpy()
    if _is_categorical(column):
        keys = column.astype(object).where(column.notna(), "\x00missing").to_numpy()
        auc_all = _auc(y, _oof_target_rate(keys, y, fold, folds, smoothing))
        auc_present = _auc(y[present], _oof_target_rate(keys[present], y[present], fold[present], folds, smoothing))
        return auc_all, auc_present
    values = column.to_numpy(float)
    if present.all():
        auc = _auc(y, values)
        return auc, auc
    if not present.any():
        return 0.5, 0.5
    # Missing placed below and above every value; keep the ordering that ranks the label more strongly.
    low = np.where(present, values, np.nanmin(values) - 1)
    high = np.where(present, values, np.nanmax(values) + 1)
    auc_all = max(_auc(y, low), _auc(y, high), key=lambda a: abs(a - 0.5))
    return auc_all, _auc(y[present], values[present])


def leakage_audit(
    features: pd.DataFrame,
    y: np.ndarray,
    *,
    threshold: float = 0.90,
    gap: float = 0.05,
    relative_floor: float = 0.75,
    top: int = 5,
    full_auc: float | None = None,
    near_full: float = 0.02,
    min_coverage: float = 0.05,
    folds: int = 5,
    smoothing: float = 10.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Flag features that alone rank the label suspiciously well: the usual sign of a field filled in after
    the outcome. One row per feature, strongest first: feature, auc, strength (= max(AUC, 1 - AUC)), coverage
    (share filled in), present_strength (strength on the filled-in rows only), flagged, reason.

    Categorical columns are scored out-of-fold (level positive rates fitted on the other folds), so many-level
    columns are not flagged for memorising rare levels. A feature is flagged when any of these holds:
    - absolute: strength >= `threshold`, or present_strength >= `threshold` with coverage >= `min_coverage`
      (a field filled in only for some leads, decisive where it is);
    - relative: among the `top` strongest, it sits above a drop of >= `gap` in strength to the next feature
      and its strength is >= `relative_floor` (it stands out from everything else);
    - near the full model: strength >= `full_auc` - `near_full` (when the full model's AUC is given).
    These are screening heuristics: a flag asks a person to check when the field is filled in."""
    y = np.asarray(y).astype(int)
    if len(y) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(y)} labels")
    if np.unique(y).size < 2:
        raise ValueError("the label has a single class: AUC is undefined")
    fold = np.empty(len(y), dtype=int)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        fold[test] = k
    rows = []
    for name in features.columns:
        column = features[name]
        auc_all, auc_present = _strengths(column, y, fold, folds, smoothing)
        rows.append(
            {
                "feature": name,
                "auc": auc_all,
                "strength": max(auc_all, 1 - auc_all),
                "coverage": float(column.notna().mean()),
                "present_strength": max(auc_present, 1 - auc_present),
            }
        )
    table = pd.DataFrame(rows).sort_values("strength", ascending=False, ignore_index=True)
    reasons: list[list[str]] = [[] for _ in range(len(table))]
    strength = table["strength"].to_numpy()
    for i, row in table.iterrows():
        if row["strength"] >= threshold:
            reasons[i].append(f"alone ranks the label with AUC {row['strength']:.3f}")
        elif row["coverage"] >= min_coverage and row["coverage"] < 1 and row["present_strength"] >= threshold:
            reasons[i].append(
                f"where filled in ({row['coverage']:.0%} of rows) it ranks the label with AUC "
                f"{row['present_strength']:.3f}"
            )
        if full_auc is not None and row["strength"] >= full_auc - near_full:
            reasons[i].append(f"alone nearly matches the full model (AUC {row['strength']:.3f} vs {full_auc:.3f})")
    # Relative rule: the lowest large drop among the top features; everything above it stands out.
    cut = -1
    for i in range(min(top, len(table) - 1)):
        if strength[i] - strength[i + 1] >= gap:
            cut = i
    for i in range(cut + 1):
        if strength[i] >= relative_floor:
            reasons[i].append(
                f"stands out: AUC {strength[i]:.3f} against {strength[cut + 1]:.3f} for the strongest feature "
                "below the gap"
            )
    table["flagged"] = [bool(r) for r in reasons]
    table["reason"] = [
        "; ".join(r) + ": filled in after the outcome?" if r else f"alone ranks the label with AUC {s:.3f}: no flag"
        for r, s in zip(reasons, strength, strict=True)
    ]
    return table
