"""Explanations: TreeSHAP from LightGBM equal shap's, and in score points they add up to the health score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalogue import FEATURES
from features.labels import export_time
from models.explain import FACTORS, explain, factors, top_factors
from models.health import BoostedTrees, trees_of


@pytest.fixture(scope="module")
def scored(trained, tables):
    artifact = trained["result"].artifact
    leads = tables["leads"].sample(300, random_state=5)["lead_id"]
    snapshots = pd.DataFrame({"lead_id": leads, "as_of": export_time(tables)}).reset_index(drop=True)
    features = artifact.pipeline.transform(tables, snapshots)
    return artifact, features


def test_points_add_up_to_the_calibrated_health_score(scored) -> None:
    artifact, features = scored
    explained = explain(artifact.health, features)
    np.testing.assert_allclose(explained.score, 100 * artifact.health.predict(features), atol=1e-9)
    np.testing.assert_allclose(explained.base_score + explained.points.sum(axis=1), explained.score, atol=1e-9)
    # Signs survive the rescaling: a contribution that raises the log-odds raises the score.
    raw, _ = artifact.health.contributions(features)
    assert (np.sign(explained.points.to_numpy()) == np.sign(raw)).all()


def test_lightgbm_contributions_equal_shaps_tree_explainer(scored) -> None:
    """Each LightGBM scorer in the served model (itself or a blend's member) against shap's TreeExplainer; a
    blend's contributions are its members' weighted sum, so they add up to its margin."""
    import shap

    artifact, features = scored
    rows = features[FEATURES].iloc[:60]
    trees = trees_of(artifact.health.scorer_)
    if not trees:  # a linear family won: check a small booster on the same rows (any labels will do for this)
        p = artifact.health.predict(features)
        trees = [BoostedTrees(num_rounds=50).fit(features, (p > np.median(p)).astype(int))]
    for tree in trees:
        ours, _ = tree.contributions(rows)
        theirs = shap.TreeExplainer(tree.booster_).shap_values(rows[tree.columns_])
        np.testing.assert_allclose(ours[:, [FEATURES.index(c) for c in tree.columns_]], theirs, atol=1e-6)
    values, bias = artifact.health.contributions(rows)
    np.testing.assert_allclose(bias + values.sum(axis=1), artifact.health.margin(rows), atol=1e-6)


def test_factors_fold_text_and_page_features_and_keep_the_total(scored) -> None:
    artifact, features = scored
    explained = explain(artifact.health, features)
    folded = factors(explained.points.iloc[0], features.iloc[0])
    assert sum(f["points"] for f in folded) == pytest.approx(explained.points.iloc[0].sum(), abs=0.01 * len(folded))
    assert FACTORS["form_kw_quotation"][0] == FACTORS["form_text_win_p"][0] == "form_text"
    assert FACTORS["notes_win_p"][0] == FACTORS["notes_kw_payment"][0] == "notes_text"
    assert FACTORS["pricing_views_7d"] == FACTORS["pricing_views_30d"] == ("pricing_views", "查看价格页")
    for factor in folded:  # each lists the features that moved it, all of which fold into it
        assert factor["features"] and all(FACTORS[name][0] == factor["factor"] for name in factor["features"])
    assert len({f["factor"] for f in folded}) == len({key for key, _ in FACTORS.values()}) < len(FEATURES)
    ordered = [abs(f["points"]) for f in folded]
    assert ordered == sorted(ordered, reverse=True)


def test_sentences_read_the_leads_own_values(scored) -> None:
    artifact, features = scored
    explained = explain(artifact.health, features)
    row = features.iloc[1].copy()
    folded = factors(explained.points.iloc[1], row)
    channel = next(f for f in folded if f["factor"] == "channel")
    assert channel["sentence"].startswith(f"来源渠道:{row['channel']}，")
    assert channel["sentence"].endswith(f"{channel['points']:+.1f}分")
    top = top_factors(folded, n=2)
    assert len(top["positive"]) <= 2 and all(f["points"] > 0 for f in top["positive"])
    assert all(f["points"] < 0 for f in top["negative"])
