"""The real thing: `bentoml serve` in a subprocess, answering over HTTP on loopback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from leadscore.cli import serve_command
from leadscore.demo import example_request, wait_until_ready
from leadscore.tiers import TierThresholds
from tests.conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "bentoml.log"
    # Output to a file: a pipe nobody reads would block the server once it filled.
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            serve_command(port, "127.0.0.1"),
            env={**os.environ, "LEADSCORE_MODEL_TAG": trained["tag"]},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, proc, timeout=180)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def test_score_answers_each_valid_lead_and_reports_the_invalid_one(server: str, sim_dir: Path) -> None:
    request = example_request(sim_dir, n_leads=5)
    answer = httpx.post(f"{server}/score", json=request, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["lead_id"] for r in body["results"]] == [lead["lead_id"] for lead in request["leads"][:5]]
    for result in body["results"]:
        assert 0 <= result["health_score"] <= 100
        assert result["health_score"] == pytest.approx(100 * result["win_probability"], abs=0.06)
        assert result["model_version"].startswith("leadscore-health/")
        assert result["tier"] == TierThresholds().tier([result["health_score"]])[0]
        assert 0 <= result["activity_index"] <= 100 and set(result["health_radar"]) == {
            "information",
            "timeliness",
            "need_clarity",
            "industry_match",
            "interaction",
        }
    [error] = body["errors"]
    assert error["lead_id"] == "bad-example" and error["problems"][0]["field"] == "created_at"


def test_http_answer_equals_the_in_process_answer(server: str, sim_dir: Path, trained) -> None:
    from training.registry import load_champion

    request = example_request(sim_dir, n_leads=8)
    over_http = httpx.post(f"{server}/score", json=request, timeout=60).json()
    in_process = load_champion(trained["settings"]).score_request(request)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "model_version"} for r in rows]  # noqa: E731
    assert strip(over_http["results"]) == strip(in_process["results"])
    assert over_http["errors"] == in_process["errors"]


def test_malformed_request_is_a_client_error_not_a_crash(server: str) -> None:
    for payload in ({"leads": "not a list"}, {"as_of": "tomorrow", "leads": []}, {}):
        answer = httpx.post(f"{server}/score", json=payload, timeout=30)
        assert 400 <= answer.status_code < 500, (payload, answer.status_code, answer.text)
    assert httpx.get(f"{server}/readyz", timeout=5).status_code == 200


def test_openapi_spec_describes_the_score_endpoint(server: str) -> None:
    spec = httpx.get(f"{server}/docs.json", timeout=10).json()
    assert "/score" in spec["paths"]
    assert spec["components"]["schemas"]["score__Input"]["required"] == ["leads"]
