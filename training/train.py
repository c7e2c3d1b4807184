"""Train every model of the artifact in two passes.

1. Evaluation pass: a time split. Everything (feature pipeline, text models, health, stage and close-date
   models, baselines) is fitted on snapshots before the cutoff, with outcomes censored at the cutoff, and
   judged on the snapshots after it: the figures, the report and the publish gate come from here.
2. Served pass: the same recipe refitted on all history, so the served model has seen the oldest leads
   and the latest months (a model fitted on the first months only over-predicts old leads: docs/models.md).
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from features.catalogue import FEATURES
from features.labels import HORIZON_DAYS, export_time, followup_days, outcome_frame, snapshot_outcomes, won_within
from features.pipeline import FeaturePipeline, raw_features
from features.screening import ScreeningConfig
from features.snapshots import make_snapshots
from models.artifact import LeadArtifact
from models.base import LeadModel, TrainingSet
from models.health import PARAMS
from models.registry import MODELS
from models.warnings import loss_labels
from training.audit import leakage_audit
from training.baselines import BASELINES, CUSTOMER_BASELINES, ODOO, OdooScoring, fit_baselines
from training.closedate import AalenJohansen, OpenIsNotWon, evaluate_closedate
from training.metrics import binary_metrics, compare_models
from training.selection import Selection, select_health_model
from training.split import time_split
from training.stage import stage_labels

logger = logging.getLogger(__name__)
MODEL_NAME = "健康分模型 health model"
CLOSEDATE_NAME = "竞争风险模型 competing risks"
SLICES = ["channel", "industry", "province"]


class FeatureEngine(Protocol):
    """Where a pass computes features: this process (`LocalFeatures`) or a Dask cluster (leadscore/jobs)."""

    client: Any  # a Dask client for the boosters, or None

    def raw(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame, screening: ScreeningConfig): ...

    def transform(self, pipeline: FeaturePipeline, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame): ...


class LocalFeatures:
    """Features in this process: `raw_features` and the fitted pipeline's transform with the detail columns."""

    client = None

    def raw(self, tables, snapshots, screening) -> pd.DataFrame:
        return raw_features(tables, snapshots, screening=screening)

    def transform(self, pipeline, tables, snapshots) -> pd.DataFrame:
        return pipeline.transform(tables, snapshots, details=True)


@dataclass
class Fitted:
    """One pass's models and the training rows they saw."""

    artifact: LeadArtifact
    features: pd.DataFrame  # with the detail columns
    audit: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    selection: Selection | None = None  # the health model's, when this pass chose it


@dataclass
class Holdout:
    """What the gate and the report need from the evaluation pass: later snapshots and their answers."""

    snapshots: pd.DataFrame  # matured test snapshots (lead_id, as_of)
    y: np.ndarray
    scores: dict[str, np.ndarray]  # model, the customer's baselines and ablations
    features: pd.DataFrame

    def gate_scores(self) -> dict[str, np.ndarray]:
        """The model and the customer's baselines: what the publish gate compares."""
        return {name: p for name, p in self.scores.items() if name == MODEL_NAME or name in CUSTOMER_BASELINES}


@dataclass
class TrainingResult:
    artifact: LeadArtifact
    metrics: dict[str, float]
    params: dict[str, Any]
    evaluation: dict[str, Any]
    holdout: Holdout
    intent_metrics: dict[str, Any] | None = None


@dataclass
class LabelledIntent:
    """A labelled file of form texts, its label set and the intent model fitted on it once for both passes."""

    texts: list[str]
    labels: list[str]
    label_set: tuple[str, ...]
    model: LeadModel
    metrics: dict[str, Any]


def code_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def fit_all(
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    until: pd.Timestamp,
    intent: LabelledIntent | None,
    progress: bool = True,
    description: str = "training",
    engine: FeatureEngine | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> Fitted:
    """The pipeline and every model of the registry on `snapshots`, knowing only outcomes up to `until`.
    `params`: hyperparameters per model; without the health model's, model selection chooses them on
    time-split folds of these snapshots (training/selection.py)."""
    engine = engine or LocalFeatures()
    params = dict(params or {})
    steps = ["features", "leakage audit", "stage labels", "model selection", *(m.name for m in MODELS)]
    clock = _Stopwatch(description, progress, steps)
    durations, events = snapshot_outcomes(tables, snapshots, until=until)
    y90 = won_within(durations, events).astype(int)
    pipeline = FeaturePipeline()
    raw = engine.raw(tables, snapshots, ScreeningConfig.default())
    features = pipeline.fit_transform(tables, snapshots, y90, raw=raw, details=True)
    clock.lap("features")
    matured = followup_days(tables, snapshots, until) >= HORIZON_DAYS  # the 90-day label is known
    # The screen runs before any model: a field that alone ranks the label too well is reported first.
    audit = leakage_audit(features.loc[matured, FEATURES], y90[matured])
    clock.lap("leakage audit")
    data = TrainingSet(
        features=features,
        groups=snapshots["lead_id"].to_numpy(),
        outcome=outcome_frame(durations, events),
        matured=matured,
        stage_labels=stage_labels(tables, snapshots),
        intent_texts=intent.texts if intent else None,
        intent_labels=intent.labels if intent else None,
        intent_label_set=intent.label_set if intent else None,
        params=params,
        client=engine.client,
        tables=tables,
        until=until,
    )
    clock.lap("stage labels")
    selection = None
    if "health" not in params:
        selection = select_health_model(features[FEATURES], y90, snapshots["as_of"], matured, data.groups)
        params["health"] = {"scorer": selection.scorer}
    clock.lap("model selection")
    fitted: dict[str, LeadModel] = {}
    for model in MODELS:
        if intent is not None and model.name == intent.model.name:
            fitted[model.name] = intent.model  # fitted once on the labelled file, the same in both passes
        elif (made := model.from_training(data, fitted)) is not None:
            fitted[model.name] = made
        clock.lap(model.name)
    artifact = LeadArtifact(pipeline, fitted, code_revision=code_revision())
    return Fitted(artifact, features, audit, clock.seconds, selection)


class _Stopwatch:
    """Seconds per step, and a progress bar over the steps of one pass."""

    def __init__(self, description: str, progress: bool, steps: list[str]) -> None:
        self.seconds: dict[str, float] = {}
        self.steps = steps
        self.last = time.perf_counter()
        self.bar = tqdm(total=len(steps), desc=description, unit="step", disable=not progress)
        self.bar.set_postfix_str(steps[0])

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self.last
        self.last = now
        logger.info("%s: %.1f s", name, self.seconds[name])
        self.bar.update(1)
        following = self.steps.index(name) + 1
        self.bar.set_postfix_str(self.steps[following] if following < len(self.steps) else "done")
        if following == len(self.steps):
            self.bar.close()


def fit_baseline_models(
    tables: dict[str, pd.DataFrame], train: pd.DataFrame, features: pd.DataFrame, until: pd.Timestamp
) -> tuple[dict[str, object], dict[str, object]]:
    """The customer's baselines for health and close dates, fitted on the training rows with the labels known at
    `until` (whatever labels `train` carries)."""
    durations, events = snapshot_outcomes(tables, train, until=until)
    matured = followup_days(tables, train, until) >= HORIZON_DAYS
    y = won_within(durations, events).astype(int)
    health = fit_baselines(features.loc[matured, FEATURES], y[matured])
    closedate = {
        "Aalen-Johansen": AalenJohansen().fit(None, durations, events),
        "未成交=未赢 open = not won": OpenIsNotWon().fit(features[FEATURES], durations, events),
    }
    return health, closedate


def score_holdout(
    artifact: LeadArtifact, baselines: dict[str, object], test: pd.DataFrame, x_test, odoo: OdooScoring | None = None
) -> Holdout:
    """The health model and the baselines (Odoo's scoring among them, if given) on the matured test snapshots."""
    keep = test["matured"].to_numpy()
    x, snaps = x_test[keep].reset_index(drop=True), test[keep].reset_index(drop=True)
    scores = {MODEL_NAME: artifact.predict_features(x)}
    scores |= {name: model.predict_proba(x) for name, model in baselines.items()}
    if odoo is not None:
        scores[ODOO] = odoo.predict_snapshots(snaps[["lead_id", "as_of"]])
    return Holdout(snaps[["lead_id", "as_of"]], snaps["won_within"].to_numpy(int), scores, x[FEATURES])


def labelled_intent(path: str | Path, label_set: str | Path | None = None) -> LabelledIntent:
    """The labelled form texts and the intent model fitted on them, with its cross-validated figures.
    `label_set`: a label-set file (training/intent.py `load_label_set`); None: the labels the file holds."""
    from training.intent import load_label_set, load_labelled_csv, train_intent

    labels = load_label_set(label_set) if label_set is not None else None
    model, metrics = train_intent(path, labels=labels)
    texts, found = load_labelled_csv(path, labels=labels)
    return LabelledIntent(texts, found, tuple(model.labels), model, metrics)


def train_models(
    tables: dict[str, pd.DataFrame],
    *,
    intent_labels: str | Path | None = None,
    intent_label_set: str | Path | None = None,
    progress: bool = True,
    refit: bool = True,
    engine: FeatureEngine | None = None,
) -> TrainingResult:
    """Evaluation pass on a time split, then the served pass on all history (`refit=False` serves the
    evaluated models instead: quicker, for experiments and tests). `engine`: where features are computed
    (default this process; leadscore/jobs/scaleout.py has a Dask cluster's)."""
    engine = engine or LocalFeatures()
    intent = labelled_intent(intent_labels, intent_label_set) if intent_labels is not None else None
    snapshots = make_snapshots(tables)
    split = time_split(tables, snapshots)
    cutoff, train, test = split.cutoff, split.train, split.test
    if len(test) < 50 or len(train) < 100:
        raise ValueError(
            f"too little history to train: {len(snapshots)} snapshots, {len(test)} in the test period "
            "(need at least 100 before it and 50 in it); export more leads or a longer period"
        )

    candidate = fit_all(tables, train, cutoff, intent, progress, "evaluation pass (time split)", engine)
    x_test = engine.transform(candidate.artifact.pipeline, tables, test)
    health_baselines, closedate_baselines = fit_baseline_models(tables, train, candidate.features[FEATURES], cutoff)
    holdout = score_holdout(candidate.artifact, health_baselines, test, x_test, OdooScoring().fit(tables, cutoff))
    evaluation = holdout_report(candidate.artifact, holdout, closedate_baselines, tables, test, x_test)
    evaluation["audit"] = candidate.audit
    if intent is not None:
        evaluation["intent"] = {
            "metrics": _intent_summary(intent.metrics),
            "confusion": pd.DataFrame(intent.metrics["confusion"]).T,
        }

    if refit:  # the same recipe, the model chosen in the evaluation pass, refitted on all history
        chosen = {"health": candidate.artifact.models["health"].get_params(deep=False)}
        served = fit_all(
            tables, snapshots, export_time(tables), intent, progress, "served pass (all history)", engine, chosen
        )
    else:
        served = candidate
    evaluation["selection"] = {"card": candidate.selection.card(), "table": candidate.selection.table()}
    evaluation["risk"] = calibrate_risk(served.artifact, candidate.artifact, tables, test, x_test)
    metrics = flat_metrics(evaluation)
    metrics |= {"train_snapshots": float(len(train)), "test_snapshots": float(len(test))}
    metrics |= {"audit_flagged": float(candidate.audit["flagged"].sum())}
    metrics |= {f"selection_auc_{name}": candidate.selection.mean(name) for name in candidate.selection.fold_auc}
    served.artifact.metrics = metrics
    served.artifact.card = evaluation["selection"]["card"]
    metrics |= {f"seconds_{k.replace(' ', '_')}": v for k, v in candidate.seconds.items()}
    params = {**PARAMS, "cutoff": cutoff.isoformat(), "refit_on_all_history": refit}
    params["served_snapshots"] = len(snapshots) if refit else len(train)
    return TrainingResult(served.artifact, metrics, params, evaluation, holdout, intent.metrics if intent else None)


def calibrate_risk(
    served: LeadArtifact, candidate: LeadArtifact, tables: dict[str, pd.DataFrame], test: pd.DataFrame, x_test
) -> dict[str, Any]:
    """The loss horizons' Platt steps and the 7-day threshold of the served warnings, fitted on the evaluation
    pass's later period (the candidate's loss incidence there; models/warnings.py). The served pass's close-date
    model is the same recipe refitted on all history: the mapping is carried over, as the champion's is."""
    if "risk" not in served.models or "risk" not in candidate.models:
        return {}
    durations, events = snapshot_outcomes(tables, test)
    lost, matured = loss_labels(durations, events, followup_days(tables, test))
    raw = candidate.models["risk"].raw_loss(x_test)
    served.models["risk"].calibrate(raw, lost, matured)
    return {"threshold_7d": served.models["risk"].threshold_7d_, **served.models["risk"].holdout_}


def _intent_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in ("confusion", "per_label")}


def holdout_report(
    artifact: LeadArtifact,
    holdout: Holdout,
    closedate_baselines: dict[str, object],
    tables: dict[str, pd.DataFrame],
    test: pd.DataFrame,
    x_test: pd.DataFrame,
) -> dict[str, Any]:
    """The report's sections for a holdout: health vs baselines and slices, close dates, stage (against
    the confirmed labels an export carries) and a SHAP summary."""
    model_name = MODEL_NAME
    health = {
        "y": holdout.y,
        "scores": holdout.scores,
        "model": model_name,
        "slices": holdout.features[SLICES].astype(object).reset_index(drop=True),
    }
    durations, events = snapshot_outcomes(tables, test)
    follow = followup_days(tables, test)
    closedate_models = {CLOSEDATE_NAME: artifact.models["close_date"], **closedate_baselines}
    closedate_metrics = {
        name: evaluate_closedate(model, x_test, durations, events, follow) for name, model in closedate_models.items()
    }
    stage_labels_test = stage_labels(tables, test)
    confirmed = stage_labels_test.notna().to_numpy()
    stage = {}
    if confirmed.any():
        from training.stage import evaluate_stage

        predicted = artifact.models["stage"].predict(x_test[confirmed])
        stage_eval = evaluate_stage(
            predicted["inferred_stage"], stage_labels_test[confirmed], predicted["recorded_stage"]
        )
        stage = {
            "metrics": {k: v for k, v in stage_eval.items() if k != "confusion"},
            "confusion": stage_eval["confusion"],
        }
    sample = np.random.default_rng(0).permutation(len(holdout.features))[:2000]
    contributions, _ = artifact.health.contributions(holdout.features.iloc[sample])
    evaluation = {
        "health": health,
        "closedate": {"table": closedate_table(closedate_metrics), "metrics": closedate_metrics},
        "shap": {
            "contributions": contributions,
            "features": holdout.features.iloc[sample].reset_index(drop=True),
        },
    }
    if stage:
        evaluation["stage"] = stage
    evaluation["comparison"] = compare_models(holdout.y, holdout.scores, model=model_name)
    return evaluation


def closedate_table(metrics: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for name, figures in metrics.items():
        for days in (30, 60, 90):
            h = figures[f"h{days}"]
            rows.append({"model": name, "horizon_days": days, "mean_predicted": h["mean_predicted"],
                         "observed": h["observed_rate"], "auc": h["auc"], "ece": h["ece"]})  # fmt: skip
    return pd.DataFrame(rows)


def flat_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """The headline figures as flat MLflow metrics."""
    health = evaluation["health"]
    ours = binary_metrics(health["y"], health["scores"][health["model"]])
    out = {f"test_{k}": float(v) for k, v in ours.items()}
    aucs = {n: binary_metrics(health["y"], p)["auc"] for n, p in health["scores"].items() if n != health["model"]}
    out["best_baseline_auc"] = float(max(auc for n, auc in aucs.items() if n in CUSTOMER_BASELINES))
    out["auc_gain_over_best_baseline"] = out["test_auc"] - out["best_baseline_auc"]
    for i, name in enumerate(BASELINES):
        out[f"baseline_{i + 1}_auc"] = float(aucs[name])
    if ODOO in aucs:  # "beats Odoo's built-in scoring on your own data", measured
        out["odoo_pls_auc"] = float(aucs[ODOO])
        out["auc_gain_over_odoo"] = out["test_auc"] - out["odoo_pls_auc"]
    ablations = [auc for n, auc in aucs.items() if n not in CUSTOMER_BASELINES]
    if ablations:
        out["ablation_logistic_all_features_auc"] = float(max(ablations))
    for days in (30, 60, 90):
        figures = evaluation["closedate"]["metrics"][CLOSEDATE_NAME][f"h{days}"]
        out[f"closedate_auc_{days}d"] = float(figures["auc"])
        out[f"closedate_ece_{days}d"] = float(figures["ece"])
    out["closedate_c_index"] = float(evaluation["closedate"]["metrics"][CLOSEDATE_NAME]["c_index_90"])
    for key, value in evaluation.get("risk", {}).items():
        out[f"risk_{key}"] = float(value)
    if "stage" in evaluation:
        out["stage_macro_f1_confirmed"] = float(evaluation["stage"]["metrics"]["macro_f1"])
    if "intent" in evaluation:
        out["intent_cv_accuracy"] = float(evaluation["intent"]["metrics"]["accuracy"])
        out["intent_cv_macro_f1"] = float(evaluation["intent"]["metrics"]["macro_f1"])
    return out
