"""The versioned model artifact: the fitted feature pipeline and every model, scored one way everywhere.

Training writes it, MLflow logs it as a pyfunc (models/pyfunc.py, so `mlflow models serve` works on it),
BentoML imports it, and the service, batch scoring and tests all score through `LeadArtifact.score_requests`
/ `score_tables`, which answer with the typed `LeadAnswer` (models/schema.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.catalogue import FEATURES
from features.contract import ContractError, Problem, request_to_tables, validate_table
from features.pipeline import FEATURE_SET_VERSION, FeaturePipeline
from features.rules import RADAR
from features.screening import SCREEN_COLUMNS
from models.actions import OwnerContext, owners_moved, recommend
from models.base import LeadModel, ScoringBatch
from models.explain import explain, fold, top_factors
from models.health import HealthModel
from models.registry import ANSWER_PARTS, MODELS
from models.schema import LeadAnswer, LeadError, Scored
from models.tiers import TierThresholds

logger = logging.getLogger("models.artifact")
ARTIFACT_FILE, META_FILE = "models.pkl", "meta.json"
# The pickled layout ({"pipeline", "models"}): an artifact of another format is refused with a clear message.
ARTIFACT_FORMAT = 2
_SEP = "\x1f"  # joins a request's position to its lead ids while several requests are scored together
CHECKLIST = ["checklist_first_call", "checklist_wechat", "checklist_need_tagged", "checklist_complete"]


class ArtifactError(RuntimeError):
    """The artifact on disk is missing, corrupt or from another feature-set version or format."""


@dataclass
class LeadArtifact:
    """Everything scoring needs, versioned together: the fitted feature pipeline (vocabularies, category
    levels, text models) and the fitted models by name (models/registry.py; the health model is required)."""

    pipeline: FeaturePipeline
    models: dict[str, LeadModel]
    code_revision: str = "unknown"
    metrics: dict[str, float] = field(default_factory=dict)
    model_version: str = "unregistered"
    tiers: TierThresholds = field(default_factory=TierThresholds)
    card: dict[str, Any] = field(default_factory=dict)  # how the health model was chosen (training/selection.py)

    @property
    def health(self) -> HealthModel:
        return self.models["health"]

    @property
    def feature_set_version(self) -> str:
        return self.pipeline.feature_set_version

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / ARTIFACT_FILE, "wb") as handle:
            pickle.dump({"pipeline": self.pipeline, "models": self.models}, handle)
        intent = self.models.get("intent")
        meta = {
            "artifact_format": ARTIFACT_FORMAT,
            "feature_set_version": self.feature_set_version,
            "code_revision": self.code_revision,
            "features": FEATURES,
            "models": sorted(self.models),
            "intent_labels": list(intent.labels) if intent is not None else None,
            "metrics": self.metrics,
            "card": self.card,
            "sha256": hashlib.sha256((path / ARTIFACT_FILE).read_bytes()).hexdigest(),
        }
        (path / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> LeadArtifact:
        path = Path(directory)
        try:
            meta = json.loads((path / META_FILE).read_text())
            if meta.get("artifact_format") != ARTIFACT_FORMAT:
                raise ArtifactError(
                    f"model artifact at {path} has format {meta.get('artifact_format', 1)}, this code reads format "
                    f"{ARTIFACT_FORMAT}: retrain it (leadscore train) or install the version that wrote it"
                )
            if meta.get("feature_set_version") != FEATURE_SET_VERSION:
                raise ArtifactError(
                    f"model artifact at {path} was built for feature set {meta.get('feature_set_version')!r}, "
                    f"this code computes {FEATURE_SET_VERSION!r}: retrain or install the matching version"
                )
            pickled = (path / ARTIFACT_FILE).read_bytes()
            if meta.get("sha256") and hashlib.sha256(pickled).hexdigest() != meta["sha256"]:
                raise ArtifactError(f"model artifact at {path}: {ARTIFACT_FILE} does not match its digest; not loaded")
            content = pickle.loads(pickled)
        except (OSError, ValueError, EOFError, AttributeError, ImportError, pickle.UnpicklingError) as exc:
            raise ArtifactError(f"model artifact at {path} is missing or corrupt: {exc}") from exc
        return cls(
            **content, code_revision=meta.get("code_revision", "unknown"), metrics=meta.get("metrics", {}),
            card=meta.get("card", {}),
        )  # fmt: skip

    def warm_up(self) -> LeadArtifact:
        """Load what the first request would otherwise wait for (jieba's dictionaries, the owner index)."""
        self.pipeline.warm_up()
        for model in self.models.values():
            model.warm_up()
        return self

    def predict_features(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated P(won within 90 days) for rows of the feature pipeline's output."""
        return self.health.predict(features)

    def predict(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> np.ndarray:
        return self.predict_features(self.pipeline.transform(tables, snapshots))

    def describe_models(self) -> dict[str, bool]:
        """Which of the registry's models this artifact carries."""
        return {model.name: model.name in self.models for model in MODELS}

    def score_tables(
        self,
        tables: dict[str, pd.DataFrame],
        snapshots: pd.DataFrame,
        *,
        all_factors: bool | list[bool] = False,
        context: pd.DataFrame | None = None,
        owner_context: OwnerContext | None = None,
    ) -> list[LeadAnswer]:
        """One answer per snapshot: health, every model's part, rule indices, screening flags, the strongest
        factors (all of them with `all_factors`) and the next actions. With `context` (the pipeline's
        `context` of these snapshots over the whole export), `tables` need only hold the snapshots' own leads
        and their rows; `owner_context` then says what a lead's owner figures become if it moves
        (models/actions.py `owners_moved`; default: computed from `tables`)."""
        if snapshots.empty:
            return []
        snapshots = snapshots.reset_index(drop=True)
        if context is None:
            context = self.pipeline.context(tables, snapshots)
        features = self.pipeline.transform(tables, snapshots, context=context, details=True)
        explained = explain(self.health, features)
        probability = explained.score / 100
        tiers = self.tiers.tier(explained.score)
        batch = ScoringBatch(tables, snapshots, features, probability)
        parts = {m.name: self.models[m.name].answer(batch) for m in ANSWER_PARTS if m.name in self.models}
        stages = [s.inferred for s in parts["stage"]] if "stage" in parts else [None] * len(features)
        actions = recommend(
            self.pipeline, self.health, tables, snapshots, context, features, stages, probability,
            self.tiers.nurture, owner_context,
        )  # fmt: skip
        if isinstance(all_factors, bool):
            all_factors = [all_factors] * len(snapshots)
        as_of = pd.to_datetime(snapshots["as_of"])
        # Rows as dicts, made once: a lookup in a pandas row costs more than the work done with the value.
        rows, folded = features.to_dict("records"), fold(explained.points, features)
        answers = []
        for i, lead_id in enumerate(snapshots["lead_id"].tolist()):
            row = rows[i]
            answer = {
                "lead_id": lead_id,
                "health_score": round(100 * float(probability[i]), 1),
                "win_probability": round(float(probability[i]), 4),
                "tier": tiers[i],
                **{name: values[i] for name, values in parts.items()},
                "activity_index": float(row["lai"]),
                "health_radar": {name.removeprefix("radar_"): float(row[name]) for name in RADAR},
                "golden_checklist": {name.removeprefix("checklist_"): bool(row[name]) for name in CHECKLIST},
                "stage_evidence_missing": bool(row["stage_evidence_missing"]),
                "screening": {name.removeprefix("screen_"): bool(row[name]) for name in SCREEN_COLUMNS}
                | {"duplicate_of": _id_or_none(row["duplicate_of"])},
                "explanation": _explanation(float(explained.base_score[i]), folded[i], all_factors[i]),
                "next_actions": actions[i],
                "model_version": self.model_version,
                "as_of": as_of.iat[i].isoformat(),
            }
            answers.append(LeadAnswer.model_validate(answer))
        return answers

    def score_request(self, request: dict[str, Any], *, all_factors: bool = False) -> Scored:
        """Answer the contract's online request: a result per valid lead, an error entry per invalid one."""
        answer = self.score_requests([request], all_factors=[all_factors])[0]
        if isinstance(answer, ContractError):
            raise answer
        return answer

    def score_requests(
        self, requests: list[dict[str, Any]], *, all_factors: list[bool] | None = None
    ) -> list[Scored | ContractError]:
        """Answer several online requests in one pass (what the service's adaptive batching hands over): each
        gets exactly the answer it would get alone, or the ContractError that makes it unreadable.

        Each request's context (owner figures, duplicate screen) is computed from that request alone; its lead
        ids are prefixed by its position while the requests are scored together, so none sees another's. A
        request's `earlier` (leads rows a lead store kept, see serving/store.py) join its duplicate screen."""
        all_factors = all_factors or [False] * len(requests)
        parsed, frames, snapshots, contexts, wanted, own_tables = [], {}, [], [], [], {}
        for position, request in enumerate(requests):
            try:
                as_of, result = request_to_tables(request)
            except ContractError as exc:
                parsed.append(exc)
                continue
            earlier = earlier_leads(request)
            parsed.append((as_of, result, earlier))
            ids = result.tables["leads"]["lead_id"]
            if not len(ids):
                continue
            own = pd.DataFrame({"lead_id": ids, "as_of": as_of})
            contexts.append(self.pipeline.context(result.tables, own, earlier))
            own_tables[position] = (result.tables, own)
            for name, table in result.tables.items():
                frames.setdefault(name, []).append(table.assign(lead_id=f"{position}{_SEP}" + table["lead_id"]))
            snapshots.append(own.assign(lead_id=f"{position}{_SEP}" + ids))
            wanted += [all_factors[position]] * len(ids)
        answers_by_id: dict[str, LeadAnswer | Exception] = {}
        if snapshots:
            tables = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
            snaps = pd.concat(snapshots, ignore_index=True)
            context = pd.concat(contexts, ignore_index=True)
            answers_by_id = self._score_isolated(tables, snaps, context, wanted, _owners_by_request(self, own_tables))
        return [
            item if isinstance(item, ContractError) else self._request_answer(position, *item, answers_by_id)
            for position, item in enumerate(parsed)
        ]

    def _score_isolated(self, tables, snaps, context, wanted, owner_context) -> dict[str, LeadAnswer | Exception]:
        """Answers by lead id, all scored together; if that fails, lead by lead (with the context computed
        before, so each answer is the one it would have had), so a lead that breaks the code costs its own
        answer only: it gets the exception instead."""
        try:
            answers = self.score_tables(tables, snaps, all_factors=wanted, context=context, owner_context=owner_context)
            return dict(zip(snaps["lead_id"], answers, strict=True))
        except Exception as exc:  # noqa: BLE001 - any failure: find the lead that causes it
            logger.error(
                "scoring %d leads together failed (%s); scoring them one by one", len(snaps), type(exc).__name__
            )
        answers: dict[str, LeadAnswer | Exception] = {}
        for i, lead_id in enumerate(snaps["lead_id"]):
            own = {name: t[t["lead_id"] == lead_id] for name, t in tables.items()}
            one = snaps.iloc[[i]].reset_index(drop=True)
            try:
                [answers[lead_id]] = self.score_tables(
                    own, one, all_factors=[wanted[i]], context=context.iloc[[i]],
                    owner_context=lambda _row, owner, i=i: owner_context(i, owner),
                )  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - reported as this lead's error entry
                logger.error("a lead could not be scored (%s)", type(exc).__name__)
                answers[lead_id] = exc
        return answers

    def _request_answer(self, position: int, as_of, result, earlier, answers_by_id) -> Scored:
        leads = result.tables["leads"]
        owners = lead_owners(leads, earlier)
        results, failed = [], []
        # Problems of a scored lead (a bad optional value, a skipped event row) travel with its answer.
        warnings = _problems_by_lead(p for p in result.problems if p.lead_id in set(leads["lead_id"]))
        for lead_id in leads["lead_id"]:
            answer = answers_by_id[f"{position}{_SEP}{lead_id}"]
            if isinstance(answer, Exception):
                reason = f"this lead could not be scored (internal error {type(answer).__name__}); the others were"
                failed.append(LeadError(lead_id=lead_id, problems=[{"table": "*", "field": "*", "reason": reason}]))
                continue
            update = {"lead_id": lead_id, "warnings": warnings.get(lead_id)}
            if answer.screening.duplicate_of is not None:
                owner = owners.get(answer.screening.duplicate_of)
                update["screening"] = answer.screening.model_copy(update={"duplicate_owner": owner})
            results.append(answer.model_copy(update=update))
        errors = _problems_by_lead(p for p in result.problems if p.lead_id not in set(leads["lead_id"]))
        errors_out = [LeadError(lead_id=lead_id, problems=problems) for lead_id, problems in errors.items()]
        return Scored(model_version=self.model_version, results=results, errors=errors_out + failed)


def _explanation(base_score: float, folded: list[dict[str, Any]], all_factors: bool) -> dict[str, Any]:
    """One lead's explanation from its factors (models/explain.py `fold`): all of them or the strongest each
    way, and, in brief, every factor worth 0.05 points or more."""
    shown = {"factors": folded} if all_factors else top_factors(folded)
    compact = [
        {"factor": f["factor"], "label": f["label"], "points": f["points"], "value": f["sentence"].rsplit("，", 1)[0]}
        for f in folded
        if abs(f["points"]) >= 0.05
    ]
    return {"base_score": round(base_score, 2), **shown, "contributions": compact}


def earlier_leads(request: dict[str, Any]) -> pd.DataFrame | None:
    """A request's `earlier` leads rows (a lead store's) typed by the contract; rows it refuses are left out."""
    rows = request.get("earlier") if isinstance(request, dict) else None
    if not isinstance(rows, list) or not rows:
        return None
    rows = [r for r in rows if isinstance(r, dict)]
    return validate_table("leads", pd.DataFrame(rows)).tables["leads"] if rows else None


def lead_owners(leads: pd.DataFrame, earlier: pd.DataFrame | None) -> dict[str, str]:
    """lead_id -> owner_id over a request's leads and its earlier ones (the request's own win)."""
    frames = [f for f in (earlier, leads) if f is not None and len(f)]
    owners: dict[str, str] = {}
    for frame in frames:
        known = frame[frame["owner_id"].notna()]
        owners.update(zip(known["lead_id"].astype(str), known["owner_id"].astype(str), strict=True))
    return owners


def _owners_by_request(artifact: LeadArtifact, own_tables: dict[int, tuple]) -> OwnerContext:
    """A moved lead's owner figures from its own request's tables (not the batch's): as if scored alone."""
    starts, movers = [], []
    offset = 0
    for tables, snaps in own_tables.values():
        starts.append(offset)
        movers.append(owners_moved(artifact.pipeline, tables, snaps))
        offset += len(snaps)
    starts_array = np.array(starts)

    def figures(row: int, owner: str) -> np.ndarray:
        k = int(np.searchsorted(starts_array, row, side="right") - 1)
        return movers[k](row - starts[k], owner)

    return figures


def _problems_by_lead(problems) -> dict[str, list[dict[str, str]]]:
    grouped: dict[str, list[dict[str, str]]] = {}
    for p in problems:
        p: Problem
        grouped.setdefault(p.lead_id if p.lead_id else p.row, []).append(
            {"table": p.table, "field": p.field, "reason": p.reason}
        )
    return grouped


def _id_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def flat_answer(answer: LeadAnswer) -> dict[str, Any]:
    """One lead's answer as a flat row (for tables and the pyfunc's signature): the headline fields."""
    row = {k: getattr(answer, k) for k in ("lead_id", "health_score", "win_probability", "tier")}
    for model in ANSWER_PARTS:
        part = getattr(answer, model.name, None)
        if part is not None:
            row |= model.flat(part.model_dump())
    return row | {"model_version": answer.model_version}
