"""The artifact as an MLflow pyfunc, so `mlflow models serve` works on what the registry holds: a thin wrapper
(MLflow's `PythonModel.load_context`) that reads one row per lead and answers with the headline fields."""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.contract import EVENT_TABLES, ContractError
from models.artifact import LeadArtifact, flat_answer


class LeadPyfunc(mlflow.pyfunc.PythonModel):
    """One row per lead: contract fields, `as_of`, event lists as JSON strings."""

    def load_context(self, context) -> None:
        self.artifact = LeadArtifact.load(context.artifacts["leadscore"])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frames = []
        for as_of, rows in model_input.groupby(
            model_input.get("as_of", pd.Series("", index=model_input.index)).fillna("")
        ):
            leads = [_row_to_lead(r) for r in rows.drop(columns="as_of", errors="ignore").to_dict(orient="records")]
            answer = self.artifact.score_request({"as_of": as_of or None, "leads": leads})
            frames.append(pd.DataFrame([flat_answer(result) for result in answer.results]))
            if answer.errors:
                raise ContractError(json.dumps([e.model_dump() for e in answer.errors], ensure_ascii=False))
        return pd.concat(frames, ignore_index=True)


def _row_to_lead(row: dict[str, Any]) -> dict[str, Any]:
    lead = {k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
    for name in EVENT_TABLES:
        if isinstance(lead.get(name), str):
            lead[name] = json.loads(lead[name])
    return lead
