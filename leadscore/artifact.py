"""The versioned model artifact: feature pipeline version, vocabularies and booster, scored one way everywhere.

Training writes it, MLflow logs it as a pyfunc (so `mlflow models serve` works on it), BentoML imports
it, and the service, batch scoring and tests all score through `HealthArtifact.score_request`.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.catalogue import FEATURES
from features.contract import ContractError, request_to_tables
from features.pipeline import FEATURE_SET_VERSION, FeaturePipeline
from leadscore.tiers import TierThresholds

MODEL_FILE, PIPELINE_FILE, META_FILE = "health_model.txt", "feature_pipeline.pkl", "meta.json"
RADAR = ["radar_information", "radar_timeliness", "radar_need_clarity", "radar_industry_match", "radar_interaction"]
CHECKLIST = ["checklist_first_call", "checklist_wechat", "checklist_need_tagged", "checklist_complete"]
SCREENING = [
    "screen_duplicate",
    "screen_phone_invalid",
    "screen_phone_missing",
    "screen_spam_text",
    "screen_job_seeker_text",
    "screen_competitor_email",
]


class ArtifactError(RuntimeError):
    """The artifact on disk is missing, corrupt or from another feature-set version."""


@dataclass
class HealthArtifact:
    booster: lgb.Booster
    pipeline: FeaturePipeline
    code_revision: str = "unknown"
    metrics: dict[str, float] = field(default_factory=dict)
    model_version: str = "unregistered"
    tiers: TierThresholds = field(default_factory=TierThresholds)

    @property
    def feature_set_version(self) -> str:
        return self.pipeline.feature_set_version

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(path / MODEL_FILE)
        with open(path / PIPELINE_FILE, "wb") as handle:
            pickle.dump(self.pipeline, handle)
        meta = {
            "feature_set_version": self.feature_set_version,
            "code_revision": self.code_revision,
            "features": FEATURES,
            "metrics": self.metrics,
        }
        (path / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> HealthArtifact:
        path = Path(directory)
        try:
            meta = json.loads((path / META_FILE).read_text())
            booster = lgb.Booster(model_file=str(path / MODEL_FILE))
            with open(path / PIPELINE_FILE, "rb") as handle:
                pipeline = pickle.load(handle)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(f"model artifact at {path} is missing or corrupt: {exc}") from exc
        if meta.get("feature_set_version") != FEATURE_SET_VERSION:
            raise ArtifactError(
                f"model artifact at {path} was built for feature set {meta.get('feature_set_version')!r}, "
                f"this code computes {FEATURE_SET_VERSION!r}: retrain or install the matching version"
            )
        return cls(booster, pipeline, meta.get("code_revision", "unknown"), meta.get("metrics", {}))

    def predict_features(self, features: pd.DataFrame) -> np.ndarray:
        """P(won within 90 days) for rows of the feature pipeline's output."""
        return self.booster.predict(features[FEATURES])

    def predict(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> np.ndarray:
        return self.predict_features(self.pipeline.transform(tables, snapshots))

    def score_tables(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> list[dict[str, Any]]:
        """One answer per snapshot: score, probability, rule indices and screening flags."""
        features, _, details = self.pipeline.transform_with_details(tables, snapshots)
        probability = self.predict_features(features)
        tiers = self.tiers.tier(100 * probability)
        answers = []
        for i, lead_id in enumerate(snapshots["lead_id"].tolist()):
            row = features.iloc[i]
            answers.append(
                {
                    "lead_id": lead_id,
                    "health_score": round(100 * float(probability[i]), 1),
                    "win_probability": round(float(probability[i]), 4),
                    "tier": tiers[i],
                    "activity_index": float(row["lai"]),
                    "health_radar": {name.removeprefix("radar_"): float(row[name]) for name in RADAR},
                    "golden_checklist": {name.removeprefix("checklist_"): bool(row[name]) for name in CHECKLIST},
                    "stage_evidence_missing": bool(row["stage_evidence_missing"]),
                    "screening": {name.removeprefix("screen_"): bool(row[name]) for name in SCREENING}
                    | {"duplicate_of": details["duplicate_of"].iat[i]},
                    "model_version": self.model_version,
                }
            )
        return answers

    def score_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer the contract's online request: a result per valid lead, an error entry per invalid one."""
        as_of, result = request_to_tables(request)
        leads = result.tables["leads"]
        snapshots = pd.DataFrame({"lead_id": leads["lead_id"], "as_of": as_of})
        results = [{**answer, "as_of": as_of.isoformat()} for answer in self.score_tables(result.tables, snapshots)]
        scored_ids = set(leads["lead_id"])
        # Problems of a scored lead (a bad optional value, a skipped event row) travel with its answer.
        warnings = _problems_by_lead(p for p in result.problems if p.lead_id in scored_ids)
        for entry in results:
            if entry["lead_id"] in warnings:
                entry["warnings"] = warnings[entry["lead_id"]]
        errors = _problems_by_lead(p for p in result.problems if p.lead_id not in scored_ids)
        return {
            "model_version": self.model_version,
            "results": results,
            "errors": [{"lead_id": lead_id, "problems": problems} for lead_id, problems in errors.items()],
        }


def _problems_by_lead(problems) -> dict[str | None, list[dict[str, str]]]:
    grouped: dict[str | None, list[dict[str, str]]] = {}
    for p in problems:
        grouped.setdefault(p.lead_id if p.lead_id else p.row, []).append(
            {"table": p.table, "field": p.field, "reason": p.reason}
        )
    return grouped


class HealthPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: one row per lead (contract fields, `as_of`, event lists as JSON strings)."""

    def load_context(self, context) -> None:
        self.artifact = HealthArtifact.load(context.artifacts["health"])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frames = []
        for as_of, rows in model_input.groupby(
            model_input.get("as_of", pd.Series("", index=model_input.index)).fillna("")
        ):
            leads = [_row_to_lead(r) for r in rows.drop(columns="as_of", errors="ignore").to_dict(orient="records")]
            answer = self.artifact.score_request({"as_of": as_of or None, "leads": leads})
            frames.append(
                pd.DataFrame(answer["results"])[["lead_id", "health_score", "win_probability", "model_version"]]
            )
            if answer["errors"]:
                raise ContractError(json.dumps(answer["errors"], ensure_ascii=False))
        return pd.concat(frames, ignore_index=True)


def _row_to_lead(row: dict[str, Any]) -> dict[str, Any]:
    lead = {k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
    for name in ("web_events", "activities", "stage_changes"):
        if isinstance(lead.get(name), str):
            lead[name] = json.loads(lead[name])
    return lead
