"""MLflow tracking and registry (SQLite store by default) and the hand-over to BentoML's model store."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from leadscore.artifact import HealthArtifact, HealthPyfunc
from leadscore.settings import Settings
from training.health import TrainingResult

EXPERIMENT = "leadscore"
CHAMPION = "champion"
# The input example is public: it goes into the MLflow artifact, so it holds no real personal data.
INPUT_EXAMPLE = pd.DataFrame(
    [
        {
            "lead_id": "example-1",
            "as_of": "2026-06-01T10:00:00+08:00",
            "created_at": "2026-05-20T09:30:00+08:00",
            "channel": "官网表单",
            "industry": "医疗器械",
            "customer_type": "终端用户",
            "province": "浙江",
            "company_size": 300.0,
            "budget_cny": 800000.0,
            "form_text": "想询问DR设备报价，预算80万左右",
            "web_events": json.dumps(
                [{"ts": "2026-05-28T15:00:00+08:00", "event_type": "page_view", "page_category": "pricing"}],
                ensure_ascii=False,
            ),
            "activities": "[]",
            "stage_changes": json.dumps([{"ts": "2026-05-21T10:00:00+08:00", "stage": "需求确认"}], ensure_ascii=False),
        }
    ]
)


def _experiment(settings: Settings) -> str:
    mlflow.set_tracking_uri(settings.tracking_uri)
    existing = mlflow.get_experiment_by_name(EXPERIMENT)
    if existing:
        return existing.experiment_id
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(EXPERIMENT, artifact_location=settings.artifact_root.as_uri())


def log_and_register(result: TrainingResult, settings: Settings, data_description: str) -> tuple[str, str]:
    """Log params, metrics and the pyfunc artifact; register it and make it champion. Returns (run_id, version)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    experiment_id = _experiment(settings)
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({k: v for k, v in result.params.items()})
        mlflow.log_params(
            {
                "data": data_description,
                "feature_set_version": result.artifact.feature_set_version,
                "code_revision": result.artifact.code_revision,
            }
        )
        mlflow.log_metrics(result.metrics)
        artifact_dir = result.artifact.save(Path(tmp) / "health")
        pyfunc = HealthPyfunc()
        pyfunc.artifact = result.artifact
        output_example = pyfunc.predict(None, INPUT_EXAMPLE)
        info = mlflow.pyfunc.log_model(
            name="health",
            python_model=HealthPyfunc(),
            artifacts={"health": str(artifact_dir)},
            signature=infer_signature(INPUT_EXAMPLE, output_example),
            input_example=INPUT_EXAMPLE,
            registered_model_name=settings.model_name,
        )
    version = str(info.registered_model_version)
    client = MlflowClient(settings.tracking_uri)
    client.set_registered_model_alias(settings.model_name, CHAMPION, version)
    return run.info.run_id, version


def import_champion_to_bentoml(settings: Settings) -> str:
    """Copy the registry's champion into BentoML's model store; returns the BentoML tag."""
    import bentoml

    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    version = client.get_model_version_by_alias(settings.model_name, CHAMPION)
    bento_model = bentoml.mlflow.import_model(
        settings.model_name,
        f"models:/{settings.model_name}@{CHAMPION}",
        labels={"registry_version": str(version.version)},
        metadata={
            "mlflow_model": settings.model_name,
            "mlflow_version": str(version.version),
            "mlflow_run_id": version.run_id,
        },
    )
    return str(bento_model.tag)


def load_champion(settings: Settings) -> HealthArtifact:
    """The registry's champion as an artifact (for evaluation and batch work in the training side)."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{CHAMPION}")
    artifact = model.unwrap_python_model().artifact
    version = MlflowClient(settings.tracking_uri).get_model_version_by_alias(settings.model_name, CHAMPION)
    artifact.model_version = f"{settings.model_name}/{version.version}"
    return artifact
