"""One code path: the online request and the batch export give identical features for the same lead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import CATALOGUE, FEATURES, GROUPS
from features.contract import request_to_tables
from features.labels import export_time
from leadscore.tools.demo import lead_request


def test_online_request_and_batch_export_give_identical_features(tables, fitted_pipeline) -> None:
    as_of = export_time(tables) - pd.Timedelta(days=30)
    outcomes = tables["outcomes"].set_index("lead_id")
    open_then = tables["leads"][
        (tables["leads"]["created_at"] < as_of)
        & ~(tables["leads"]["lead_id"].map(outcomes["closed_at"]) <= as_of).fillna(False)
    ]
    lead_ids = open_then.sample(25, random_state=3)["lead_id"].tolist()
    snapshots = pd.DataFrame({"lead_id": lead_ids, "as_of": as_of})
    batch = fitted_pipeline.transform(tables, snapshots, details=True)

    request = lead_request(tables, lead_ids, as_of, personal=True)
    request_as_of, result = request_to_tables(request)
    assert request_as_of == as_of and not result.errors
    online = fitted_pipeline.transform(result.tables, snapshots, details=True)
    # Duplicate screening sees the whole export in batch but only the request online (documented).
    compare = [f for f in FEATURES if f != "screen_duplicate"]
    pd.testing.assert_frame_equal(batch[compare], online[compare])
    assert batch["recorded_stage"].notna().any() and (batch["activities_total"] > 0).any()


def test_every_feature_is_in_the_catalogue_with_a_group_and_a_sentence(fitted_pipeline, tables) -> None:
    snaps = pd.DataFrame({"lead_id": tables["leads"]["lead_id"][:50], "as_of": export_time(tables)})
    features = fitted_pipeline.transform(tables, snaps)
    assert list(features.columns) == FEATURES
    for name, spec in CATALOGUE.items():
        assert spec.group in GROUPS, name
        sentence = spec.describe(features[name].iloc[0] if not spec.categorical else "医疗器械")
        assert "{" not in sentence and len(sentence) > 2, name
    assert {spec.group for spec in CATALOGUE.values()} == set(GROUPS)
    numeric = features.drop(columns=[n for n, s in CATALOGUE.items() if s.categorical])
    assert np.isfinite(numeric.fillna(0).to_numpy()).all()


def test_warm_up_loads_the_tokenizers_before_any_request(fitted_pipeline) -> None:
    import pickle

    fresh = pickle.loads(pickle.dumps(fitted_pipeline))
    tokenizers = [m.model_.words.tokenizer for m in fresh.text_models_.values()]
    assert all(t._tokenizer is None for t in tokenizers)
    fresh.warm_up()
    assert all(t._tokenizer is not None for t in tokenizers)
