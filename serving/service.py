"""BentoML service: POST /score answers the contract's online request for many leads at once.

The model comes from BentoML's model store (imported from the MLflow registry's champion by
`leadscore train`); which one is set by LEADSCORE_MODEL_TAG (default: the latest import).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import bentoml
from pydantic import Field

from features.contract import ContractError
from leadscore.artifact import LeadArtifact
from leadscore.settings import HEALTH_MODEL_NAME
from leadscore.tiers import TierThresholds


@bentoml.service(traffic={"timeout": 60})
class LeadScoring:
    def __init__(self) -> None:
        tag = os.environ.get("LEADSCORE_MODEL_TAG", f"{HEALTH_MODEL_NAME}:latest")
        self.bento_model = bentoml.models.get(tag)
        artifact: LeadArtifact = bentoml.mlflow.load_model(self.bento_model).unwrap_python_model().artifact
        registry_version = self.bento_model.info.metadata.get("mlflow_version", "?")
        artifact.model_version = f"{HEALTH_MODEL_NAME}/{registry_version} ({self.bento_model.tag.version})"
        artifact.tiers = TierThresholds.from_env()
        artifact.warm_up()  # at start-up, not on the first request
        self.artifact = artifact

    @bentoml.api(route="/score")
    def score(
        self,
        leads: Annotated[list[dict[str, Any]], Field(description="a leads row plus optional event lists each")],
        as_of: Annotated[str | None, Field(description="ISO 8601; default now; no offset = Asia/Shanghai")] = None,
    ) -> dict[str, Any]:
        """Per lead: health score, tier, real stage, close-date probabilities, intent, rule indices, screening;
        an error entry per invalid lead."""
        try:
            return self.artifact.score_request({"as_of": as_of, "leads": leads})
        except ContractError as exc:
            raise bentoml.exceptions.InvalidArgument(str(exc)) from exc
