"""POST /assign latency with 20 candidate reps: in process (`models.assignment.rank`) and over HTTP (a real
`bentoml serve`, with its lead store and assignment log), one request at a time.

    python -m bench.assign_latency [--home DIR] [--requests 60] [--reps 20] [--out bench/results/assign_latency.md]

Uses the champion in $LEADSCORE_HOME (or --home; bench/.service-home by default, trained there the first time).
Each request is a new lead of the export (its leads row, no events yet) with 20 reps of the training history
at different loads; the first request of each kind is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import bench_home, print_headline
from bench.report import write_report
from bench.service import KEY, start, stop

FIELDS = ["lead_id", "created_at", "channel", "province", "city", "industry", "customer_type", "company_name",
          "company_size", "budget_cny", "form_text", "phone"]  # fmt: skip


def requests_for(data: Path, artifact, n: int, n_reps: int) -> list[dict]:
    from features.contract import load_export
    from features.labels import export_time

    tables = load_export(data).tables
    as_of = export_time(tables)
    leads = tables["leads"].sample(n, random_state=0)[FIELDS]
    reps = artifact.models["rep_segments"].reps_.index[:n_reps].tolist()
    rng = np.random.default_rng(0)
    out = []
    for k, row in enumerate(leads.to_dict("records")):
        lead = {key: (None if v is None or v != v else v) for key, v in row.items()}
        lead |= {"lead_id": f"bench-{k}", "created_at": as_of.isoformat()}
        team = [{"rep_id": r, "open_leads": int(rng.integers(0, 30)), "capacity": 25, "industries": []} for r in reps]
        out.append({"as_of": as_of.isoformat(), "lead": lead, "reps": team})
    return out


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {"p50": statistics.median(ms), "p90": ms[int(0.9 * (len(ms) - 1))], "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="LEADSCORE_HOME with a trained champion")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--port", type=int, default=3917)
    parser.add_argument("--out", default="bench/results/assign_latency.md")
    args = parser.parse_args()
    home, data = bench_home(args.home)
    from models.assignment import RoutingRules, rank
    from models.champion import load_champion
    from models.settings import Settings

    artifact = load_champion(Settings.from_env()).warm_up()
    requests = requests_for(data, artifact, args.requests + 1, args.reps)
    in_process = []
    for k, request in enumerate(requests):
        started = time.perf_counter()
        answer = rank(artifact, request, RoutingRules())
        if k:
            in_process.append(time.perf_counter() - started)
        assert answer.status == "assigned" and len(answer.ranking) == args.reps, answer.status

    store = Path(tempfile.mkdtemp(prefix="assign-bench-"))
    env = {**os.environ, "LEADSCORE_API_KEYS": KEY, "LEADSCORE_STORE_URL": f"sqlite:///{store / 'leads.db'}",
           "LEADSCORE_PREDICTION_LOG_URL": f"sqlite:///{store / 'predictions.db'}", "LEADSCORE_RELOAD_SECONDS": "0"}  # fmt: skip
    url = f"http://127.0.0.1:{args.port}"
    serve = [sys.executable, "-m", "bentoml", "serve", "serving.service:LeadScoring", "--port", str(args.port)]
    proc = start(serve, env, store / "bentoml.log", f"{url}/readyz")
    over_http = []
    try:
        with httpx.Client(timeout=60, headers={"x-api-key": KEY}) as client:
            for k, request in enumerate(requests):
                request = request | {"lead": request["lead"] | {"lead_id": f"http-{k}"}}
                started = time.perf_counter()
                response = client.post(f"{url}/assign", json=request)
                if k:
                    over_http.append(time.perf_counter() - started)
                response.raise_for_status()
                assert response.json()["status"] == "assigned"
    finally:
        stop(proc)
    figures = {"in process (rank)": percentiles(in_process), "over HTTP (POST /assign, logged)": percentiles(over_http)}
    lines = [
        f"# POST /assign latency, {args.reps} candidate reps",
        "",
        f"`python -m bench.assign_latency --requests {args.requests} --reps {args.reps}` on {os.cpu_count()} cores "
        f"(machine load average at the end {os.getloadavg()[0]:.1f}); champion {artifact.model_version} from "
        f"{home}. One request at a time; the first of each kind is a warm-up.",
        "",
        "| path | p50 ms | p90 ms | requests |",
        "|---|---|---|---|",
        *(f"| {name} | {f['p50']:.0f} | {f['p90']:.0f} | {f['n']} |" for name, f in figures.items()),
    ]
    write_report(args.out, lines)
    http = figures["over HTTP (POST /assign, logged)"]
    print_headline([[f"/assign p50, {args.reps} reps (ms)", f"{http['p50']:.0f}", "", "", ""]])


if __name__ == "__main__":
    main()
