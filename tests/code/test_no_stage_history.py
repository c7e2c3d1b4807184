"""An export without any stage history (Maven, Olist, Zoho) still trains: the stage model, with no confirmed
label to learn from, repeats the recorded stage and flags no mismatch; a text model with nothing to learn is
left out and its feature is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import TEXT_NOTES
from models.stage import OPEN_STAGES, StageModel


def test_the_stage_model_without_labels_answers_the_recorded_stage() -> None:
    features = pd.DataFrame(
        {"recorded_stage": pd.Categorical(["报价", None, "丢单"]), "x": [1.0, 2.0, 3.0], TEXT_NOTES: ["", "", ""]}
    )
    model = StageModel().fit(features, pd.Series([None, None, None], dtype=object))
    answer = model.predict(features)
    assert answer["inferred_stage"].tolist() == ["报价", OPEN_STAGES[0], OPEN_STAGES[0]]
    assert not answer["mismatch"].any()
    assert np.allclose(model.predict_proba(features).sum(axis=1), 1.0)
    assert model.warm_up() is model
