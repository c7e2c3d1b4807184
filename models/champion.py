"""The registry's champion, loaded for scoring (the service's reload and batch scoring use it)."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from models.artifact import LeadArtifact
from models.integrity import DIGEST_TAG, verify_model
from models.settings import Settings

CHAMPION = "champion"  # the registry alias the publish gate moves


def champion_version(settings: Settings) -> str:
    """The registry version the champion alias points at now."""
    return str(MlflowClient(settings.tracking_uri).get_model_version_by_alias(settings.model_name, CHAMPION).version)


def load_champion(settings: Settings) -> LeadArtifact:
    """The registry's champion as an artifact, its model_version naming the registry version; its files are
    checked against the digest the registry recorded before they are loaded."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    version = champion_version(settings)
    local = mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}/{version}")
    tags = MlflowClient(settings.tracking_uri).get_model_version(settings.model_name, version).tags
    verify_model(local, tags.get(DIGEST_TAG), f"the registry ({settings.model_name} version {version})")
    model = mlflow.pyfunc.load_model(local)
    artifact = model.unwrap_python_model().artifact
    artifact.model_version = f"{settings.model_name}/{version}"
    return artifact
