"""The real thing: `bentoml serve` in a subprocess, answering over HTTP on loopback."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from leadscore.tools.demo import example_request, lead_request
from models.tiers import TierThresholds
from tests.integration.conftest import AUTH, MAX_BYTES, MAX_LEADS, post

pytestmark = pytest.mark.slow


def test_score_answers_each_valid_lead_and_reports_the_invalid_one(server, sim_dir: Path) -> None:
    request = example_request(sim_dir, n_leads=5)
    answer = post(server, "/score", request)
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
        explanation = result["explanation"]
        assert set(explanation) == {"base_score", "positive", "negative", "factors", "contributions"}
        assert explanation["factors"] is None and explanation["contributions"]
        assert all(f["points"] > 0 for f in explanation["positive"]) and len(explanation["positive"]) <= 3
        assert all(re.search(r"[+-]\d+\.\d分$", f["sentence"]) for f in explanation["positive"])
        for action in result["next_actions"]:
            assert action["title"] and action["reason"] and action["due"] >= result["as_of"]
    [error] = body["errors"]
    assert error["lead_id"] == "bad-example" and error["problems"][0]["field"] == "created_at"


def test_a_lead_id_that_is_not_a_string_gets_its_error_entry(server) -> None:
    """Found by fuzzing: the lead store and the prediction log keyed leads by a lead_id that was a list (500)."""
    odd = {"lead_id": [], "created_at": [], "phone": ["13800138000"], "activities": [{"next_action_due": [None]}]}
    answer = post(server, "/score", {"leads": [odd]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["results"] == [] and body["errors"][0]["problems"][0]["field"] == "created_at", body


def test_every_route_but_probes_and_docs_needs_a_valid_api_key(server, sim_dir: Path) -> None:
    request = example_request(sim_dir, n_leads=1)
    for route in ("/score", "/explain", "/recommend", "/reload"):
        for headers in ({}, {"x-api-key": "wrong-key-0123456789abcdef"}):
            answer = httpx.post(f"{server['url']}{route}", json=request, headers=headers, timeout=30)
            assert answer.status_code == 401, (route, answer.text)
            assert "X-API-Key" in answer.json()["error"]
    assert httpx.get(f"{server['url']}/metadata", timeout=10).status_code == 401
    for probe in ("/healthz", "/readyz", "/livez", "/docs.json"):
        assert httpx.get(f"{server['url']}{probe}", timeout=10).status_code == 200, probe
    assert httpx.get(f"{server['url']}/metadata", headers={"x-api-key": "another-key-0123456789"}).status_code == 200


def test_limits_answer_413_for_big_bodies_and_422_for_too_many_leads(server) -> None:
    too_many = {"leads": [{"lead_id": f"L{i}", "created_at": "2026-01-01T08:00:00"} for i in range(MAX_LEADS + 1)]}
    answer = post(server, "/score", too_many)
    assert answer.status_code == 422 and f"limit is {MAX_LEADS}" in answer.text
    big = {"leads": [{"lead_id": "L1", "created_at": "2026-01-01T08:00:00", "form_text": "询价" * MAX_BYTES}]}
    answer = post(server, "/score", big)
    assert answer.status_code == 413 and "limit" in answer.json()["error"]

    def chunks():  # no Content-Length: the limit must hold for a streamed body too
        yield b'{"leads": [{"lead_id": "L1", "form_text": "'
        for _ in range(MAX_BYTES // 10_000 + 1):
            yield b"a" * 10_000
        yield b'"}]}'

    answer = httpx.post(f"{server['url']}/score", content=chunks(), headers=AUTH | {"content-type": "application/json"})
    assert answer.status_code == 413
    assert post(server, "/score", {"leads": too_many["leads"][:MAX_LEADS]}).status_code == 200


def test_explain_lists_every_factor_and_they_add_up_to_the_score(server, sim_dir: Path) -> None:
    request = example_request(sim_dir, n_leads=3)
    for lead in request["leads"][:3]:
        answer = post(server, "/explain", {"lead": lead, "as_of": request["as_of"]})
        assert answer.status_code == 200, answer.text
        [result] = answer.json()["results"]
        factors = result["explanation"]["factors"]
        assert len(factors) > 50 and {"form_text", "notes_text"} <= {f["factor"] for f in factors}
        total = result["explanation"]["base_score"] + sum(f["points"] for f in factors)
        assert total == pytest.approx(result["health_score"], abs=0.1 + 0.005 * len(factors))


def test_recommend_ranks_next_actions_by_expected_gain(server, sim_dir: Path) -> None:
    answer = post(server, "/recommend", example_request(sim_dir, n_leads=6))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert any(r["next_actions"] for r in results)
    for result in results:
        assert "explanation" not in result and "health_score" in result
        gains = [a["expected_gain"] for a in result["next_actions"] if a["action"] != "nurture"]
        assert gains == sorted(gains, reverse=True)


def test_metadata_names_models_figures_catalogue_and_limits(server, trained) -> None:
    meta = httpx.get(f"{server['url']}/metadata", headers=AUTH, timeout=10).json()
    assert meta["model_version"] == f"leadscore-health/{trained['version']}"
    assert meta["models"] == {
        "health": True,
        "stage": True,
        "close_date": True,
        "intent": True,
        "risk": True,
        "rep_segments": True,
    }
    assert meta["evaluation"]["test_auc"] == pytest.approx(trained["result"].metrics["test_auc"])
    assert len(meta["features"]) == 139 and meta["limits"]["max_leads"] == MAX_LEADS
    assert meta["tiers"] == {"战略级": 60.0, "重点跟进": 35.0, "培育中": 15.0}


def test_http_answer_equals_the_in_process_answer(server, sim_dir: Path, trained) -> None:
    from models.champion import load_champion

    request = example_request(sim_dir, n_leads=8)
    # The service completes the leads from its lead store (what earlier tests sent of them), as does this.
    leads, earlier = server["store"].complete(request["leads"], request["as_of"])
    over_http = post(server, "/score", request).json()
    completed = {"as_of": request["as_of"], "leads": leads, "earlier": earlier}
    in_process = load_champion(trained["settings"]).score_request(completed).model_dump(mode="json")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "model_version"} for r in rows]  # noqa: E731
    assert strip(over_http["results"]) == strip(in_process["results"])
    assert over_http["errors"] == in_process["errors"]


def test_batch_scoring_gives_the_http_answers(server, sim_dir: Path, tables, trained, tmp_path: Path) -> None:
    """`leadscore score` over the export and the service over HTTP give the same answers for the same
    leads as of the same time (leads the export does not flag as duplicates: a request sees only itself)."""
    from leadscore.jobs.batch import score_export
    from models.champion import load_champion

    out = tmp_path / "scores.jsonl"
    score_export(load_champion(trained["settings"]), sim_dir, out, chunk_size=97, progress=False)
    batch = {row["lead_id"]: row for row in map(json.loads, out.read_text().splitlines())}
    chosen = [i for i, row in batch.items() if not row["screening"]["duplicate"]][:25:3]
    as_of = batch[chosen[0]]["as_of"]
    import pandas as pd

    request = lead_request(tables, chosen, pd.Timestamp(as_of), personal=True)
    over_http = post(server, "/score", request).json()["results"]
    assert [r["lead_id"] for r in over_http] == chosen
    for answer in over_http:
        assert {k: v for k, v in answer.items() if k != "model_version"} == {
            k: v for k, v in batch[answer["lead_id"]].items() if k != "model_version"
        }


def test_prediction_log_has_a_row_per_scored_lead_under_concurrent_load(server, sim_dir: Path) -> None:
    requests = [example_request(sim_dir, n_leads=n) for n in (1, 3, 5, 7)] * 8
    before = server["predictions"].count()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda r: post(server, "/score", r), requests))
    assert all(a.status_code == 200 for a in answers)
    scored = sum(len(a.json()["results"]) for a in answers)
    assert scored == 8 * (1 + 3 + 5 + 7)
    assert server["predictions"].count() - before == scored


def test_personal_data_never_reaches_the_log(server) -> None:
    phone, email = "13912345678", "zhang.wei@example.cn"
    leads = [
        {"lead_id": phone, "created_at": "not a time", "phone": phone, "email": email},
        {"lead_id": email, "created_at": "yesterday", "phone": "139-1234-5678"},
        {"lead_id": "L-ok", "created_at": "2026-05-01T09:00:00", "phone": "139-1234-5678", "form_text": email},
    ]
    answer = post(server, "/score", {"leads": leads})
    assert answer.status_code == 200 and len(answer.json()["errors"]) == 2
    time.sleep(1)  # let the server flush its log
    log = server["log"].read_text()
    assert "[PHONE]" in log and "[EMAIL]" in log, "the rejected lead was logged (masked)"
    assert phone not in log and email not in log and "139-1234-5678" not in log


def test_malformed_request_is_a_client_error_not_a_crash(server) -> None:
    for payload in ({"leads": "not a list"}, {"as_of": "tomorrow", "leads": []}, {}):
        answer = post(server, "/score", payload)
        assert 400 <= answer.status_code < 500, (payload, answer.status_code, answer.text)
    assert httpx.get(f"{server['url']}/readyz", timeout=5).status_code == 200


def test_openapi_spec_types_every_request_and_answer(server) -> None:
    """A CRM front end generates its client from this document: every answer is a typed object, down to the
    parts each model adds and the event behind a next action."""
    spec = httpx.get(f"{server['url']}/docs.json", timeout=10).json()
    assert {"/score", "/explain", "/recommend", "/reload", "/metadata"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert schemas["score__Input"]["required"] == ["leads"]
    assert schemas["LeadIn"]["properties"]["activities"]["anyOf"][0]["items"]["$ref"].endswith("/ActivityIn")

    def resolved(node: dict) -> dict:
        while "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[1]]
        return node

    for route in ("/score", "/explain", "/recommend", "/reload", "/metadata"):
        operation = spec["paths"][route].get("post") or spec["paths"][route]["get"]
        answer = resolved(operation["responses"]["200"]["content"]["application/json"]["schema"])
        assert answer.get("type") == "object" and answer["properties"], route
        assert not answer.get("additionalProperties"), route
    lead = resolved(schemas["LeadAnswer"])
    for part in ("stage", "close_date", "intent", "explanation", "next_actions", "screening", "health_radar", "risk"):
        assert part in lead["properties"], part
    action = resolved(schemas["NextAction"])
    assert {"expected_gain", "as_event", "due"} <= set(action["properties"])
    assert set(resolved(schemas["CloseDateAnswer"])["properties"]) >= {"won_within_30d", "won_within_90d"}


def test_a_new_champion_is_served_without_a_restart(server, trained, sim_dir: Path) -> None:
    """Run last in this module: the registry gets a new champion version; the running service must pick
    it up (POST /reload in the worker asked, the watcher in every worker) and answer with it."""
    from mlflow.tracking import MlflowClient

    from bench.soak import register_new_champion
    from models.champion import CHAMPION

    settings = trained["settings"]
    client = MlflowClient(settings.tracking_uri)
    current = client.get_model_version_by_alias(settings.model_name, CHAMPION)
    new = register_new_champion(settings.tracking_uri, settings.model_name)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            meta = httpx.get(f"{server['url']}/metadata", headers=AUTH, timeout=10).json()
            if meta["registry_version"] == new:
                break
            time.sleep(1)
        assert meta["registry_version"] == new, "the watcher did not load the new champion"
        answer = post(server, "/score", example_request(sim_dir, n_leads=1)).json()
        assert answer["results"][0]["model_version"] == f"{settings.model_name}/{new}"
        assert post(server, "/reload", {}).json()["reloaded"] is False
    finally:
        client.set_registered_model_alias(settings.model_name, CHAMPION, current.version)
