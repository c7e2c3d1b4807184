"""`leadscore evaluate`: the champion on an export it was not trained on.

A time split of that export: the baselines are fitted on its earlier part, and champion and baselines are
judged on its later part. On a simulated export (with truth/) the oracle, the true stage and the true
intent are added: the gap to the oracle is the headline figure.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from features.contract import load_export
from features.labels import followup_days, snapshot_outcomes
from features.snapshots import make_snapshots
from models.artifact import LeadArtifact
from models.settings import Settings
from training.baselines import OdooScoring
from training.closedate import compare_closedate_with_oracle, evaluate_closedate
from training.metrics import expected_calibration_error
from training.next_actions import evaluate_next_actions
from training.oracle import compare_with_oracle
from training.report import build_report
from training.selection import judge_candidates
from training.split import time_split
from training.train import CLOSEDATE_NAME, fit_baseline_models, flat_metrics, holdout_report, score_holdout

EXPERIMENT = "leadscore-evaluation"


ORACLE_PARTS = ("health", "closedate", "stage", "intent", "next_actions")


def evaluate_artifact(
    artifact: LeadArtifact, data_dir: str | Path, oracle_parts: tuple[str, ...] = ORACLE_PARTS
) -> dict[str, Any]:
    """The report's sections and flat metrics for `artifact` on the export at `data_dir`; on a simulated
    export also the comparisons with the truth named in `oracle_parts`."""
    tables = load_export(data_dir).tables
    snapshots = make_snapshots(tables)
    split = time_split(tables, snapshots)
    cutoff, train, test = split.cutoff, split.train, split.test
    x_train = artifact.pipeline.transform(tables, train)
    x_test = artifact.pipeline.transform(tables, test, details=True)
    health_baselines, closedate_baselines = fit_baseline_models(tables, train, x_train, cutoff)
    holdout = score_holdout(artifact, health_baselines, test, x_test, OdooScoring().fit(tables, cutoff))
    evaluation = holdout_report(artifact, holdout, closedate_baselines, tables, test, x_test)
    fit_rows = train["matured"].to_numpy()
    judged = judge_candidates(
        x_train[fit_rows], train.loc[fit_rows, "won_within"].to_numpy(int), holdout.features, holdout.y
    )
    evaluation["selection"] = {"card": artifact.card or {"family": artifact.health.family, "note": ""},
                               "table": judged, "title": "每个候选模型在本数据上 every candidate on this export"}  # fmt: skip
    metrics = flat_metrics(evaluation)
    metrics |= {f"candidate_auc_{row.key}": row.auc for row in judged.itertuples()}
    # Calibration over every matured snapshot (all lead ages, the largest sample), beside the later period's.
    everything = pd.concat(
        [x_train[train["matured"].to_numpy()], x_test.loc[test["matured"].to_numpy(), x_train.columns]]
    )
    y_all = np.r_[train.loc[train["matured"], "won_within"], test.loc[test["matured"], "won_within"]].astype(int)
    metrics["ece_all_matured"] = expected_calibration_error(artifact.predict_features(everything), y_all)
    metrics["matured_snapshots"] = float(len(y_all))
    both = pd.concat([train, test], ignore_index=True)
    x_both = pd.concat([x_train, x_test[x_train.columns]], ignore_index=True)
    durations, events = snapshot_outcomes(tables, both)
    closedate = artifact.models["close_date"]
    closedate_all = evaluate_closedate(closedate, x_both, durations, events, followup_days(tables, both))
    for days in (30, 60, 90):
        metrics[f"closedate_ece_all_{days}d"] = float(closedate_all[f"h{days}"]["ece"])
    headline = [
        f"健康分模型 AUC {metrics['test_auc']:.3f}，比最好的基准高 {metrics['auc_gain_over_best_baseline']:+.3f}；"
        f"校准误差 ECE {metrics['test_ece']:.3f} (后期), {metrics['ece_all_matured']:.3f} (全部 {len(y_all)} 个已到期快照)",
        "成交时间校准误差 ECE (全部已到期快照) "
        + " / ".join(f"{d}天 {metrics[f'closedate_ece_all_{d}d']:.3f}" for d in (30, 60, 90)),
    ]
    if "odoo_pls_auc" in metrics:
        verdict = "胜过" if metrics["auc_gain_over_odoo"] > 0 else "未胜过"
        headline.append(f"{verdict} Odoo 内置的预测线索评分: AUC {metrics['test_auc']:.3f} vs "
                        f"{metrics['odoo_pls_auc']:.3f} ({metrics['auc_gain_over_odoo']:+.3f})")  # fmt: skip
    if (Path(data_dir) / "truth").is_dir():
        headline += _oracle_sections(artifact, data_dir, tables, test, x_test, evaluation, metrics, oracle_parts)
    evaluation["headline"] = headline
    return {"evaluation": evaluation, "metrics": metrics, "headline": headline}


def _oracle_sections(artifact, data_dir, tables, test, x_test, evaluation, metrics, parts) -> list[str]:
    """Simulated exports only: the oracle, the true stage and the true intent (evaluation only)."""
    from training.intent import evaluate_on_world
    from training.stage import evaluate_stage, true_stage_at

    lines = []
    if "health" in parts:
        oracle = compare_with_oracle(artifact, data_dir)
        evaluation["oracle"] = oracle
        metrics |= {f"oracle_{k}": float(v) for k, v in oracle.items()}
        lines.append(
            f"健康分: 达到上帝视角(oracle)的 {oracle['oracle_share']:.0%} "
            f"(AUC {oracle['model_auc']:.3f} vs oracle {oracle['oracle_auc']:.3f}, {oracle['snapshots']} 个快照)"
        )
    if "closedate" in parts:
        closedate = compare_closedate_with_oracle(
            {CLOSEDATE_NAME: artifact.models["close_date"]}, artifact.pipeline, data_dir
        )
        for days in (30, 60, 90):
            h = closedate[CLOSEDATE_NAME][f"h{days}"]
            metrics[f"closedate_oracle_share_{days}d"] = float(h["oracle_share"])
            metrics[f"closedate_oracle_ece_{days}d"] = float(h["ece"])
            metrics[f"closedate_oracle_own_ece_{days}d"] = float(h["oracle_ece"])  # the noise floor on these rows
        lines.append(
            "成交时间: oracle 份额 "
            + " / ".join(f"{d}天 {metrics[f'closedate_oracle_share_{d}d']:.0%}" for d in (30, 60, 90))
        )
        evaluation["closedate"]["oracle"] = closedate
    if "stage" in parts and "stage" in artifact.models:
        true_stage = true_stage_at(data_dir, test).reset_index(drop=True)
        predicted = artifact.models["stage"].predict(x_test)
        stage = evaluate_stage(predicted["inferred_stage"], true_stage, predicted["recorded_stage"])
        evaluation["stage"] = {
            "metrics": {k: v for k, v in stage.items() if k != "confusion"},
            "confusion": stage["confusion"],
        }
        metrics |= {"stage_macro_f1_true": stage["macro_f1"], "stage_mismatch_f1_true": stage["mismatch_f1"]}
        lines.append(f"真实阶段: macro-F1 {stage['macro_f1']:.3f}，阶段不符识别 F1 {stage['mismatch_f1']:.3f}")
    if "intent" in parts and "intent" in artifact.models:
        intent = evaluate_on_world(artifact.models["intent"], data_dir)
        evaluation["intent"] = {
            "metrics": {
                f"{part} {k}": v
                for part, m in intent.items()
                for k, v in m.items()
                if k in ("accuracy", "macro_f1", "n")
            },
            "confusion": pd.DataFrame(intent["non_empty"]["confusion"]).T,
        }
        metrics |= {
            "intent_accuracy_non_empty": intent["non_empty"]["accuracy"],
            "intent_accuracy_all": intent["all_leads"]["accuracy"],
        }
        lines.append(
            f"意图: 有表单文本的线索准确率 {intent['non_empty']['accuracy']:.3f}，全部线索 {intent['all_leads']['accuracy']:.3f}"
        )
    if "next_actions" in parts and (Path(data_dir) / "truth" / "counterfactuals.parquet").exists():
        actions = evaluate_next_actions(artifact, data_dir)
        metrics |= {f"nextaction_{k}": v for k, v in actions.items()}
        lines.append(
            f"下一步行动(真实反事实): 胜率 {actions['win_rate_leadscore']:.4f}，仅按规则 {actions['win_rate_rules_only']:.4f}，"
            f"oracle {actions['win_rate_oracle']:.4f}，不行动 {actions['win_rate_no_action']:.4f}"
        )
    return lines


def evaluate_champion(settings: Settings, data_dir: str | Path) -> dict[str, Any]:
    """Evaluate the registry's champion, write the HTML report and log it all to MLflow."""
    from training.registry import experiment, load_champion

    champion = load_champion(settings)
    result = evaluate_artifact(champion, data_dir)
    out_dir = settings.home / "reports" / time.strftime("%Y%m%d-%H%M%S")
    report = build_report({"title": f"leadscore 模型评估 {champion.model_version}", "data": str(data_dir),
                           **result["evaluation"]}, out_dir)  # fmt: skip
    with mlflow.start_run(experiment_id=experiment(settings, EXPERIMENT)) as run:
        mlflow.log_params({"model_version": champion.model_version, "data": str(Path(data_dir).resolve())})
        mlflow.log_metrics({k: float(v) for k, v in result["metrics"].items() if np.isfinite(v)})
        mlflow.log_artifacts(str(out_dir), "report")
    return {"headline": result["headline"], "report": str(report.html), "run_id": run.info.run_id, **result}
