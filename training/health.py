"""The health model: P(won within 90 days of as_of), trained on point-in-time snapshots."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from tqdm.auto import tqdm

from features.catalogue import FEATURES
from features.pipeline import FeaturePipeline
from features.snapshots import make_snapshots
from leadscore.artifact import HealthArtifact

PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 2,
    "seed": 0,
}
NUM_ROUNDS = 300


@dataclass
class TrainingResult:
    artifact: HealthArtifact
    metrics: dict[str, float]
    params: dict[str, object]


def time_split(
    snapshots: pd.DataFrame, test_share: float = 0.2, horizon_days: int = 90
) -> tuple[np.ndarray, np.ndarray]:
    """Train on snapshots whose whole label horizon ends before the test period starts; test on the last share."""
    matured = snapshots[snapshots["matured"]]
    cutoff = matured["as_of"].quantile(1 - test_share)
    train = (snapshots["matured"] & (snapshots["as_of"] + pd.Timedelta(days=horizon_days) <= cutoff)).to_numpy()
    test = (snapshots["matured"] & (snapshots["as_of"] >= cutoff)).to_numpy()
    return train, test


def code_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| over equal-width probability bins, weighted by the bins' sizes."""
    edges = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    frame = (
        pd.DataFrame({"bin": edges, "p": p, "y": y})
        .groupby("bin")
        .agg(p=("p", "mean"), y=("y", "mean"), n=("y", "size"))
    )
    return float((frame["n"] * (frame["p"] - frame["y"]).abs()).sum() / len(p))


def train_health(tables: dict[str, pd.DataFrame], *, progress: bool = True) -> TrainingResult:
    """Snapshots -> features (fitted on the training period only) -> LightGBM, evaluated on a later period.
    Not yet calibrated: a time-held-out isotonic step made test ECE worse on the simulator (issue 4)."""
    snapshots = make_snapshots(tables)
    train, test = time_split(snapshots)
    if train.sum() < 100 or test.sum() < 50:
        raise ValueError(
            f"too little history to train: {int(train.sum())} training and {int(test.sum())} test snapshots "
            "(need at least 100 and 50); export more leads or a longer period"
        )
    y = snapshots["won_within"].to_numpy(int)
    train_snaps = snapshots[train].reset_index(drop=True)
    test_snaps = snapshots[test].reset_index(drop=True)
    pipeline = FeaturePipeline()
    x_train = pipeline.fit_transform(tables, train_snaps, y[train])
    x_test = pipeline.transform(tables, test_snaps)
    bar = tqdm(total=NUM_ROUNDS, desc="training health model", disable=not progress, unit="tree")
    booster = lgb.train(
        PARAMS,
        lgb.Dataset(x_train[FEATURES], y[train]),
        num_boost_round=NUM_ROUNDS,
        callbacks=[lambda env: bar.update(1)],
    )
    bar.close()
    artifact = HealthArtifact(booster, pipeline, code_revision=code_revision())
    p_test, y_test = artifact.predict_features(x_test), y[test]
    metrics = {
        "test_auc": float(roc_auc_score(y_test, p_test)),
        "test_pr_auc": float(average_precision_score(y_test, p_test)),
        "test_brier": float(np.mean((p_test - y_test) ** 2)),
        "test_ece": expected_calibration_error(p_test, y_test),
        "test_mean_prediction": float(p_test.mean()),
        "test_positive_rate": float(y_test.mean()),
        "train_snapshots": float(train.sum()),
        "test_snapshots": float(test.sum()),
    }
    artifact.metrics = metrics
    return TrainingResult(artifact, metrics, {**PARAMS, "num_rounds": NUM_ROUNDS})
