"""MLflow tracking and registry (SQLite store by default) and the hand-over to BentoML's model store."""

from __future__ import annotations

import json
import logging
import pickle
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from models.artifact import ArtifactError, LeadArtifact
from models.champion import CHAMPION, load_champion
from models.integrity import DIGEST_TAG, model_digest
from models.pyfunc import LeadPyfunc
from models.settings import Settings
from training.gate import GateDecision
from training.report import build_report
from training.train import TrainingResult

logger = logging.getLogger(__name__)

EXPERIMENT = "leadscore"
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


def experiment(settings: Settings, name: str = EXPERIMENT) -> str:
    """The experiment's id, created with its artifacts under LEADSCORE_HOME (not the working directory)."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    existing = mlflow.get_experiment_by_name(name)
    if existing:
        return existing.experiment_id
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(name, artifact_location=(settings.artifact_root / name).as_uri())


def current_champion(settings: Settings) -> LeadArtifact | None:
    """The registry's champion, or None if there is none yet (or it cannot be loaded any more)."""
    try:
        return load_champion(settings)
    except MlflowException:
        return None
    except ArtifactError as exc:  # built by an older feature set: the new model may replace it
        logger.warning("the current champion cannot be loaded (%s); it is treated as absent", exc)
        return None


def log_and_register(
    result: TrainingResult, settings: Settings, data_description: str, gate: GateDecision
) -> tuple[str, str]:
    """Log params, metrics, the report with its plots, the leakage audit, the gate's decision and the pyfunc
    artifact; register it, and make it champion only if the gate promoted it. Returns (run_id, version)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    experiment_id = experiment(settings)
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
        mlflow.set_tags({"gate.decision": gate.decision, "gate.promote": str(gate.promote)})
        mlflow.log_dict(gate.as_dict(), "gate.json")
        if card := result.artifact.card:  # how the health model was chosen (training/selection.py)
            mlflow.log_dict(card, "selection.json")
            mlflow.set_tag("health.family", card["family"])
        audit = result.evaluation.get("audit")
        if audit is not None:
            mlflow.log_text(audit.to_csv(index=False), "leakage_audit.csv")
        sections = {**result.evaluation, "gate": gate.as_dict(), "data": data_description}
        title = f"leadscore 训练评估 (时间切分留出集) {settings.model_name}, run {run.info.run_id}"
        report = build_report({"title": title, **sections}, Path(tmp) / "report")
        mlflow.log_artifacts(str(report.html.parent), "report")
        artifact_dir = result.artifact.save(Path(tmp) / "leadscore")
        pyfunc = LeadPyfunc()
        pyfunc.artifact = result.artifact
        output_example = pyfunc.predict(None, INPUT_EXAMPLE)
        info = mlflow.pyfunc.log_model(
            name="leadscore",
            python_model=LeadPyfunc(),
            artifacts={"leadscore": str(artifact_dir)},
            signature=infer_signature(INPUT_EXAMPLE, output_example),
            input_example=INPUT_EXAMPLE,
            registered_model_name=settings.model_name,
        )
    version = str(info.registered_model_version)
    # The digest of the model's files as the registry stores them: what every loader checks first.
    client = MlflowClient(settings.tracking_uri)
    stored = mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}/{version}")
    client.set_model_version_tag(settings.model_name, version, DIGEST_TAG, model_digest(stored))
    if gate.promote:
        MlflowClient(settings.tracking_uri).set_registered_model_alias(settings.model_name, CHAMPION, version)
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
            DIGEST_TAG: version.tags.get(DIGEST_TAG, ""),
        },
    )
    return str(bento_model.tag)


def log_flat_run(result, settings: Settings) -> str:
    """A flat-export training run (its metrics, audit and fitted model) in its own MLflow experiment. It is
    not registered: the scoring service serves CRM exports, not flat tables."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with mlflow.start_run(experiment_id=experiment(settings, f"{EXPERIMENT}-flat")) as run:
        config = result.config if isinstance(result.config, dict) else result.config.to_dict()
        mlflow.log_params({"config": json.dumps(config, ensure_ascii=False, default=str)[:5000]})
        mlflow.log_metrics({k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)})
        mlflow.log_text(result.audit.to_csv(index=False), "leakage_audit.csv")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "flat_model.pkl"
            path.write_bytes(pickle.dumps(result.model))
            mlflow.log_artifact(str(path))
    return run.info.run_id
