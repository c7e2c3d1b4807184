"""Training every model, the publish gate, MLflow (runs, report, registry), on the seed-11 test world; the oracle
comparison on an unseen seed. The champion's evaluation report (`leadscore evaluate`) is checked where the quality
bars evaluate it: test_quality_bars.py."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from leadscore.tools.simulator import simulate
from tests.helpers import EMAIL, PHONE, personal_data_in, scanned_files
from training.oracle import compare_with_oracle
from training.registry import CHAMPION, INPUT_EXAMPLE, load_champion


def test_time_held_out_figures_are_useful_and_beat_the_customer_baselines(trained) -> None:
    metrics = trained["result"].metrics
    assert metrics["test_auc"] >= 0.78, metrics
    assert metrics["test_snapshots"] >= 500
    assert metrics["auc_gain_over_best_baseline"] > 0.0, metrics  # rule formula, naive Bayes, logistic
    for days in (30, 60, 90):  # the competing-risks model ranks, Aalen-Johansen (no covariates) cannot
        assert metrics[f"closedate_auc_{days}d"] >= 0.75, metrics
    assert metrics["stage_macro_f1_confirmed"] >= 0.75 and metrics["intent_cv_accuracy"] >= 0.9, metrics
    assert trained["gate"].promote, trained["gate"].reasons  # no champion yet: baselines decide


def test_served_answer_carries_every_model(trained, tables) -> None:
    import pandas as pd

    artifact = trained["result"].artifact
    leads = tables["leads"]["lead_id"].iloc[:30]
    snaps = pd.DataFrame({"lead_id": leads, "as_of": tables["leads"]["created_at"].iloc[:30] + pd.Timedelta(days=20)})
    for answer in (a.model_dump() for a in artifact.score_tables(tables, snaps.reset_index(drop=True))):
        close = answer["close_date"]
        assert 0 <= close["won_within_30d"] <= close["won_within_60d"] <= close["won_within_90d"] <= 1
        # one quantity, one number: the close-date curve is anchored to the calibrated health model
        assert close["won_within_90d"] == pytest.approx(answer["win_probability"], abs=2e-4)
        assert sum(answer["stage"]["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert answer["stage"]["inferred"] in answer["stage"]["probabilities"]
        assert answer["intent"]["intent"] in answer["intent"]["probabilities"]


def test_gate_keeps_the_champion_against_a_worse_candidate(trained, tables) -> None:
    from training.gate import publish_gate
    from training.train import MODEL_NAME

    holdout = trained["result"].holdout
    scores = holdout.gate_scores()
    baseline = next(name for name in scores if name != MODEL_NAME)
    worse = {**scores, MODEL_NAME: scores[baseline] + 1e-9 * np.arange(len(holdout.y))}  # a baseline in disguise
    champion = load_champion(trained["settings"])
    decision = publish_gate(holdout.y, worse, MODEL_NAME, champion, tables, holdout.snapshots)
    assert not decision.promote and decision.decision == "kept champion"
    assert any("未胜过" in reason for reason in decision.reasons), decision.reasons
    # The champion trained on these very leads, so the gate compares recorded holdout figures and says so.
    assert any("recorded holdout" in reason for reason in decision.reasons), decision.reasons


@pytest.fixture(scope="module")
def held_out_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("heldout") / "export"
    simulate(3500, 99, out, story="classic", progress=False)
    return out


def test_against_the_oracle_on_an_unseen_seed(trained, held_out_world: Path) -> None:
    figures = compare_with_oracle(load_champion(trained["settings"]), held_out_world)
    print(f"models vs oracle on seed 99: {figures}")
    assert figures["snapshots"] >= 200
    assert figures["model_auc"] >= 0.70
    assert figures["model_auc"] < figures["oracle_auc"], "a model beating the oracle would mean leakage"


def test_mlflow_holds_run_metrics_and_champion(trained) -> None:
    settings = trained["settings"]
    assert settings.tracking_uri.startswith("sqlite:///")
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["test_auc"] == pytest.approx(trained["result"].metrics["test_auc"])
    assert run.data.params["feature_set_version"] == trained["result"].artifact.feature_set_version
    champion = client.get_model_version_by_alias(settings.model_name, CHAMPION)
    assert str(champion.version) == trained["version"] and champion.run_id == trained["run_id"]
    assert run.data.tags["gate.decision"] == "promoted (first model)"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"gate.json", "leakage_audit.csv", "report"} <= artifacts, artifacts
    report = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert "report/report.html" in report and any(p.endswith(".png") for p in report), report
    mlflow.set_tracking_uri(settings.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{CHAMPION}")
    assert model.metadata.get_input_schema() is not None, "logged with a signature"
    answer = model.predict(INPUT_EXAMPLE)
    assert {"health_score", "tier", "inferred_stage", "won_within_90d", "intent"} <= set(answer.columns)


def test_mlflow_artifacts_hold_no_personal_data(trained) -> None:
    assert PHONE.search("电话13812345678。") and PHONE.search("0571-88889999") and EMAIL.search("a.b@qq.com")
    assert not PHONE.search("gain 11.18219833076")
    root = trained["settings"].artifact_root
    files = scanned_files(root)
    assert any(p.name == "report.html" for p in files), "the report is among the scanned files"
    assert personal_data_in(files, root) == []
