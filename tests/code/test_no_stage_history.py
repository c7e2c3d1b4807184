"""An export without any stage history (Maven, Olist, Zoho) still trains: the stage model, with no confirmed
label to learn from, repeats the recorded stage and flags no mismatch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.pipeline import SnapshotTexts
from leadscore.models.stage import OPEN_STAGES, StageModel


def test_the_stage_model_without_labels_answers_the_recorded_stage() -> None:
    features = pd.DataFrame({"recorded_stage": pd.Categorical(["报价", None, "丢单"]), "x": [1.0, 2.0, 3.0]})
    texts = SnapshotTexts(pd.Series(["", "", ""]), pd.Series(["", "", ""]))
    model = StageModel().fit(features, texts, pd.Series([None, None, None], dtype=object))
    answer = model.predict(features, texts)
    assert answer["inferred_stage"].tolist() == ["报价", OPEN_STAGES[0], OPEN_STAGES[0]]
    assert not answer["mismatch"].any()
    assert np.allclose(model.predict_proba(features, texts).sum(axis=1), 1.0)
