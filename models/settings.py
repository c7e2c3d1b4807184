"""Typed settings, built in main() or a constructor from the environment, never at import."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HEALTH_MODEL_NAME = "leadscore-health"


@dataclass(frozen=True)
class Settings:
    home: Path  # where the MLflow store and artifacts live
    model_name: str = HEALTH_MODEL_NAME

    @classmethod
    def from_env(cls) -> Settings:
        return cls(home=Path(os.environ.get("LEADSCORE_HOME", ".leadscore")).resolve())

    @property
    def tracking_uri(self) -> str:
        # Our own variable, not MLFLOW_TRACKING_URI: mlflow.set_tracking_uri() exports that one to every
        # child process, which would make a subprocess write into its parent's registry.
        return os.environ.get("LEADSCORE_MLFLOW_URI") or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"
