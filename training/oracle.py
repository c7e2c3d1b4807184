"""How close a model comes to the simulator's oracle on the same matured snapshots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from features.contract import load_export
from features.labels import snapshot_outcomes, won_within
from models.artifact import LeadArtifact
from training.metrics import expected_calibration_error


def compare_with_oracle(artifact: LeadArtifact, data_dir: str | Path, horizon_days: int = 90) -> dict[str, float]:
    """Model and oracle AUC and ECE, and oracle share = (model - 0.5) / (oracle - 0.5), for 90-day wins."""
    tables = load_export(data_dir).tables
    snapshots = pd.read_parquet(Path(data_dir) / "truth" / "snapshots.parquet")
    matured = snapshots[snapshots["matured"]].reset_index(drop=True)
    matured["as_of"] = pd.to_datetime(matured["as_of"]).dt.tz_convert("Asia/Shanghai")
    label = won_within(*snapshot_outcomes(tables, matured), horizon_days)
    model = artifact.predict(tables, matured[["lead_id", "as_of"]])
    model_auc = roc_auc_score(label, model)
    oracle_auc = roc_auc_score(label, matured["p_won_90"])
    return {
        "snapshots": len(matured),
        "positive_rate": float(label.mean()),
        "model_auc": float(model_auc),
        "oracle_auc": float(oracle_auc),
        "oracle_share": float((model_auc - 0.5) / (oracle_auc - 0.5)),
        # On this few rows even the oracle's ECE is not 0: its figure is the noise floor for the model's.
        "model_ece": expected_calibration_error(model, label.astype(int)),
        "oracle_ece": expected_calibration_error(matured["p_won_90"].to_numpy(), label.astype(int)),
    }
