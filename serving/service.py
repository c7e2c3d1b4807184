"""BentoML service: score, explain and recommend for the contract's online request.

POST /score (many leads), POST /explain (one lead, every factor), POST /recommend (next actions),
POST /reload (ask the registry for a new champion), GET /metadata; /healthz, /readyz, /livez and the
OpenAPI docs (/, /docs.json) come with BentoML. Every route but the probes and docs needs X-API-Key.

The model comes from BentoML's model store (imported from the MLflow registry's champion by
`leadscore train`; LEADSCORE_MODEL_TAG picks one, default the latest import). Each worker then asks the
registry every LEADSCORE_RELOAD_SECONDS whether the champion changed and swaps the new one in without
a restart; requests in flight finish on the model they started with.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI
from pydantic import Field

from features.catalogue import CATALOGUE
from features.contract import ContractError
from leadscore.artifact import LeadArtifact
from leadscore.champion import champion_version, load_champion
from leadscore.settings import HEALTH_MODEL_NAME
from leadscore.tiers import TierThresholds
from serving.config import ServiceSettings
from serving.guard import Guard, mask_all_log_handlers
from serving.predlog import PredictionLog

logger = logging.getLogger("leadscore.service")
extra = FastAPI()

Leads = Annotated[list[dict[str, Any]], Field(description="leads rows, each with optional event lists")]
AsOf = Annotated[str | None, Field(description="ISO 8601; default now; no offset = Asia/Shanghai")]


class TooManyLeads(bentoml.exceptions.UnprocessableEntity):
    pass


@bentoml.service(traffic={"timeout": 60})
@bentoml.asgi_app(extra, path="/")
class LeadScoring:
    def __init__(self) -> None:
        mask_all_log_handlers()
        self.settings = ServiceSettings.from_env()
        self.predictions = PredictionLog(self.settings.prediction_log_url)
        tag = os.environ.get("LEADSCORE_MODEL_TAG", f"{HEALTH_MODEL_NAME}:latest")
        bento_model = bentoml.models.get(tag)
        artifact: LeadArtifact = bentoml.mlflow.load_model(bento_model).unwrap_python_model().artifact
        self.registry_version = bento_model.info.metadata.get("mlflow_version", "?")
        artifact.model_version = f"{HEALTH_MODEL_NAME}/{self.registry_version}"
        self.artifact = self._ready(artifact)
        self._reload_lock = threading.Lock()
        if self.settings.reload_seconds:
            threading.Thread(target=self._watch_registry, daemon=True, name="champion-watch").start()

    @staticmethod
    def _ready(artifact: LeadArtifact) -> LeadArtifact:
        artifact.tiers = TierThresholds.from_env()
        return artifact.warm_up()  # at start-up or reload, not on the first request

    def _answer(self, endpoint: str, leads: list[dict[str, Any]], as_of: str | None, **options) -> dict[str, Any]:
        if len(leads) > self.settings.max_leads:
            raise TooManyLeads(
                f"{len(leads)} leads in one request; the limit is {self.settings.max_leads} "
                "(LEADSCORE_MAX_LEADS): split the request"
            )
        artifact = self.artifact  # one model for the whole request, even if a reload swaps it meanwhile
        try:
            answer = artifact.score_request({"as_of": as_of, "leads": leads}, **options)
        except ContractError as exc:
            raise bentoml.exceptions.InvalidArgument(str(exc)) from exc
        request_id = str(uuid.uuid4())
        self.predictions.write(request_id, endpoint, answer["results"])
        for error in answer["errors"]:
            logger.warning("request %s: lead %s rejected: %s", request_id, error["lead_id"], error["problems"])
        logger.info("request %s /%s: %d scored, %d rejected", request_id, endpoint, len(answer["results"]),
                    len(answer["errors"]))  # fmt: skip
        return {"request_id": request_id, **answer}

    @bentoml.api(route="/score")
    def score(self, leads: Leads, as_of: AsOf = None) -> dict[str, Any]:
        """Per lead: health score, tier, real stage, close-date probabilities, intent, screening, LAI and the
        health radar, the strongest factors each way and the next actions; an error entry per invalid lead."""
        return self._answer("score", leads, as_of)

    @bentoml.api(route="/explain")
    def explain(self, lead: Annotated[dict[str, Any], Field(description="one lead")], as_of: AsOf = None) -> dict:
        """One lead's answer with every factor of its health score (points add up to score - base_score)."""
        return self._answer("explain", [lead], as_of, all_factors=True)

    @bentoml.api(route="/recommend")
    def recommend(self, leads: Leads, as_of: AsOf = None) -> dict[str, Any]:
        """Per lead: the next actions ranked by expected gain, with the score and stage they start from."""
        answer = self._answer("recommend", leads, as_of)
        keep = ("lead_id", "health_score", "tier", "stage", "next_actions", "as_of", "model_version")
        return answer | {"results": [{k: r[k] for k in keep if k in r} for r in answer["results"]]}

    @bentoml.api(route="/reload")
    def reload(self) -> dict[str, Any]:
        """Load the registry's champion now if it changed (this worker; the others within
        LEADSCORE_RELOAD_SECONDS)."""
        try:
            changed = self._reload_if_changed()
        except Exception as exc:  # the registry is unreachable or its model unloadable: keep serving
            raise bentoml.exceptions.ServiceUnavailable(f"cannot reach the champion in the registry: {exc}") from exc
        return {"reloaded": changed, "model_version": self.artifact.model_version}

    def _reload_if_changed(self) -> bool:
        with self._reload_lock:
            version = champion_version(self.settings.registry)
            if version == self.registry_version:
                return False
            artifact = self._ready(load_champion(self.settings.registry))
            self.artifact, self.registry_version = artifact, version
            logger.info("champion reloaded: now %s", artifact.model_version)
            return True

    def _watch_registry(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.settings.reload_seconds):
            try:
                self._reload_if_changed()
            except Exception as exc:
                logger.warning("champion check failed, still serving %s: %s", self.artifact.model_version, exc)

    @extra.get("/metadata")
    def metadata(self) -> dict[str, Any]:
        """Model versions, evaluation figures, the feature catalogue, tiers and limits."""
        artifact = self.artifact
        tiers = artifact.tiers
        return {
            "model_version": artifact.model_version,
            "registry_version": self.registry_version,
            "feature_set_version": artifact.feature_set_version,
            "code_revision": artifact.code_revision,
            "models": {
                name: getattr(artifact, name) is not None for name in ("health", "stage", "closedate", "intent")
            },
            "evaluation": artifact.metrics,
            "tiers": {"战略级": tiers.strategic, "重点跟进": tiers.focus, "培育中": tiers.nurture},
            "intent_labels": list(artifact.intent.labels) if artifact.intent is not None else None,
            "limits": {"max_leads": self.settings.max_leads, "max_request_bytes": self.settings.max_request_bytes},
            "features": [
                {"name": s.name, "group": s.group, "template": s.template, "categorical": s.categorical}
                for s in CATALOGUE.values()
            ],
        }


LeadScoring.add_asgi_middleware(Guard)
