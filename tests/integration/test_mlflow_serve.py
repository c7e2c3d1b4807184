"""The registered artifact is a real MLflow pyfunc: `mlflow models serve` answers with it over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import free_port
from training.registry import CHAMPION, INPUT_EXAMPLE

pytestmark = pytest.mark.slow


def test_mlflow_models_serve_scores_the_input_example(trained, tmp_path) -> None:
    settings = trained["settings"]
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{settings.model_name}@{CHAMPION}",
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    # mlflow runs `uvicorn` by name: the venv's bin must be on PATH even when the venv is not activated.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "PATH": path}
    with open(tmp_path / "mlflow-serve.log", "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                assert server.poll() is None, (tmp_path / "mlflow-serve.log").read_text()[-3000:]
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "mlflow models serve did not start in 180 s"
                time.sleep(1)
            records = INPUT_EXAMPLE.to_dict(orient="records")
            answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": records}, timeout=60)
            assert answer.status_code == 200, answer.text
            [row] = answer.json()["predictions"]
            assert row["lead_id"] == "example-1" and 0 <= row["health_score"] <= 100
            assert 0 <= row["won_within_30d"] <= row["won_within_90d"] <= 1 and row["inferred_stage"]
        finally:
            server.terminate()
            server.wait(timeout=60)
