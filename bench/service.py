"""Service benchmark: the BentoML service against `mlflow models serve` on the same registered artifact.

    python -m bench.service [--home DIR] [--data DIR] [--requests 160] [--out bench/results/service.md]

Uses the champion in $LEADSCORE_HOME (or --home); without one it simulates 6,000 leads (seed 11) and
trains first. All figures come from this one run on this machine:
- in-process time of one typical single-lead request (`LeadArtifact.score_request`, the same code);
- the service's p50 latency for single-lead requests, one at a time, over HTTP;
- throughput (leads/s) with 16 concurrent clients sending single-lead requests, BentoML vs MLflow, and vs
  a minimal BentoML service answering the health model and its top-5 TreeSHAP for precomputed features
  (bench/minimal_service.py, issue 20's reference);
- batch scoring per lead (`leadscore score`'s code) against the raw cost of the features, the health
  model and its pred_contrib for the same leads;
- resident memory of every process of each server.
Both servers get the same leads with the fields of the pyfunc's signature (the MLflow input schema).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

from bench.common import bench_home, print_headline
from bench.minimal_service import write_inputs
from bench.report import write_report

KEY = "bench-key-0123456789abcdef"
SIGNATURE_FIELDS = ["lead_id", "created_at", "channel", "industry", "customer_type", "province", "company_size",
                    "budget_cny", "form_text"]  # fmt: skip
EVENTS = ("web_events", "activities", "stage_changes")


def typical_leads(data: Path, n: int, seed: int = 0) -> tuple[str, list[dict]]:
    """n open leads at the export's end, each with its last 20 rows per event table."""
    from features.contract import load_export
    from features.labels import export_time
    from leadscore.tools.demo import lead_request

    tables = load_export(data).tables
    as_of = export_time(tables)
    open_ids = tables["outcomes"].loc[tables["outcomes"]["status"] == "open", "lead_id"]
    ids = open_ids.sample(n, random_state=seed).tolist()
    request = lead_request(tables, ids, as_of, max_rows=20)
    leads = [{k: v for k, v in lead.items() if k in SIGNATURE_FIELDS or k in EVENTS} for lead in request["leads"]]
    return request["as_of"], leads


def start(command: list[str], env: dict, log: Path, ready_url: str) -> subprocess.Popen:
    proc = subprocess.Popen(command, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{command[:4]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{command[:4]} not ready in 240 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def tree_rss_mb(proc: subprocess.Popen) -> str:
    """Resident memory of the server's processes, each named by its role."""
    parent = psutil.Process(proc.pid)
    parts = []
    for process in [parent, *parent.children(recursive=True)]:
        command = " ".join(process.cmdline())
        role = ("model worker" if "ModelWorker" in command else "supervisor" if process is parent
                else "HTTP worker")  # fmt: skip
        parts.append(f"{role} {process.memory_info().rss / 2**20:.0f}")
    return ", ".join(parts)


def load(send, payloads: list, concurrency: int) -> float:
    """Requests per second with `concurrency` clients over all payloads."""
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, payloads))
    return len(payloads) / (time.perf_counter() - started)


def latencies(call, payloads: list) -> list[float]:
    """Seconds per call, one call at a time."""
    out = []
    for payload in payloads:
        started = time.perf_counter()
        call(payload)
        out.append(time.perf_counter() - started)
    return out


def measure(server: subprocess.Popen, send, payloads: list, requests: int) -> dict:
    """A started server's single-request latencies (after a warm-up), throughput at concurrency 16 and
    memory; the server is stopped afterwards."""
    try:
        latencies(send, payloads[:8])
        return {
            "latency": latencies(send, payloads[:64]),
            "throughput": load(send, payloads[:requests], 16),
            "rss": tree_rss_mb(server),
        }
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="LEADSCORE_HOME with a trained champion (default: $LEADSCORE_HOME)")
    parser.add_argument("--data", help="the export to draw leads from (default: the home's demo data)")
    parser.add_argument("--requests", type=int, default=160, help="requests per throughput run")
    parser.add_argument("--out", default="bench/results/service.md")
    args = parser.parse_args()
    home, demo_data = bench_home(args.home)
    data = Path(args.data) if args.data else demo_data
    from models.champion import load_champion
    from models.settings import Settings

    settings = Settings.from_env()
    artifact = load_champion(settings).warm_up()
    as_of, leads = typical_leads(data, max(64, args.requests))
    singles = [{"as_of": as_of, "leads": [lead]} for lead in leads]

    # In process: the same code the service runs, for one lead at a time.
    for request in singles[:5]:
        artifact.score_request(request)
    in_process = latencies(artifact.score_request, singles[:64])

    env = {**os.environ, "LEADSCORE_API_KEYS": KEY, "LEADSCORE_RELOAD_SECONDS": "0"}
    env["LEADSCORE_PREDICTION_LOG_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench-predictions.db"
    port = 3931
    url = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "bentoml", "serve", "serving.service:LeadScoring", "--port", str(port)]
    client = httpx.Client(timeout=120, headers={"x-api-key": KEY})
    bento = measure(
        start(serve, env, home / "bench-bentoml.log", f"{url}/readyz"),
        lambda r: client.post(f"{url}/score", json=r).raise_for_status(),
        singles,
        args.requests,
    )

    # Issue 20's reference: BentoML with nothing but the health model and top-5 TreeSHAP on precomputed features.
    minimal_dir = Path(tempfile.mkdtemp())
    write_inputs(artifact.health, precomputed_features(artifact, data, [s["leads"][0]["lead_id"] for s in singles]),
                 minimal_dir)  # fmt: skip
    minimal_cmd = [sys.executable, "-m", "bentoml", "serve", "bench.minimal_service:MinimalHealth", "--port", str(port)]
    minimal_env = {**os.environ, "MINIMAL_HEALTH_DIR": str(minimal_dir)}
    minimal = measure(
        start(minimal_cmd, minimal_env, home / "bench-minimal.log", f"{url}/readyz"),
        lambda row: client.post(f"{url}/predict", json={"row": row}).raise_for_status(),
        list(range(len(singles))),
        args.requests,
    )

    mlflow_cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{settings.model_name}@champion",
                  "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    mlflow_env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "PATH": path}
    mlflow = measure(
        start(mlflow_cmd, mlflow_env, home / "bench-mlflow.log", f"{url}/ping"),
        lambda rs: client.post(f"{url}/invocations", json={"dataframe_records": rs}).raise_for_status(),
        [[_pyfunc_row(r, as_of) for r in s["leads"]] for s in singles],
        args.requests,
    )

    batch = batch_costs(artifact, data)
    ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
    lines = [
        "# Service benchmark",
        "",
        f"`python -m bench.service` on {platform.node()} ({os.cpu_count()} cores), "
        f"{time.strftime('%Y-%m-%d %H:%M')}; model {artifact.model_version}; export {data.name}; "
        f"{args.requests} single-lead requests per throughput run, 64 for latencies. One run, one machine.",
        "",
        "| figure | leadscore (BentoML) | reference | ratio | bar |",
        "|---|---|---|---|---|",
        f"| throughput, 16 concurrent clients (leads/s) | {bento['throughput']:.1f} | mlflow models serve "
        f"{mlflow['throughput']:.1f} | {bento['throughput'] / mlflow['throughput']:.1f}x | >= 3x |",
        f"| throughput against the minimal service, 16 clients (leads/s) | {bento['throughput']:.1f} | minimal "
        f"BentoML (health model + top-5 TreeSHAP, features precomputed) {minimal['throughput']:.1f} | "
        f"{share(bento, minimal)} | >= 50 % (issue 20) |",
        f"| p50 latency, one lead (ms) | {ms(bento['latency']):.0f} | in-process {ms(in_process):.0f} | "
        f"{ms(bento['latency']) / ms(in_process):.2f}x | <= 1.5x (issue 20) |",
        f"| batch scoring per lead (ms) | {batch['batch_ms']:.1f} | features + model + pred_contrib "
        f"{batch['raw_ms']:.1f} | {batch['batch_ms'] / batch['raw_ms']:.2f}x | <= 3x |",
        f"| p50 latency, one lead, mlflow models serve (ms) | | {ms(mlflow['latency']):.0f} | | |",
        f"| model + pred_contrib alone, per lead (ms) | | {batch['model_ms']:.2f} | | |",
        f"| p50 latency, one lead, minimal service (ms) | | {ms(minimal['latency']):.0f} | | |",
        f"| resident memory per process (MB) | {bento['rss']} | mlflow {mlflow['rss']}; minimal {minimal['rss']} | "
        "| reported |",
        "",
        f"Batch: {batch['leads']} leads as of the export's end in chunks of 500 (the raw figure includes "
        f"loading the export, {batch['loading_s']} s, as the batch figure does).",
    ]
    write_report(args.out, lines)
    print_headline(
        [
            ["service throughput, 16 clients (leads/s)", f"{bento['throughput']:.1f}",
             f"mlflow models serve {mlflow['throughput']:.1f}", f"{bento['throughput'] / mlflow['throughput']:.1f}x", ">= 3x"],
            ["service throughput against the minimal service (leads/s)", f"{bento['throughput']:.1f}",
             f"minimal BentoML, health model + top-5 TreeSHAP {minimal['throughput']:.1f}", share(bento, minimal),
             ">= 50 %"],
            ["service p50 latency, one lead (ms)", f"{ms(bento['latency']):.0f}", f"in-process {ms(in_process):.0f}",
             f"{ms(bento['latency']) / ms(in_process):.2f}x", "<= 1.5x"],
            ["batch scoring per lead (ms)", f"{batch['batch_ms']:.1f}", f"features + model + pred_contrib {batch['raw_ms']:.1f}",
             f"{batch['batch_ms'] / batch['raw_ms']:.2f}x", "<= 3x"],
        ]
    )  # fmt: skip


def share(ours: dict, reference: dict) -> str:
    return f"{100 * ours['throughput'] / reference['throughput']:.0f} %"


def precomputed_features(artifact, data: Path, lead_ids: list[str]) -> pd.DataFrame:
    """The features of these leads as of the export's end, computed once, for the minimal service."""
    from features.contract import load_export
    from features.labels import export_time

    tables = load_export(data).tables
    return artifact.pipeline.transform(tables, pd.DataFrame({"lead_id": lead_ids, "as_of": export_time(tables)}))


def _pyfunc_row(lead: dict, as_of: str) -> dict:
    """The lead as one row of the pyfunc's input schema: every field present, event lists as JSON text."""
    return (
        {name: lead.get(name) for name in SIGNATURE_FIELDS}
        | {"as_of": as_of}
        | {name: json.dumps(lead.get(name, []), ensure_ascii=False) for name in EVENTS}
    )


def batch_costs(artifact, data: Path) -> dict[str, float]:
    """Per lead: batch scoring (the CLI's code) vs the features, health model and pred_contrib alone."""
    from features.contract import load_export
    from features.labels import export_time
    from leadscore.jobs.batch import leads_to_score, score_export

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = score_export(artifact, data, Path(tmp) / "scores.jsonl", progress=False)
        batch = time.perf_counter() - started
    tables = load_export(data).tables  # loading is part of the batch figure above, so time it again
    started = time.perf_counter()
    load_export(data)
    loading = time.perf_counter() - started
    as_of = export_time(tables)
    ids = leads_to_score(tables, as_of, include_closed=False)
    raw = model = 0.0
    for start in range(0, len(ids), 500):
        snapshots = pd.DataFrame({"lead_id": ids[start : start + 500], "as_of": as_of})
        t0 = time.perf_counter()
        features = artifact.pipeline.transform(tables, snapshots)
        t1 = time.perf_counter()
        artifact.health.predict(features)
        artifact.health.contributions(features)
        t2 = time.perf_counter()
        raw += t2 - t0
        model += t2 - t1
    n = summary["leads"]
    return {
        "leads": n,
        "batch_ms": 1000 * batch / n,
        "raw_ms": 1000 * (raw + loading) / n,
        "model_ms": 1000 * model / n,
        "loading_s": float(np.round(loading, 2)),
    }


if __name__ == "__main__":
    main()
