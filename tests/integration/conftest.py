"""One real `bentoml serve` for the integration tests that talk to the service (HTTP API and the page)."""

from __future__ import annotations

import json
import os
import subprocess

import httpx
import pytest

from leadscore.tools.cli import serve_command
from leadscore.tools.demo import wait_until_ready
from serving.predlog import PredictionLog
from serving.store import LeadStore
from tests.conftest import free_port
from tests.helpers import Receiver

API_KEY = "test-key-0123456789abcdef"
AUTH = {"x-api-key": API_KEY}
MAX_LEADS, MAX_BYTES = 40, 400_000


@pytest.fixture(scope="session")
def robot():
    """A local HTTP receiver standing in for the teams' group robots (企业微信 and 飞书) the server alerts."""
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def server(trained, tmp_path_factory, robot):
    port = free_port()
    home = tmp_path_factory.mktemp("server")
    log_path, db_url = home / "bentoml.log", f"sqlite:///{home / 'predictions.db'}"
    alerts = {"teams": [{"name": "全体", "kind": "wecom", "url": f"{robot.url}/wecom", "levels": ["高危", "预警"]},
                        {"name": "飞书群", "kind": "feishu", "url": f"{robot.url}/feishu", "format": "post",
                         "secret": "test-secret", "levels": ["预警", "高危"]}],
              "retries": 1, "backoff_seconds": 0.1, "dead_letter": str(home / "alerts-dead.jsonl")}  # fmt: skip
    (home / "alerts.json").write_text(json.dumps(alerts, ensure_ascii=False), encoding="utf-8")
    # The lead store keeps phones and e-mails by design (docs/security.md): outside the folders the personal-data
    # scan reads, which checks its assignment log on its own.
    store_url = f"sqlite:///{tmp_path_factory.mktemp('lead-store') / 'leads.db'}"
    env = {
        **os.environ,
        "LEADSCORE_MODEL_TAG": trained["tag"],
        "LEADSCORE_API_KEYS": f"another-key-0123456789,{API_KEY}",
        "LEADSCORE_MAX_LEADS": str(MAX_LEADS),
        "LEADSCORE_MAX_REQUEST_BYTES": str(MAX_BYTES),
        "LEADSCORE_PREDICTION_LOG_URL": db_url,
        "LEADSCORE_RELOAD_SECONDS": "2",
        "LEADSCORE_ALERTS_FILE": str(home / "alerts.json"),
        "LEADSCORE_STORE_URL": store_url,
        "LEADSCORE_AUDIT_LOG": str(home / "audit.jsonl"),  # beside the prediction log: the personal-data scan reads it
    }
    # Output to a file: a pipe nobody reads would block the server once it filled.
    with open(log_path, "w") as log:
        proc = subprocess.Popen(serve_command(port, "127.0.0.1"), env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, proc, timeout=180)
            yield {
                "url": url,
                "log": log_path,
                "predictions": PredictionLog(db_url),
                "robot": robot,
                "store": LeadStore(store_url),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def post(server, route: str, payload, **kwargs) -> httpx.Response:
    return httpx.post(f"{server['url']}{route}", json=payload, headers=AUTH, timeout=60, **kwargs)
