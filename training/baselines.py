"""What a customer already has, fitted on the same training snapshots as the health model.

- rule formula: the seeds' hand score (industry potential + purchase activity + budget match, 0-100),
  mapped to the four tiers a sales team would use; ranked by tier, as a team would work it.
- naive Bayes: Odoo-style frequency tables of won / not won per field value, combined under
  independence (models/health.py `NaiveBayesScorer`, sklearn's CategoricalNB on the fields Odoo reads).
- logistic regression: the fields a CRM export carries as they are (profile, recorded stage, counts of
  visits and follow-ups), imputed, scaled, categories one-hot: what a customer's analyst would fit
  (models/health.py `LinearScorer` on CRM_FIELDS). The same model on all of our features is reported
  beside it, to separate features from LightGBM.
The two learned ones are scorers of the health model's families, so model selection (training/selection.py)
judges them as candidates and serves one if it wins.
Each is an sklearn-style object with `fit(features, y)` and `predict_proba(features) -> P(won)`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from models.health import LinearScorer, NaiveBayesScorer

RULE_TIERS = (60.0, 35.0, 15.0)  # the seeds' tier cut points on the 0-100 rule score


class RuleFormula:
    """Industry potential (40: the industry's win rate in training), purchase activity (35: pricing and
    decision pages, visits and follow-ups in 30 days) and budget match (25: budget at or above the
    industry's median among wins), then four tiers."""

    def fit(self, features: pd.DataFrame, y: np.ndarray) -> RuleFormula:
        industry = features["industry"].astype(object).fillna("∅")
        rates = pd.Series(y, index=features.index).groupby(industry).mean()
        self.industry_potential_ = (rates - rates.min()) / max(rates.max() - rates.min(), 1e-9)
        won_budgets = features.loc[np.asarray(y) == 1, "budget_cny"].groupby(industry[np.asarray(y) == 1]).median()
        self.typical_budget_ = won_budgets
        return self

    def score(self, features: pd.DataFrame) -> np.ndarray:
        industry = features["industry"].astype(object).fillna("∅")
        potential = industry.map(self.industry_potential_).fillna(0.5).to_numpy(float)
        pages = features["pricing_views_30d"].fillna(0).to_numpy(float)
        visits = features["web_events_30d"].fillna(0).to_numpy(float)
        touches = features["activities_30d"].fillna(0).to_numpy(float)
        activity = np.clip((np.minimum(pages, 3) + np.minimum(visits, 5) / 2 + np.minimum(touches, 4) / 2) / 7.5, 0, 1)
        typical = industry.map(self.typical_budget_).to_numpy(float)
        budget = features["budget_cny"].to_numpy(float)
        match = np.where(np.isnan(budget), 0.0, np.where(np.isnan(typical) | (budget >= typical), 1.0, 0.5))
        return 40 * potential + 35 * activity + 25 * match

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """The tier as an ordinal score in [0, 1] (3 = 战略级 ... 0 = 暂缓): all a tier list can rank by."""
        score = self.score(features)
        return np.select([score >= RULE_TIERS[0], score >= RULE_TIERS[1], score >= RULE_TIERS[2]], [1.0, 2 / 3, 1 / 3])


# The CRM's own fields, before any of our feature engineering.
CRM_FIELDS = [
    "days_since_created", "company_size", "budget_cny", "has_email", "has_phone", "has_company_name",
    "channel", "industry", "customer_type", "province", "recorded_stage", "days_in_recorded_stage",
    "web_events_total", "web_events_30d", "activities_30d", "days_since_last_activity", "form_text_chars",
]  # fmt: skip


class ScorerBaseline:
    """A scorer of models/health.py as a baseline (so a baseline that wins model selection can be served as
    it was judged): its probability is the sigmoid of its log-odds."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer

    def fit(self, features: pd.DataFrame, y: np.ndarray) -> ScorerBaseline:
        self.scorer_ = clone(self.scorer).fit(features, y)
        return self

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.scorer_.margin(features)))


class OdooScoring:
    """Odoo's own predictive lead scoring (training/odoo_pls.py), computed exactly as Odoo's crm module does:
    frequency tables of the leads closed before the cutoff, scoring each snapshot's fields as of its time. It
    reads the contract's tables, not the features, so it is fitted and scored with them."""

    def fit(self, tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> OdooScoring:
        from training.odoo_pls import fit_pls

        self.tables_, self.model_ = tables, fit_pls(tables, cutoff)
        return self

    def predict_snapshots(self, snapshots: pd.DataFrame) -> np.ndarray:
        from training.odoo_pls import score_snapshots

        return np.asarray(score_snapshots(self.model_, self.tables_, snapshots), dtype=float)


ODOO = "Odoo预测评分 Odoo's predictive lead scoring"
BASELINES = {
    "规则公式 rule formula": RuleFormula,
    "朴素贝叶斯 naive Bayes (Odoo)": lambda: ScorerBaseline(NaiveBayesScorer()),
    "逻辑回归 logistic regression": lambda: ScorerBaseline(LinearScorer(columns=CRM_FIELDS)),
}
# Not a customer's baseline: our features in a linear model, to show what LightGBM adds.
ABLATIONS = {"逻辑回归+全部特征 logistic, all features": lambda: ScorerBaseline(LinearScorer())}


# Every baseline a customer already has: the three above and Odoo's built-in scoring.
CUSTOMER_BASELINES = (*BASELINES, ODOO)


def fit_baselines(features: pd.DataFrame, y: np.ndarray, ablations: bool = True) -> dict[str, object]:
    makers = {**BASELINES, **(ABLATIONS if ablations else {})}
    return {name: make().fit(features, y) for name, make in makers.items()}
