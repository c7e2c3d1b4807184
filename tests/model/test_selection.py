"""Model selection for the health model: every family explains exactly, the folds never fit on a label the
judged period decides, and the candidate that suits the data's story wins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalogue import CATEGORICAL, FEATURES
from models.explain import explain
from models.health import BlendScorer, BoostedTrees, HealthModel, LinearScorer, NaiveBayesScorer
from training.gate import publish_gate
from training.selection import LIGHTGBM, LOGISTIC, select_health_model, time_folds

N = 4000


def world(story: str, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """Catalogue-shaped rows whose label follows one story: `linear` (a sum of many small effects, what a
    logistic regression fits) or `threshold` (one interaction of two cut-offs, what trees fit)."""
    rng = np.random.default_rng(seed)
    numeric = [n for n in FEATURES if n not in CATEGORICAL]
    shown = set(numeric[:: len(numeric) // 24])  # two dozen columns carry values, the rest are missing: fast
    shown |= {"web_events_30d", "activities_30d", "budget_cny"}
    x = pd.DataFrame({name: rng.normal(size=N) if name in shown else np.full(N, np.nan) for name in numeric})
    for name in CATEGORICAL:
        x[name] = pd.Categorical(rng.choice(["a", "b", "c"], N))
    x["budget_cny"] = np.where(rng.random(N) < 0.3, np.nan, x["budget_cny"])
    if story == "linear":
        weights = rng.normal(0, 0.5, len(numeric))
        logit = x[numeric].fillna(0).to_numpy() @ weights - 1.0
    else:
        logit = np.where((x["web_events_30d"] > 0.3) & (x["activities_30d"] < -0.2), 2.5, -2.0)
    y = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(int)
    as_of = pd.Series(pd.Timestamp("2026-01-01", tz="Asia/Shanghai") + pd.to_timedelta(rng.uniform(0, 400, N), "D"))
    return x[FEATURES], y, as_of


def test_folds_are_blocks_of_time_and_no_lead_is_on_both_sides() -> None:
    _, _, as_of = world("linear")
    leads = np.argsort(np.argsort(as_of.to_numpy())) // 4  # four consecutive snapshots per lead, as in an export
    matured = np.random.default_rng(4).random(N) < 0.9
    folds = time_folds(as_of, matured, leads, n_folds=4)
    judged_all = np.zeros(N, dtype=bool)
    for fit, judged in folds:
        assert not (judged_all & judged).any(), "each matured row is judged once"
        judged_all |= judged
        assert matured[judged].all() and matured[fit].all()
        assert not set(leads[fit]) & set(leads[judged])
        inside = (as_of >= as_of[judged].min()) & (as_of <= as_of[judged].max())
        assert not (fit & inside.to_numpy()).any(), "the judged period is one block of time"
        assert fit.sum() > 0.3 * matured.sum()
    assert (judged_all == matured).all()


@pytest.mark.parametrize(
    "scorer",
    [BoostedTrees(num_rounds=60), BoostedTrees(num_rounds=60, n_features=20), LinearScorer(), NaiveBayesScorer(),
     BlendScorer(members=(BoostedTrees(num_rounds=60), LinearScorer()), weights=(0.3, 0.7))],
    ids=lambda s: type(s).__name__,
)  # fmt: skip
def test_every_family_explains_its_score_exactly(scorer) -> None:
    x, y, _ = world("linear", seed=1)
    model = HealthModel(scorer=scorer, calibration_folds=2).fit(x, y)
    values, bias = model.contributions(x.iloc[:200])
    np.testing.assert_allclose(bias + values.sum(axis=1), model.margin(x.iloc[:200]), atol=1e-6)
    explained = explain(model, x.iloc[:200])
    np.testing.assert_allclose(explained.base_score + explained.points.sum(axis=1), explained.score, atol=1e-6)
    np.testing.assert_allclose(explained.score, 100 * model.predict(x.iloc[:200]), atol=1e-6)


def test_the_candidate_that_suits_the_story_wins() -> None:
    linear = select_health_model(*_rows("linear"))
    threshold = select_health_model(*_rows("threshold"))
    print(linear.table().to_string(), threshold.table().to_string(), sep="\n")
    assert "logistic" in linear.card()["family"], linear.card()
    assert threshold.card()["family"].startswith("lightgbm"), threshold.card()
    assert linear.mean(LOGISTIC) > linear.mean(LIGHTGBM) and threshold.mean(LIGHTGBM) > threshold.mean(LOGISTIC)
    for selection in (linear, threshold):
        assert selection.mean(selection.chosen) == max(
            selection.mean(name) for name in selection.fold_auc if name != "rule_formula"
        )


def _rows(story: str):
    x, y, as_of = world(story)
    return x, y, as_of, np.ones(N, dtype=bool), np.arange(N)


def test_a_first_model_is_published_even_when_a_gate_would_refuse_it() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    good, weak = y + rng.normal(0, 0.5, 500), y + rng.normal(0, 2.0, 500)
    scores = {"candidate": weak, "baseline": good}
    first = publish_gate(y, scores, "candidate", None, {}, pd.DataFrame())
    assert first.promote and first.decision == "promoted (first model)"
    assert any("门槛本会拒绝" in reason for reason in first.reasons), first.reasons
    even = publish_gate(y, {"candidate": good + 1e-9, "baseline": good}, "candidate", None, {}, pd.DataFrame())
    assert not any("未胜过" in reason for reason in even.reasons), "a tie with a baseline is within noise"
