"""The skeleton health model: honest time-held-out quality, measured against the oracle on an unseen seed."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from leadscore.simulator import simulate
from training.oracle import compare_with_oracle
from training.registry import CHAMPION, load_champion

PHONE = re.compile(r"(?<![\d.])1[3-9]\d{9}(?!\d)|(?<![\d.])0\d{2,3}-\d{7,8}(?!\d)")  # not the digits of a decimal
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def test_time_held_out_auc_is_useful(trained) -> None:
    metrics = trained["result"].metrics
    assert metrics["test_auc"] >= 0.72, metrics
    assert metrics["test_snapshots"] >= 500


@pytest.fixture(scope="module")
def held_out_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("heldout") / "export"
    simulate(4000, 99, out, progress=False)
    return out


def test_against_the_oracle_on_an_unseen_seed(trained, held_out_world: Path) -> None:
    figures = compare_with_oracle(load_champion(trained["settings"]), held_out_world)
    print(f"skeleton vs oracle on seed 99: {figures}")
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
    mlflow.set_tracking_uri(settings.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{CHAMPION}")
    assert model.metadata.get_input_schema() is not None, "logged with a signature"


def test_mlflow_artifacts_hold_no_personal_data(trained) -> None:
    assert PHONE.search("电话13812345678。") and PHONE.search("0571-88889999") and EMAIL.search("a.b@qq.com")
    assert not PHONE.search("gain 11.18219833076")
    root = trained["settings"].artifact_root
    files = {p: p.read_bytes().decode("utf-8", errors="ignore") for p in root.rglob("*") if p.is_file()}
    assert files
    leaks = [
        (str(p.relative_to(root)), t[max(m.start() - 60, 0) : m.end() + 20])
        for p, t in files.items()
        for m in [*PHONE.finditer(t), *EMAIL.finditer(t)]
    ]
    assert leaks == []
