"""Train every model of the artifact in two passes.

1. Evaluation pass: a time split. Everything (feature pipeline, text models, health, stage and close-date
   models, baselines) is fitted on snapshots before the cutoff, with outcomes censored at the cutoff, and
   judged on the snapshots after it: the figures, the report and the publish gate come from here.
2. Served pass: the same recipe refitted on all history, so the served model has seen the oldest leads
   and the latest months (a model fitted on the first months only over-predicts old leads: docs/models.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from features.pipeline import FeaturePipeline, SnapshotTexts
from features.snapshots import export_time, make_snapshots
from leadscore.artifact import LeadArtifact
from leadscore.models.closedate import CloseDateModel
from leadscore.models.intent import IntentModel
from leadscore.models.stage import StageModel
from training.audit import leakage_audit
from training.baselines import BASELINES, fit_baselines
from training.closedate import AalenJohansen, OpenIsNotWon, evaluate_closedate, followup_days, snapshot_outcomes
from training.closedate import won_within as won_within_days
from training.health import PARAMS, code_revision, fit_health, time_split
from training.metrics import binary_metrics, compare_models
from training.stage import stage_labels

logger = logging.getLogger(__name__)
HORIZON = 90
MODEL_NAME = "健康分模型 health model"
CLOSEDATE_NAME = "竞争风险模型 competing risks"
SLICES = ["channel", "industry", "province"]


@dataclass
class Fitted:
    """One pass's models and the training rows they saw."""

    artifact: LeadArtifact
    features: pd.DataFrame
    texts: SnapshotTexts
    audit: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Holdout:
    """What the gate and the report need from the evaluation pass: later snapshots and their answers."""

    snapshots: pd.DataFrame  # matured test snapshots (lead_id, as_of)
    y: np.ndarray
    scores: dict[str, np.ndarray]  # model, the customer's baselines and ablations
    features: pd.DataFrame

    def gate_scores(self) -> dict[str, np.ndarray]:
        """The model and the customer's baselines: what the publish gate compares."""
        return {name: p for name, p in self.scores.items() if name == MODEL_NAME or name in BASELINES}


@dataclass
class TrainingResult:
    artifact: LeadArtifact
    metrics: dict[str, float]
    params: dict[str, Any]
    evaluation: dict[str, Any]
    holdout: Holdout
    intent_metrics: dict[str, Any] | None = None


def fit_all(
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    until: pd.Timestamp,
    intent: IntentModel | None,
    progress: bool = True,
    description: str = "training",
    client=None,
) -> Fitted:
    """Pipeline, health, stage and close-date models on `snapshots`, knowing only outcomes up to `until`.
    With a Dask `client`, features are computed per partition of leads and the health model by
    `lightgbm.dask` on the cluster (leadscore/scaleout.py)."""
    clock = _Stopwatch(description, progress)
    durations, events = snapshot_outcomes(tables, snapshots, until=until)
    y90 = won_within_days(durations, events, HORIZON).astype(int)
    matured = followup_days(tables, snapshots, until) >= HORIZON  # the 90-day label is known
    groups = snapshots["lead_id"].to_numpy()
    pipeline = FeaturePipeline()
    raw = None
    if client is not None:
        from leadscore.scaleout import raw_features_on_dask

        raw = raw_features_on_dask(client, tables, snapshots, pipeline.screening)
    features, texts = pipeline.fit_transform_with_details(tables, snapshots, y90, raw=raw)
    clock.lap("features")
    # The screen runs before any model: a field that alone ranks the label too well is reported first.
    audit = leakage_audit(features[matured], y90[matured])
    clock.lap("leakage audit")
    health = fit_health(features[matured], y90[matured], groups[matured], progress=progress, client=client)
    clock.lap("health model")
    # The curve's level at 90 days comes from the calibrated health model (leadscore/models/closedate.py).
    closedate = CloseDateModel().fit(features, durations, events).anchor_to(health)
    clock.lap("close-date model")
    labels = stage_labels(tables, snapshots)
    clock.lap("stage labels")
    stage = StageModel().fit(features, texts, labels, groups=groups)
    clock.lap("stage model")
    artifact = LeadArtifact(pipeline, health, stage, closedate, intent, code_revision=code_revision())
    return Fitted(artifact, features, texts, audit, clock.seconds)


STEPS = ["features", "leakage audit", "health model", "close-date model", "stage labels", "stage model"]


class _Stopwatch:
    """Seconds per step, and a progress bar over the steps of one pass."""

    def __init__(self, description: str, progress: bool) -> None:
        self.seconds: dict[str, float] = {}
        self.last = time.perf_counter()
        self.bar = tqdm(total=len(STEPS), desc=description, unit="step", disable=not progress)
        self.bar.set_postfix_str(STEPS[0])

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self.last
        self.last = now
        logger.info("%s: %.1f s", name, self.seconds[name])
        self.bar.update(1)
        following = STEPS.index(name) + 1
        self.bar.set_postfix_str(STEPS[following] if following < len(STEPS) else "done")
        if following == len(STEPS):
            self.bar.close()


def fit_baseline_models(
    tables: dict[str, pd.DataFrame], train: pd.DataFrame, features: pd.DataFrame, until: pd.Timestamp
) -> tuple[dict[str, object], dict[str, object]]:
    """The customer's baselines for health and close dates, fitted on the training rows."""
    durations, events = snapshot_outcomes(tables, train, until=until)
    matured = followup_days(tables, train, until) >= HORIZON
    y = won_within_days(durations, events, HORIZON).astype(int)
    health = fit_baselines(features[matured], y[matured])
    closedate = {
        "Aalen-Johansen": AalenJohansen().fit(None, durations, events),
        "未成交=未赢 open = not won": OpenIsNotWon().fit(features, durations, events),
    }
    return health, closedate


def score_holdout(artifact: LeadArtifact, baselines: dict[str, object], test: pd.DataFrame, x_test) -> Holdout:
    """The health model and the baselines on the matured test snapshots."""
    keep = test["matured"].to_numpy()
    x, snaps = x_test[keep].reset_index(drop=True), test[keep].reset_index(drop=True)
    scores = {MODEL_NAME: artifact.predict_features(x)}
    scores |= {name: model.predict_proba(x) for name, model in baselines.items()}
    return Holdout(snaps[["lead_id", "as_of"]], snaps["won_within"].to_numpy(int), scores, x)


def split_at_cutoff(snapshots: pd.DataFrame) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """The cutoff where time_split's test period begins, the snapshots before it and those from it on."""
    _, test_mask = time_split(snapshots)
    cutoff = snapshots.loc[test_mask, "as_of"].min()
    before = (snapshots["as_of"] < cutoff).to_numpy()
    return cutoff, snapshots[before].reset_index(drop=True), snapshots[~before].reset_index(drop=True)


def train_models(
    tables: dict[str, pd.DataFrame],
    *,
    intent_labels: str | Path | None = None,
    intent_label_set: str | Path | None = None,
    progress: bool = True,
    refit: bool = True,
    client=None,
) -> TrainingResult:
    """Evaluation pass on a time split, then the served pass on all history (`refit=False` serves the
    evaluated models instead: quicker, for experiments and tests). `client`: a Dask client to compute
    features and the health model on (see fit_all)."""
    intent, intent_metrics = None, None
    if intent_labels is not None:
        from training.intent import train_intent

        intent, intent_metrics = train_intent(intent_labels, labels=intent_label_set)
    snapshots = make_snapshots(tables)
    cutoff, train, test = split_at_cutoff(snapshots)
    if len(test) < 50 or len(train) < 100:
        raise ValueError(
            f"too little history to train: {len(snapshots)} snapshots, {len(test)} in the test period "
            "(need at least 100 before it and 50 in it); export more leads or a longer period"
        )

    candidate = fit_all(tables, train, cutoff, intent, progress, "evaluation pass (time split)", client)
    if client is not None:
        from leadscore.scaleout import transform_on_dask

        x_test, texts_test = transform_on_dask(client, candidate.artifact.pipeline, tables, test)
    else:
        x_test, texts_test, _ = candidate.artifact.pipeline.transform_with_details(tables, test)
    health_baselines, closedate_baselines = fit_baseline_models(tables, train, candidate.features, cutoff)
    holdout = score_holdout(candidate.artifact, health_baselines, test, x_test)
    evaluation = holdout_report(candidate.artifact, holdout, closedate_baselines, tables, test, x_test, texts_test)
    evaluation["audit"] = candidate.audit
    if intent_metrics is not None:
        evaluation["intent"] = {
            "metrics": _intent_summary(intent_metrics),
            "confusion": pd.DataFrame(intent_metrics["confusion"]).T,
        }

    if refit:
        served = fit_all(tables, snapshots, export_time(tables), intent, progress, "served pass (all history)", client)
    else:
        served = candidate
    metrics = flat_metrics(evaluation)
    metrics |= {"train_snapshots": float(len(train)), "test_snapshots": float(len(test))}
    metrics |= {"audit_flagged": float(candidate.audit["flagged"].sum())}
    served.artifact.metrics = metrics
    metrics |= {f"seconds_{k.replace(' ', '_')}": v for k, v in candidate.seconds.items()}
    params = {**PARAMS, "cutoff": cutoff.isoformat(), "refit_on_all_history": refit}
    params["served_snapshots"] = len(snapshots) if refit else len(train)
    return TrainingResult(served.artifact, metrics, params, evaluation, holdout, intent_metrics)


def _intent_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in ("confusion", "per_label")}


def holdout_report(
    artifact: LeadArtifact,
    holdout: Holdout,
    closedate_baselines: dict[str, object],
    tables: dict[str, pd.DataFrame],
    test: pd.DataFrame,
    x_test: pd.DataFrame,
    texts_test: SnapshotTexts,
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
    closedate_models = {CLOSEDATE_NAME: artifact.closedate, **closedate_baselines}
    closedate_metrics = {
        name: evaluate_closedate(model, x_test, durations, events, follow) for name, model in closedate_models.items()
    }
    stage_labels_test = stage_labels(tables, test)
    confirmed = stage_labels_test.notna().to_numpy()
    stage = {}
    if confirmed.any():
        from training.stage import evaluate_stage

        predicted = artifact.stage.predict(x_test[confirmed], _subset(texts_test, confirmed))
        stage_eval = evaluate_stage(
            predicted["inferred_stage"], stage_labels_test[confirmed], predicted["recorded_stage"]
        )
        stage = {
            "metrics": {k: v for k, v in stage_eval.items() if k != "confusion"},
            "confusion": stage_eval["confusion"],
        }
    sample = np.random.default_rng(0).permutation(len(holdout.features))[:2000]
    contributions = artifact.health.booster.predict(
        holdout.features.iloc[sample][artifact.health.booster.feature_name()], pred_contrib=True
    )
    evaluation = {
        "health": health,
        "closedate": {"table": closedate_table(closedate_metrics), "metrics": closedate_metrics},
        "shap": {
            "contributions": contributions[:, :-1],
            "features": holdout.features.iloc[sample].reset_index(drop=True),
        },
    }
    if stage:
        evaluation["stage"] = stage
    evaluation["comparison"] = compare_models(holdout.y, holdout.scores, model=model_name)
    return evaluation


def _subset(texts: SnapshotTexts, mask: np.ndarray) -> SnapshotTexts:
    return SnapshotTexts(texts.form[mask].reset_index(drop=True), texts.notes[mask].reset_index(drop=True))


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
    out["best_baseline_auc"] = float(max(auc for n, auc in aucs.items() if n in BASELINES))
    out["auc_gain_over_best_baseline"] = out["test_auc"] - out["best_baseline_auc"]
    for i, name in enumerate(BASELINES):
        out[f"baseline_{i + 1}_auc"] = float(aucs[name])
    ablations = [auc for n, auc in aucs.items() if n not in BASELINES]
    if ablations:
        out["ablation_logistic_all_features_auc"] = float(max(ablations))
    for days in (30, 60, 90):
        figures = evaluation["closedate"]["metrics"][CLOSEDATE_NAME][f"h{days}"]
        out[f"closedate_auc_{days}d"] = float(figures["auc"])
        out[f"closedate_ece_{days}d"] = float(figures["ece"])
    out["closedate_c_index"] = float(evaluation["closedate"]["metrics"][CLOSEDATE_NAME]["c_index_90"])
    if "stage" in evaluation:
        out["stage_macro_f1_confirmed"] = float(evaluation["stage"]["metrics"]["macro_f1"])
    if "intent" in evaluation:
        out["intent_cv_accuracy"] = float(evaluation["intent"]["metrics"]["accuracy"])
        out["intent_cv_macro_f1"] = float(evaluation["intent"]["metrics"]["macro_f1"])
    return out
