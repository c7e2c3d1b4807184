"""The versioned model artifact: feature pipeline, vocabularies and every model, scored one way everywhere.

Training writes it, MLflow logs it as a pyfunc (so `mlflow models serve` works on it), BentoML imports
it, and the service, batch scoring and tests all score through `LeadArtifact.score_request`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.catalogue import FEATURES
from features.contract import ContractError, request_to_tables
from features.pipeline import FEATURE_SET_VERSION, FeaturePipeline
from leadscore.actions import recommend
from leadscore.explain import explain, factors, top_factors
from leadscore.models.closedate import CloseDateModel
from leadscore.models.health import HealthModel
from leadscore.models.intent import IntentModel
from leadscore.models.stage import StageModel
from leadscore.tiers import TierThresholds

logger = logging.getLogger("leadscore.artifact")
ARTIFACT_FILE, META_FILE = "models.pkl", "meta.json"
_SEP = "\x1f"  # joins a request's position to its lead ids while several requests are scored together
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
CLOSED_STAGE = {"won": "赢单", "lost": "丢单"}


class ArtifactError(RuntimeError):
    """The artifact on disk is missing, corrupt or from another feature-set version."""


@dataclass
class LeadArtifact:
    """Everything scoring needs, versioned together: the fitted feature pipeline (vocabularies, category
    levels, text models), the calibrated health model, the stage, close-date and intent models."""

    pipeline: FeaturePipeline
    health: HealthModel
    stage: StageModel | None = None
    closedate: CloseDateModel | None = None
    intent: IntentModel | None = None
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
        models = {name: getattr(self, name) for name in ("pipeline", "health", "stage", "closedate", "intent")}
        with open(path / ARTIFACT_FILE, "wb") as handle:
            pickle.dump(models, handle)
        meta = {
            "feature_set_version": self.feature_set_version,
            "code_revision": self.code_revision,
            "features": FEATURES,
            "models": sorted(name for name, model in models.items() if model is not None),
            "intent_labels": list(self.intent.labels) if self.intent is not None else None,
            "metrics": self.metrics,
            "sha256": hashlib.sha256((path / ARTIFACT_FILE).read_bytes()).hexdigest(),
        }
        (path / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> LeadArtifact:
        path = Path(directory)
        try:
            meta = json.loads((path / META_FILE).read_text())
            if meta.get("feature_set_version") != FEATURE_SET_VERSION:
                raise ArtifactError(
                    f"model artifact at {path} was built for feature set {meta.get('feature_set_version')!r}, "
                    f"this code computes {FEATURE_SET_VERSION!r}: retrain or install the matching version"
                )
            pickled = (path / ARTIFACT_FILE).read_bytes()
            if meta.get("sha256") and hashlib.sha256(pickled).hexdigest() != meta["sha256"]:
                raise ArtifactError(f"model artifact at {path}: {ARTIFACT_FILE} does not match its digest; not loaded")
            models = pickle.loads(pickled)
        except (OSError, ValueError, EOFError, AttributeError, ImportError, pickle.UnpicklingError) as exc:
            raise ArtifactError(f"model artifact at {path} is missing or corrupt: {exc}") from exc
        return cls(**models, code_revision=meta.get("code_revision", "unknown"), metrics=meta.get("metrics", {}))

    def warm_up(self) -> LeadArtifact:
        """Load what the first request would otherwise wait for (jieba's dictionaries, the owner index)."""
        self.pipeline.warm_up()
        if self.stage is not None and self.stage.text_model_ is not None:
            self.stage.text_model_.model_.words.tokenizer.warm_up()
        if self.intent is not None:
            self.intent.predict_proba(["你好，想了解一下价格"])
        return self

    def predict_features(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated P(won within 90 days) for rows of the feature pipeline's output."""
        return self.health.predict(features)

    def predict(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> np.ndarray:
        return self.predict_features(self.pipeline.transform(tables, snapshots))

    def score_tables(
        self,
        tables: dict[str, pd.DataFrame],
        snapshots: pd.DataFrame,
        *,
        all_factors: bool | list[bool] = False,
        context: pd.DataFrame | None = None,
    ) -> list[dict[str, Any]]:
        """One answer per snapshot: health, stage, close date, intent, rule indices, screening flags, the
        strongest factors (all of them with `all_factors`) and the next actions. With `context` (the
        pipeline's `context` of these snapshots over the whole export), `tables` need only hold the
        snapshots' own leads and their rows."""
        if snapshots.empty:
            return []
        features, texts, details = self.pipeline.transform_with_details(tables, snapshots, context=context)
        explained = explain(self.health, features)
        probability = explained.score / 100
        tiers = self.tiers.tier(explained.score)
        extras = self._model_answers(tables, snapshots, features, texts, probability)
        stages = [s["inferred"] for s in extras["stage"]] if "stage" in extras else [None] * len(features)
        actions = recommend(self.health, features, stages, explained.score, snapshots["as_of"], self.tiers.nurture)
        if isinstance(all_factors, bool):
            all_factors = [all_factors] * len(snapshots)
        answers = []
        for i, lead_id in enumerate(snapshots["lead_id"].tolist()):
            row = features.iloc[i]
            answers.append(
                {
                    "lead_id": lead_id,
                    "health_score": round(100 * float(probability[i]), 1),
                    "win_probability": round(float(probability[i]), 4),
                    "tier": tiers[i],
                    **{name: values[i] for name, values in extras.items()},
                    "activity_index": float(row["lai"]),
                    "health_radar": {name.removeprefix("radar_"): float(row[name]) for name in RADAR},
                    "golden_checklist": {name.removeprefix("checklist_"): bool(row[name]) for name in CHECKLIST},
                    "stage_evidence_missing": bool(row["stage_evidence_missing"]),
                    "screening": {name.removeprefix("screen_"): bool(row[name]) for name in SCREENING}
                    | {"duplicate_of": _id_or_none(details["duplicate_of"].iat[i])},
                    "explanation": self._explanation(explained, features, i, all_factors[i]),
                    "next_actions": actions[i],
                    "model_version": self.model_version,
                }
            )
        return answers

    @staticmethod
    def _explanation(explained, features: pd.DataFrame, i: int, all_factors: bool) -> dict[str, Any]:
        folded = factors(explained.points.iloc[i], features.iloc[i])
        shown = {"factors": folded} if all_factors else top_factors(folded)
        return {"base_score": round(float(explained.base_score[i]), 2), **shown}

    def _model_answers(self, tables, snapshots, features, texts, probability) -> dict[str, list[dict[str, Any]]]:
        """Per snapshot: the stage, close-date and intent answers of the models this artifact carries
        (`probability`: the health model's, which the close-date curve is anchored to; not computed twice)."""
        out: dict[str, list[dict[str, Any]]] = {}
        if self.stage is not None:
            out["stage"] = stage_answers(self.stage, tables, snapshots, features, texts)
        if self.closedate is not None:
            out["close_date"] = close_date_answers(self.closedate.predict(features, probability), snapshots["as_of"])
        if self.intent is not None:
            form = snapshots["lead_id"].map(tables["leads"].set_index("lead_id")["form_text"]).fillna("")
            proba = self.intent.predict_proba(form.astype(str).tolist())
            out["intent"] = [
                {"intent": str(p.idxmax()), "confidence": round(float(p.max()), 4), "probabilities": _rounded(p)}
                for _, p in proba.iterrows()
            ]
        return out

    def score_request(self, request: dict[str, Any], *, all_factors: bool = False) -> dict[str, Any]:
        """Answer the contract's online request: a result per valid lead, an error entry per invalid one."""
        answer = self.score_requests([request], all_factors=[all_factors])[0]
        if isinstance(answer, ContractError):
            raise answer
        return answer

    def score_requests(
        self, requests: list[dict[str, Any]], *, all_factors: list[bool] | None = None
    ) -> list[dict[str, Any] | ContractError]:
        """Answer several online requests in one pass (what the service's adaptive batching hands over): each
        gets exactly the answer it would get alone, or the ContractError that makes it unreadable.

        Lead ids are prefixed by the request's position while the requests are scored together, and the
        duplicate screen only compares leads of the same request, so no request sees another's leads."""
        all_factors = all_factors or [False] * len(requests)
        parsed, frames, snapshots, wanted = [], {}, [], []
        for position, request in enumerate(requests):
            try:
                as_of, result = request_to_tables(request)
            except ContractError as exc:
                parsed.append(exc)
                continue
            parsed.append((as_of, result))
            for name, table in result.tables.items():
                table = table.assign(lead_id=f"{position}{_SEP}" + table["lead_id"].astype(str))
                if name == "leads":
                    table["request_group"], table["request_lead_id"] = position, result.tables["leads"]["lead_id"]
                frames.setdefault(name, []).append(table)
            ids = result.tables["leads"]["lead_id"]
            snapshots.append(pd.DataFrame({"lead_id": f"{position}{_SEP}" + ids.astype(str), "as_of": as_of}))
            wanted += [all_factors[position]] * len(ids)
        answers_by_id: dict[str, dict[str, Any] | Exception] = {}
        if snapshots:
            tables = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
            answers_by_id = self._score_isolated(tables, pd.concat(snapshots, ignore_index=True), wanted)
        return [
            item if isinstance(item, ContractError) else self._request_answer(position, *item, answers_by_id)
            for position, item in enumerate(parsed)
        ]

    def _score_isolated(self, tables, snaps: pd.DataFrame, wanted: list[bool]) -> dict[str, dict[str, Any] | Exception]:
        """Answers by lead id, all scored together; if that fails, lead by lead (with the context computed
        over all of them, so each answer is the one it would have had), so a lead that breaks the code
        costs its own answer only: it gets the exception instead."""
        try:
            return dict(zip(snaps["lead_id"], self.score_tables(tables, snaps, all_factors=wanted), strict=True))
        except Exception as exc:  # noqa: BLE001 - any failure: find the lead that causes it
            logger.error(
                "scoring %d leads together failed (%s); scoring them one by one", len(snaps), type(exc).__name__
            )
        try:
            context = self.pipeline.context(tables, snaps)
        except Exception:  # noqa: BLE001 - then each lead is scored on its own context
            context = None
        answers: dict[str, dict[str, Any] | Exception] = {}
        for i, lead_id in enumerate(snaps["lead_id"]):
            own = {name: t[t["lead_id"] == lead_id] for name, t in tables.items()}
            one = snaps.iloc[[i]].reset_index(drop=True)
            try:
                ctx = None if context is None else context.iloc[[i]]
                [answers[lead_id]] = self.score_tables(own, one, all_factors=[wanted[i]], context=ctx)
            except Exception as exc:  # noqa: BLE001 - reported as this lead's error entry
                logger.error("a lead could not be scored (%s)", type(exc).__name__)
                answers[lead_id] = exc
        return answers

    def _request_answer(self, position: int, as_of, result, answers_by_id) -> dict[str, Any]:
        leads = result.tables["leads"]
        results, failed = [], []
        for lead_id in leads["lead_id"]:
            answer = answers_by_id[f"{position}{_SEP}{lead_id}"]
            if isinstance(answer, Exception):
                reason = f"this lead could not be scored (internal error {type(answer).__name__}); the others were"
                failed.append({"lead_id": lead_id, "problems": [{"table": "*", "field": "*", "reason": reason}]})
                continue
            screening = answer["screening"]
            if screening["duplicate_of"] is not None:
                screening["duplicate_of"] = screening["duplicate_of"].split(_SEP, 1)[1]
            results.append({**answer, "lead_id": lead_id, "as_of": as_of.isoformat()})
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
            "errors": [{"lead_id": lead_id, "problems": problems} for lead_id, problems in errors.items()] + failed,
        }


def _problems_by_lead(problems) -> dict[str | None, list[dict[str, str]]]:
    grouped: dict[str | None, list[dict[str, str]]] = {}
    for p in problems:
        grouped.setdefault(p.lead_id if p.lead_id else p.row, []).append(
            {"table": p.table, "field": p.field, "reason": p.reason}
        )
    return grouped


def _id_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _rounded(row: pd.Series) -> dict[str, float]:
    return {str(k): round(float(v), 4) for k, v in row.items()}


def stage_answers(model: StageModel, tables, snapshots, features, texts) -> list[dict[str, Any]]:
    """Inferred stage with probabilities and the mismatch flag; a lead closed by as_of is 赢单 / 丢单."""
    proba = model.predict_proba(features, texts).reset_index(drop=True)
    predicted = model.decide(proba, features["recorded_stage"].reset_index(drop=True))
    outcomes = tables["outcomes"].drop_duplicates("lead_id")[["lead_id", "status", "closed_at"]]
    known = snapshots[["lead_id", "as_of"]].reset_index(drop=True).merge(outcomes, on="lead_id", how="left")
    closed = (known["closed_at"] <= pd.to_datetime(known["as_of"])).fillna(False).to_numpy(bool)
    answers = []
    for i in range(len(predicted)):
        recorded = predicted["recorded_stage"].iat[i]
        recorded = None if pd.isna(recorded) else str(recorded)
        if closed[i] and known["status"].iat[i] in CLOSED_STAGE:
            stage = CLOSED_STAGE[known["status"].iat[i]]
            answers.append({"inferred": stage, "confidence": 1.0, "probabilities": {stage: 1.0},
                            "recorded": recorded, "mismatch": False})  # fmt: skip
            continue
        answers.append(
            {
                "inferred": str(predicted["inferred_stage"].iat[i]),
                "confidence": round(float(predicted["confidence"].iat[i]), 4),
                "probabilities": _rounded(proba.iloc[i]),
                "recorded": recorded,
                "mismatch": bool(predicted["mismatch"].iat[i]),
            }
        )
    return answers


def close_date_answers(predicted: pd.DataFrame, as_of: pd.Series) -> list[dict[str, Any]]:
    """P(won within 30 / 60 / 90 days) and the expected win date if it is won within 90 days."""
    as_of = pd.to_datetime(as_of).reset_index(drop=True)
    won = [c for c in predicted.columns if c.startswith("p_won_")]
    answers = []
    for i, row in enumerate(predicted.reset_index(drop=True).itertuples(index=False)):
        values = row._asdict()
        expected = as_of.iat[i] + pd.Timedelta(days=float(values["expected_close_days"]))
        answers.append(
            {
                **{f"won_within_{c.removeprefix('p_won_')}d": round(float(values[c]), 4) for c in won},
                "expected_close_date_if_won": expected.date().isoformat(),
            }
        )
    return answers


class LeadPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: one row per lead (contract fields, `as_of`, event lists as JSON strings)."""

    def load_context(self, context) -> None:
        self.artifact = LeadArtifact.load(context.artifacts["leadscore"])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frames = []
        for as_of, rows in model_input.groupby(
            model_input.get("as_of", pd.Series("", index=model_input.index)).fillna("")
        ):
            leads = [_row_to_lead(r) for r in rows.drop(columns="as_of", errors="ignore").to_dict(orient="records")]
            answer = self.artifact.score_request({"as_of": as_of or None, "leads": leads})
            frames.append(pd.DataFrame([flat_answer(result) for result in answer["results"]]))
            if answer["errors"]:
                raise ContractError(json.dumps(answer["errors"], ensure_ascii=False))
        return pd.concat(frames, ignore_index=True)


def flat_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """One lead's answer as a flat row (for tables and the pyfunc's signature): the headline fields."""
    row = {k: answer[k] for k in ("lead_id", "health_score", "win_probability", "tier")}
    if "stage" in answer:
        row |= {"inferred_stage": answer["stage"]["inferred"], "stage_mismatch": answer["stage"]["mismatch"]}
    row |= answer.get("close_date", {})
    if "intent" in answer:
        row |= {"intent": answer["intent"]["intent"], "intent_confidence": answer["intent"]["confidence"]}
    return row | {"model_version": answer["model_version"]}


def _row_to_lead(row: dict[str, Any]) -> dict[str, Any]:
    lead = {k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
    for name in ("web_events", "activities", "stage_changes"):
        if isinstance(lead.get(name), str):
            lead[name] = json.loads(lead[name])
    return lead
