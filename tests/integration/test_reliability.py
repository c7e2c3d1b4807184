"""Reliability of the running service: fuzzed from its OpenAPI document, loaded by 32 concurrent clients,
and stopped with SIGTERM mid-request. Figures are printed (`pytest -s`) and written to test-artifacts/."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from bench.load import run_load
from bench.soak import soak
from leadscore.tools.demo import lead_request, port_is_free, wait_until_ready
from tests.conftest import ARTIFACTS, free_port
from tests.integration.conftest import API_KEY, AUTH, MAX_LEADS

FUZZ_REQUESTS = 1_000
RATE_LIMIT = 40  # requests per minute per key on own_server
LOAD_CONCURRENCY, LOAD_SECONDS = 32, 20.0
SOAK_SECONDS = 45.0


def _record(name: str, figures: dict) -> None:
    print(f"\n{name}: {json.dumps(figures, ensure_ascii=False)}")
    (ARTIFACTS / "reliability").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "reliability" / f"{name}.json").write_text(json.dumps(figures, ensure_ascii=False, indent=2))


def test_fuzzed_requests_get_no_server_error_and_answers_keep_the_schema(server) -> None:
    """Schemathesis generates requests from the service's own OpenAPI document, valid (positive) and
    invalid (negative) ones, for every operation: none may get a 5xx or an answer outside the schema."""
    schema = schemathesis.openapi.from_url(f"{server['url']}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    per_operation = 80  # operations without inputs have one request to make; rounds go on until enough
    sent: dict[str, int] = {}
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=60) as client:
        for operation, mode in [(o, m) for _ in range(5) for o in operations for m in GenerationMode]:
            if sum(sent.values()) >= FUZZ_REQUESTS:
                break

            @settings(max_examples=per_operation, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case) -> None:
                request = case.as_transport_kwargs(base_url=server["url"], headers=AUTH)
                response = client.request(**{k: v for k, v in request.items() if k != "cookies"})
                sent[case.operation.label] = sent.get(case.operation.label, 0) + 1
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

            try:
                call()
            except Unsatisfiable:  # an operation without parameters or body has no invalid form
                assert mode is GenerationMode.NEGATIVE
    total = sum(sent.values())
    _record("fuzz", {"requests": total, "by_operation": sent, "statuses": statuses})
    assert total >= FUZZ_REQUESTS
    assert not [s for s in statuses if s >= 500]


def test_32_concurrent_clients_get_no_error_and_every_scored_lead_is_logged(server, tables) -> None:
    """A bounded load test (the soak variant: `python -m bench.load --seconds 3600`)."""
    leads = tables["leads"]["lead_id"].sample(400, random_state=5).tolist()
    as_of = tables["leads"]["created_at"].max()
    requests = [lead_request(tables, leads[i : i + 4], as_of, personal=True) for i in range(0, len(leads), 4)]
    figures = run_load(server["url"], API_KEY, requests, LOAD_CONCURRENCY, LOAD_SECONDS)
    logged = server["predictions"].count_for(figures.pop("request_ids"))
    _record("load", figures | {"log_rows": logged})
    assert figures["requests"] > LOAD_CONCURRENCY and figures["errors"] == 0
    assert logged == figures["scored"] > 0


def test_a_short_soak_with_two_model_workers_and_a_new_champion(trained, tables, tmp_path) -> None:
    """bench.soak for 45 s (the 5-minute run: `python -m bench.soak`): two model workers, a new champion
    registered half-way in a copy of the registry; no error, every lead logged, every answer from one model
    version, both workers switched, memory bounded."""
    leads = tables["leads"]["lead_id"].sample(300, random_state=7).tolist()
    as_of = tables["leads"]["created_at"].max()
    requests = [lead_request(tables, [lead], as_of, personal=True) for lead in leads]
    env = {**os.environ, "LEADSCORE_MODEL_TAG": trained["tag"]}
    figures = soak(env, requests, seconds=SOAK_SECONDS, concurrency=LOAD_CONCURRENCY, workers=2, poll=3,
                   workdir=tmp_path, port=free_port())  # fmt: skip
    _record("soak", figures)
    assert figures["checks"] and all(figures["checks"].values()), figures["checks"]


@pytest.fixture(scope="module")
def own_server(trained, tmp_path_factory):
    """A second server, started as a user starts it (`leadscore serve`), to be stopped: its keys come from a
    file (to rotate them) and it logs to its own db."""
    home = tmp_path_factory.mktemp("own-server")
    keys = home / "keys"
    keys.write_text(f"{API_KEY}\n")
    port = free_port()
    env = {**os.environ, "LEADSCORE_MODEL_TAG": trained["tag"], "LEADSCORE_API_KEYS_FILE": str(keys),
           "LEADSCORE_PREDICTION_LOG_URL": f"sqlite:///{home / 'predictions.db'}", "LEADSCORE_RELOAD_SECONDS": "0",
           "LEADSCORE_MAX_LEADS": "500", "LEADSCORE_STORE_URL": f"sqlite:///{home / 'leads.db'}",
           "LEADSCORE_RATE_LIMIT": str(RATE_LIMIT), "LEADSCORE_AUDIT_LOG": str(home / "audit.jsonl")}  # fmt: skip
    env.pop("LEADSCORE_API_KEYS", None)
    log = open(home / "bentoml.log", "w")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "leadscore.tools.cli", "serve", "--port", str(port), "--host", "127.0.0.1"]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, proc, timeout=180)
    yield {"url": url, "proc": proc, "keys": keys, "log": home / "bentoml.log", "port": port,
           "audit": home / "audit.jsonl", "env": env}  # fmt: skip
    if proc.poll() is None:
        proc.kill()
    log.close()


def test_api_keys_rotate_without_a_restart(own_server) -> None:
    url, keys = own_server["url"], own_server["keys"]
    new_key = "rotated-key-9876543210fedcba"
    assert httpx.get(f"{url}/metadata", headers={"x-api-key": new_key}).status_code == 401
    keys.write_text(f"{API_KEY}\n{new_key}\n")  # step 1: add the new key; clients move to it
    assert httpx.get(f"{url}/metadata", headers={"x-api-key": new_key}, timeout=60).status_code == 200
    keys.write_text(f"{new_key}\n")  # step 2: retire the old key
    assert httpx.get(f"{url}/metadata", headers=AUTH, timeout=60).status_code == 401
    keys.write_text("short\n")  # a change that leaves no valid key is refused; the keys in force stay
    assert httpx.get(f"{url}/metadata", headers={"x-api-key": new_key}, timeout=60).status_code == 200
    keys.write_text(f"{API_KEY}\n")


def test_keys_are_stored_hashed_limited_per_key_and_audited(own_server) -> None:
    """`leadscore keys new` writes only the new key's digest; the key works at once (no restart); past its
    requests per minute it gets 429 with Retry-After while another key is still served; the audit log names
    each call's key by its id, never the key; `leadscore keys hash` turns a clear key into its digest."""
    url, keys, env = own_server["url"], own_server["keys"], own_server["env"]
    cli = [sys.executable, "-m", "leadscore.tools.cli", "keys"]
    made = subprocess.run([*cli, "new", "--name", "crm-robot"], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    robot = made.stdout.strip().splitlines()[-1]
    robot_id = re.search(r"id ([0-9a-f]{12})", made.stdout)[1]
    assert robot not in keys.read_text() and f"sha256:{robot_id}" in keys.read_text()
    statuses = [httpx.get(f"{url}/metadata", headers={"x-api-key": robot}, timeout=60).status_code
                for _ in range(RATE_LIMIT)]  # fmt: skip
    assert statuses == [200] * RATE_LIMIT
    over = httpx.get(f"{url}/metadata", headers={"x-api-key": robot}, timeout=60)
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 60, over.text
    assert "requests a minute" in over.json()["error"]
    assert httpx.get(f"{url}/metadata", headers=AUTH, timeout=60).status_code == 200, "the limit is per key"
    assert httpx.get(f"{url}/metadata", headers={"x-api-key": "wrong-key-0123456789"}).status_code == 401
    audit = own_server["audit"].read_text()
    entries = [json.loads(line) for line in audit.splitlines()]
    mine = [e for e in entries if e["key_id"] == robot_id]
    assert [e["status"] for e in mine[-RATE_LIMIT - 1 :]] == [200] * RATE_LIMIT + [429]
    assert all(e["path"] == "/metadata" and e["method"] == "GET" and e["ms"] >= 0 for e in mine)
    assert any(e["key_id"] is None and e["status"] == 401 for e in entries)
    assert robot not in audit and API_KEY not in audit
    clear = "clear-key-to-hash-0123456789"
    keys.write_text(keys.read_text() + f"{clear}\n")
    hashed = subprocess.run([*cli, "hash"], env=env, capture_output=True, text=True, timeout=60)
    assert hashed.returncode == 0 and "keys in" in hashed.stdout, hashed.stderr
    assert clear not in keys.read_text() and API_KEY not in keys.read_text(), "every clear key hashed"
    for key in (clear, API_KEY):  # (the robot key is over its limit for this minute)
        assert httpx.get(f"{url}/metadata", headers={"x-api-key": key}, timeout=60).status_code == 200


def test_sigterm_lets_requests_in_flight_finish(own_server, tables) -> None:
    """A request of the maximum size is in flight when the server gets SIGTERM: it is answered in full,
    then the server exits."""
    leads = tables["leads"]["lead_id"].sample(MAX_LEADS * 10, random_state=9).tolist()
    request = lead_request(tables, leads, tables["leads"]["created_at"].max(), personal=True)
    outcome: dict = {}

    def send() -> None:
        started = time.monotonic()
        response = httpx.post(f"{own_server['url']}/score", json=request, headers=AUTH, timeout=120)
        outcome.update(status=response.status_code, body=response.json(), seconds=time.monotonic() - started)

    service = psutil.Process(own_server["proc"].pid).children(recursive=True)  # bentoml serve and its workers
    assert len(service) >= 3, [p.cmdline()[:4] for p in service]
    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(1.0)  # the request is being scored (a 400-lead request takes several seconds here)
    assert "status" not in outcome, "the request finished before the signal: make it bigger"
    own_server["proc"].send_signal(signal.SIGTERM)  # to `leadscore serve`, as systemd or Kubernetes would
    sender.join(timeout=120)
    code = own_server["proc"].wait(timeout=90)
    left = [p.pid for p in service if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    _record("sigterm", {"status": outcome.get("status"), "leads": len(leads), "seconds": outcome.get("seconds"),
                        "exit_code": code, "processes_left": len(left)})  # fmt: skip
    assert outcome["status"] == 200
    assert len(outcome["body"]["results"]) + len(outcome["body"]["errors"]) == len(leads)
    assert code == 0 and left == [], "every process of the service stopped"
    assert port_is_free(own_server["port"]), "the port is free for the next start"


@pytest.mark.parametrize("fault", ["missing", "corrupt"])
def test_the_service_refuses_to_start_without_its_model_intact(fault, trained, tmp_path) -> None:
    """A model tag that is not in the store, or a stored model whose files no longer match the digest
    the registry recorded: `leadscore serve` refuses to start, saying why. (Started by `bentoml serve`
    directly, the model worker logs the same reason and stops the server.)"""
    env = {**os.environ, "LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_RELOAD_SECONDS": "0",
           "LEADSCORE_PREDICTION_LOG_URL": f"sqlite:///{tmp_path / 'p.db'}"}  # fmt: skip
    if fault == "missing":
        env["LEADSCORE_MODEL_TAG"] = "leadscore-health:doesnotexist"
        expected = "no such model"
    else:
        import shutil

        import bentoml

        store = tmp_path / "bentoml"
        shutil.copytree(os.environ["BENTOML_HOME"], store)
        env["BENTOML_HOME"], env["LEADSCORE_MODEL_TAG"] = str(store), trained["tag"]
        model = bentoml.models.get(trained["tag"])
        pickled = store / model.path.split(os.environ["BENTOML_HOME"], 1)[1].lstrip("/")
        target = next(pickled.rglob("models.pkl"))
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte
        target.write_bytes(bytes(data))
        expected = "does not match the digest"
    command = [sys.executable, "-m", "leadscore.tools.cli", "serve", "--port", str(free_port())]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 2
    assert "cannot start" in run.stderr and expected in run.stderr, run.stderr[-3000:]
