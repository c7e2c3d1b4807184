"""Model selection for the health model: candidates of every family, the customer's own baselines among them,
judged on time-split folds *inside* the training rows; the best is the one served (models/health.py).

The folds are blocks of time: the matured training rows are cut into `n_folds` consecutive periods of as_of;
each period in turn is judged, by candidates fitted on the other periods' rows of other leads (no lead is on
both sides). Folds that only roll forward (fit before t, judge after t) must also leave out the 90 days
before t, whose labels t does not know yet; on a one-year export that left the first folds a third of the
history, and the candidates that win on a third of the data are the simplest ones, not the ones that win
on all of it (measured: docs/models.md, model selection). The served model is then judged where it matters,
strictly forward, on the evaluation pass's holdout, which nothing here sees.
The candidates are judged by AUC, averaged over the folds; a blend of the best LightGBM and the logistic
regression is judged from their fold margins (its weight is chosen there too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import roc_auc_score

from models.health import BlendScorer, BoostedTrees, LinearScorer, NaiveBayesScorer, describe
from training.baselines import CRM_FIELDS, RuleFormula

REGULARISED = {"num_leaves": 7, "min_child_samples": 300, "lambda_l2": 10.0, "feature_fraction": 0.6}
LIGHTGBM, LOGISTIC, RULE = "lightgbm", "logistic_all", "rule_formula"
BLEND_WEIGHTS = (0.25, 0.5, 0.75)  # of the best LightGBM; the rest is the logistic regression's
LABELS = {
    LIGHTGBM: "LightGBM",
    "lightgbm_regularised": "LightGBM 强正则 regularised",
    "lightgbm_top40": "LightGBM 前40个重要特征 40 most important features",
    LOGISTIC: "逻辑回归+全部特征 logistic, all features",
    "logistic_crm": "逻辑回归 CRM字段 logistic on CRM fields (customer baseline)",
    "naive_bayes": "朴素贝叶斯 naive Bayes, Odoo-style (customer baseline)",
    RULE: "规则公式 rule formula (customer baseline; tiers only, never served)",
} | {f"blend_{w:.2f}": f"融合 blend {w:.2f} × best LightGBM + {1 - w:.2f} × logistic" for w in BLEND_WEIGHTS}
# The customer's own baselines among the candidates (training/baselines.py judges the same models).
BASELINE_CANDIDATES = ("logistic_crm", "naive_bayes", RULE)


def candidates() -> dict[str, BaseEstimator]:
    """Every servable candidate by key (the baselines a customer already has are among them)."""
    return {
        LIGHTGBM: BoostedTrees(),
        "lightgbm_regularised": BoostedTrees(params=REGULARISED, num_rounds=300),
        "lightgbm_top40": BoostedTrees(n_features=40),
        LOGISTIC: LinearScorer(),
        "logistic_crm": LinearScorer(columns=CRM_FIELDS),
        "naive_bayes": NaiveBayesScorer(),
    }


@dataclass
class Selection:
    """The candidates' fold AUCs and the one chosen."""

    chosen: str
    scorer: BaseEstimator
    fold_auc: dict[str, list[float]] = field(default_factory=dict)
    fold_rows: list[int] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        rows = [
            {"candidate": LABELS[name], "key": name, "mean_auc": self.mean(name),
             "worst_fold_auc": float(np.nanmin(aucs)), "chosen": name == self.chosen}
            for name, aucs in self.fold_auc.items()
        ]  # fmt: skip
        columns = ["candidate", "key", "mean_auc", "worst_fold_auc", "chosen"]
        return pd.DataFrame(rows, columns=columns).sort_values("mean_auc", ascending=False, ignore_index=True)

    def mean(self, name: str) -> float:
        return float(np.nanmean(self.fold_auc[name])) if self.fold_auc.get(name) else float("nan")

    def card(self) -> dict[str, Any]:
        """What the report and /metadata say of the choice: the family, by how much it won, and how LightGBM
        alone fared against the customer's best baseline (a publish gate compares exactly that)."""
        if not self.fold_auc:
            return {
                "family": describe(self.scorer),
                "chosen": self.chosen,
                "note": "too few rows to compare candidates: LightGBM served",
            }
        baselines = [b for b in BASELINE_CANDIDATES if b in self.fold_auc]
        best_baseline = max(baselines, key=self.mean)
        runner_up = max((n for n in self.fold_auc if n != self.chosen), key=self.mean)
        lightgbm_gap = self.mean(LIGHTGBM) - self.mean(best_baseline)
        if lightgbm_gap > 0:
            note = f"LightGBM alone beat the best baseline ({LABELS[best_baseline]}) by {lightgbm_gap:+.3f} fold AUC"
        else:
            note = (f"LightGBM alone reached {self.mean(LIGHTGBM):.3f} fold AUC, {lightgbm_gap:+.3f} against the best "
                    f"baseline ({LABELS[best_baseline]}): a gate comparing the two would have refused it")  # fmt: skip
        return {
            "family": describe(self.scorer),
            "chosen": self.chosen,
            "fold_auc": round(self.mean(self.chosen), 4),
            "runner_up": runner_up,
            "margin_over_runner_up": round(self.mean(self.chosen) - self.mean(runner_up), 4),
            "best_baseline": best_baseline,
            "margin_over_best_baseline": round(self.mean(self.chosen) - self.mean(best_baseline), 4),
            "lightgbm_fold_auc": round(self.mean(LIGHTGBM), 4),
            "note": note,
            "candidates": {name: round(self.mean(name), 4) for name in self.fold_auc},
            "folds": len(self.fold_rows),
            "fold_rows": self.fold_rows,
        }


def time_folds(
    as_of: pd.Series, matured: np.ndarray, groups: np.ndarray, n_folds: int = 4
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, judged rows) per block of time: the judged rows are the matured rows of one of `n_folds`
    consecutive periods of equal size; the fit rows are the matured rows of the other periods whose lead has
    no judged row."""
    times = pd.to_datetime(as_of).reset_index(drop=True)
    groups = np.asarray(groups)
    edges = times[matured].quantile(np.linspace(0.0, 1.0, n_folds + 1)).to_numpy()
    folds = []
    for k, (start, end) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        # The outer edges are open: a quantile of times is rounded and would leave the first or last row out.
        inside = ((times >= start) | (k == 0)) & ((times < end) | (k == n_folds - 1))
        judged = matured & inside.to_numpy()
        fit = matured & ~judged & ~np.isin(groups, groups[judged])
        folds.append((fit, judged))
    return folds


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def select_health_model(
    features: pd.DataFrame, y: np.ndarray, as_of: pd.Series, matured: np.ndarray, groups: np.ndarray, n_folds: int = 4
) -> Selection:
    """The best candidate by mean fold AUC (see the module's docstring). Folds too small to judge (no win or
    no loss in them) are left out; with none left, the default LightGBM is served."""
    y = np.asarray(y, int)
    features = features.reset_index(drop=True)
    folds = [(f, j) for f, j in time_folds(as_of, np.asarray(matured, bool), groups, n_folds)
             if 0 < y[f].sum() < f.sum() and 0 < y[j].sum() < j.sum()]  # fmt: skip
    if not folds:
        return Selection(LIGHTGBM, BoostedTrees())
    specs = candidates()
    fold_auc: dict[str, list[float]] = {name: [] for name in specs} | {RULE: []}
    margins: dict[str, list[np.ndarray]] = {name: [] for name in specs}
    for fit, judged in folds:
        x_fit, y_fit, x_judged = features[fit], y[fit], features[judged]
        for name, spec in specs.items():
            margin = clone(spec).fit(x_fit, y_fit).margin(x_judged)
            margins[name].append(margin)
            fold_auc[name].append(_auc(y[judged], margin))
        fold_auc[RULE].append(_auc(y[judged], RuleFormula().fit(x_fit, y_fit).score(x_judged)))
    boosted = [name for name, spec in specs.items() if isinstance(spec, BoostedTrees)]
    best_boosted = max(boosted, key=lambda name: np.mean(fold_auc[name]))
    for weight in BLEND_WEIGHTS:
        name = f"blend_{weight:.2f}"
        fold_auc[name] = [
            _auc(y[judged], weight * b + (1 - weight) * lin)
            for (_, judged), b, lin in zip(folds, margins[best_boosted], margins[LOGISTIC], strict=True)
        ]
        specs[name] = BlendScorer(members=(specs[best_boosted], specs[LOGISTIC]), weights=(weight, 1 - weight))
    servable = [name for name in fold_auc if name != RULE]
    chosen = max(servable, key=lambda name: (np.nanmean(fold_auc[name]), -len(describe(specs[name]))))
    return Selection(chosen, specs[chosen], fold_auc, [int(j.sum()) for _, j in folds])


def judge_candidates(
    x_fit: pd.DataFrame, y_fit: np.ndarray, x_judged: pd.DataFrame, y_judged: np.ndarray
) -> pd.DataFrame:
    """Every candidate fitted on one period and its AUC on a later one: what `leadscore evaluate` shows per
    candidate on an export the served model never saw."""
    rows = []
    for name, spec in candidates().items():
        margin = clone(spec).fit(x_fit, y_fit).margin(x_judged)
        rows.append({"candidate": LABELS[name], "key": name, "auc": _auc(np.asarray(y_judged, int), margin)})
    rule = RuleFormula().fit(x_fit, y_fit).score(x_judged)
    rows.append({"candidate": LABELS[RULE], "key": RULE, "auc": _auc(np.asarray(y_judged, int), rule)})
    return pd.DataFrame(rows).sort_values("auc", ascending=False, ignore_index=True)
