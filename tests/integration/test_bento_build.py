"""`bentoml build` turns bentofile.yaml into a Bento, and the built Bento (not the source tree) serves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from leadscore.tools.demo import example_request, wait_until_ready
from tests.conftest import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_the_built_bento_serves_scores(trained, sim_dir: Path, tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", str(ROOT), "--output", "tag"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    tag = re.search(r"__tag__:(\S+)", built.stdout)[1]
    assert tag.startswith("leadscore:")

    port, key = free_port(), "bento-key-0123456789abcdef"
    env = {**os.environ, "LEADSCORE_API_KEYS": key, "LEADSCORE_PREDICTION_LOG_URL": f"sqlite:///{tmp_path / 'p.db'}",
           "LEADSCORE_STORE_URL": f"sqlite:///{tmp_path / 'leads.db'}"}  # fmt: skip
    env.pop("LEADSCORE_MODEL_TAG", None)
    cmd = [sys.executable, "-m", "bentoml", "serve", tag, "--port", str(port), "--host", "127.0.0.1"]
    with open(tmp_path / "bento.log", "w") as log:
        # Started outside the source tree, so the code it runs is the Bento's copy.
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", proc, timeout=180)
            answer = httpx.post(
                f"http://127.0.0.1:{port}/score", json=example_request(sim_dir, n_leads=2),
                headers={"x-api-key": key}, timeout=60,
            )  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["results"]) == 2
    assert answer.json()["model_version"] == f"leadscore-health/{trained['version']}"
