"""Flat exports (issue 4, item 10): config checks, the leakage audit and the honest CV figures on the real
X Education table (../shared/data/xeducation/Leads.csv, never edited)."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.audit import leakage_audit
from training.flat import FlatConfigError, train_flat

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "xeducation.json"
LEADS = REPO.parent / "shared" / "data" / "xeducation" / "Leads.csv"
LEAKY = json.loads(CONFIG.read_text())["exclude"]
needs_leads = pytest.mark.skipif(not LEADS.is_file(), reason=f"real data not present at {LEADS}")


@pytest.fixture(scope="session")
def flat_result():
    return train_flat(CONFIG, progress=False)


@pytest.fixture(scope="session")
def leads() -> tuple[pd.DataFrame, np.ndarray]:
    table = pd.read_csv(LEADS).replace("Select", np.nan)
    return table.drop(columns=["Prospect ID", "Lead Number", "Converted"]), table["Converted"].to_numpy()


# --- config errors -------------------------------------------------------------------------------------------


def _write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "flat.csv"
    frame.to_csv(path, index=False)
    return path


def _config(path: Path, **extra) -> dict:
    return {"path": str(path), "target": "won", "id_columns": ["id"], **extra}


@pytest.fixture
def small(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"id": range(60), "won": rng.integers(0, 2, 60), "x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60)}
    )
    return _write(tmp_path, frame)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FlatConfigError, match="data file not found"):
        train_flat(_config(tmp_path / "nope.csv"), progress=False)
    with pytest.raises(FlatConfigError, match="config file not found"):
        train_flat(tmp_path / "nope.json", progress=False)


def test_absent_target_and_absent_named_column(small: Path) -> None:
    with pytest.raises(FlatConfigError, match="target column 'converted' is not in"):
        train_flat({**_config(small), "target": "converted"}, progress=False)
    with pytest.raises(FlatConfigError, match="Lead Quality"):
        train_flat(_config(small, exclude={"Lead Quality": "after contact"}), progress=False)
    with pytest.raises(FlatConfigError, match="not in flat.csv: y"):
        train_flat(_config(small, numeric=["x", "y"]), progress=False)


def test_target_must_be_binary(tmp_path: Path) -> None:
    path = _write(tmp_path, pd.DataFrame({"id": range(6), "won": [0, 1, 2, 0, 1, 2], "x": range(6)}))
    with pytest.raises(FlatConfigError, match="must be binary"):
        train_flat(_config(path), progress=False)
    path = _write(tmp_path, pd.DataFrame({"id": range(4), "won": ["yes", "no", "yes", "no"], "x": range(4)}))
    with pytest.raises(FlatConfigError, match="must be binary"):
        train_flat(_config(path), progress=False)


def test_empty_table(tmp_path: Path) -> None:
    path = _write(tmp_path, pd.DataFrame({"id": [], "won": [], "x": []}))
    with pytest.raises(FlatConfigError, match="no rows"):
        train_flat(_config(path), progress=False)
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(FlatConfigError, match="empty"):
        train_flat(_config(tmp_path / "blank.csv"), progress=False)


def test_unknown_config_key(small: Path) -> None:
    with pytest.raises(FlatConfigError, match="unknown config keys: excluded"):
        train_flat(_config(small, excluded={"x": "typo"}), progress=False)


# --- leakage audit -------------------------------------------------------------------------------------------


@needs_leads
def test_audit_flags_tags_and_lead_quality(leads) -> None:
    features, y = leads
    audit = leakage_audit(features, y).set_index("feature")
    assert audit.loc["Tags", "flagged"] and audit.loc["Lead Quality", "flagged"]
    assert "filled in after the outcome?" in audit.loc["Tags", "reason"]
    # Lead Quality alone with the honest fields (no Tags to stand out first) is still flagged.
    honest = features.drop(columns=list(LEAKY))
    alone = leakage_audit(honest.assign(**{"Lead Quality": features["Lead Quality"]}), y).set_index("feature")
    assert alone.loc["Lead Quality", "flagged"]
    assert not alone.drop(index="Lead Quality")["flagged"].any()


@needs_leads
def test_audit_flags_nothing_among_honest_fields(leads) -> None:
    features, y = leads
    audit = leakage_audit(features.drop(columns=list(LEAKY)), y).set_index("feature")
    assert not audit["flagged"].any(), audit[audit["flagged"]]
    assert 0.6 < audit.loc["Total Time Spent on Website", "strength"] < 0.9


def test_audit_does_not_flag_many_level_noise() -> None:
    """An id-like categorical with unique levels memorises the label in-sample (AUC 1.0) but not out-of-fold."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 4000)
    frame = pd.DataFrame({"noise_id": [f"k{i}" for i in range(4000)], "few": rng.choice(list("abcdefgh"), 4000)})
    frame["signal"] = y + rng.normal(scale=2.0, size=4000)  # AUC ~0.64
    audit = leakage_audit(frame, y).set_index("feature")
    assert audit.loc["noise_id", "strength"] < 0.55 and not audit["flagged"].any()
    frame["leak"] = np.where(rng.random(4000) < 0.97, y, 1 - y)
    assert leakage_audit(frame, y).set_index("feature").loc["leak", "flagged"]


def test_audit_is_fast_on_a_health_sized_matrix() -> None:
    """The health path runs it on ~139 features x ~50k rows; it must take seconds, not minutes."""
    rng = np.random.default_rng(2)
    n = 50_000
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame(rng.normal(size=(n, 130)), columns=[f"n{i}" for i in range(130)])
    frame.iloc[rng.random(n) < 0.3, :20] = np.nan
    for i in range(9):
        frame[f"c{i}"] = pd.Categorical(rng.choice([f"s{j}" for j in range(10)], n))
    start = time.perf_counter()
    audit = leakage_audit(frame, y)
    assert time.perf_counter() - start < 20 and len(audit) == 139


# --- the honest model on the real table ------------------------------------------------------------------------


@needs_leads
def test_excluded_fields_never_reach_the_model(flat_result) -> None:
    model = flat_result.model
    assert not set(model.input_columns) & set(LEAKY)
    assert not set(model.preprocessor.transform(pd.read_csv(LEADS).head(5)).columns) & set(LEAKY)
    raw = pd.read_csv(LEADS).sample(500, random_state=0)
    scrambled = raw.copy()
    for name in LEAKY:
        scrambled[name] = scrambled[name].sample(frac=1, random_state=1).to_numpy()
    np.testing.assert_array_equal(model.predict_proba(raw), model.predict_proba(scrambled))
    np.testing.assert_array_equal(model.predict_proba(raw), model.predict_proba(raw.drop(columns=list(LEAKY))))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(raw), model.predict_proba(raw))


@needs_leads
def test_flat_result_audit_covers_excluded_columns(flat_result) -> None:
    audit = flat_result.audit.set_index("feature")
    assert audit.loc["Tags", "flagged"] and audit.loc["Lead Quality", "flagged"]
    assert not audit.loc[audit["in_model"], "flagged"].any()


@needs_leads
def test_honest_cv_beats_baselines_and_is_calibrated(flat_result) -> None:
    m = flat_result.metrics
    assert m["oof_ece"] <= 0.02
    assert m["cv_auc_mean"] >= 0.90
    assert m["cv_auc_mean"] > m["baseline_logreg_auc_mean"] and m["cv_auc_mean"] > m["baseline_lgbm_default_auc_mean"]
    assert 0.8 < m["baseline_logreg_auc_mean"] < 0.95  # same folds as the reference figures (0.892)


@needs_leads
@pytest.mark.xfail(
    strict=True, reason="issue bar AUC >= 0.91 not reached honestly: best 5-fold AUC 0.905 (docs/models-flat.md)"
)
def test_honest_cv_meets_issue_bar(flat_result) -> None:
    assert flat_result.metrics["cv_auc_mean"] >= 0.91 and flat_result.metrics["oof_ece"] <= 0.02


@needs_leads
def test_cli_trains_a_flat_export_and_logs_it(capsys, tmp_path: Path) -> None:
    """The command on a sample of the table (`--data` overrides the config's path): the CLI's work, not the
    full cross-validation again (the session fixture measures that)."""
    from leadscore.tools.cli import main

    sample = tmp_path / "leads.csv"
    pd.read_csv(LEADS).sample(1500, random_state=0).to_csv(sample, index=False)
    assert main(["train", "--flat", str(REPO / "configs" / "xeducation.json"), "--data", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "cv_auc_mean" in out and "MLflow run" in out
    assert "leakage audit: Tags (excluded by the config)" in out
    assert "leakage audit: Lead Quality (excluded by the config)" in out
    assert "used by the model!" not in out
