"""Load and soak: N concurrent clients post /score requests for a fixed time; every answer is counted.

    python -m bench.load --url http://127.0.0.1:3000 --data DIR [--seconds 3600] [--concurrency 32]
                         [--leads-per-request 4] [--prediction-log sqlite:///.leadscore/predictions.db]

The key comes from LEADSCORE_API_KEY (or the demo's key file). With --prediction-log, the rows logged for
the run's requests are counted and compared with the leads scored (they must be equal: nothing lost).
The tests run the same code for 20 seconds (tests/integration/test_reliability.py); a soak is this
command for an hour or a night, watching the service's memory (`/metrics`) meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def run_load(
    url: str,
    key: str,
    requests: list[dict],
    concurrency: int,
    seconds: float,
    on_answer: Callable[[float, dict], None] | None = None,
) -> dict:
    """Post the requests round-robin from `concurrency` threads until `seconds` have passed; `on_answer`
    gets each 200 answer's body with the time.monotonic() its request was sent."""
    counts = {"requests": 0, "errors": 0, "scored": 0, "rejected": 0}
    request_ids: list[str] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(worker: int) -> None:
        with httpx.Client(timeout=120, headers={"x-api-key": key}) as http:
            i = worker
            while time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    response = http.post(f"{url}/score", json=requests[i % len(requests)])
                    status = response.status_code
                except httpx.HTTPError:
                    response, status = None, 0
                i += concurrency
                with lock:
                    counts["requests"] += 1
                    statuses[status] = statuses.get(status, 0) + 1
                    if status != 200:
                        counts["errors"] += 1
                        continue
                    body = response.json()
                    counts["scored"] += len(body["results"])
                    counts["rejected"] += len(body["errors"])
                    request_ids.append(body["request_id"])
                    if on_answer is not None:
                        on_answer(sent, body)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return counts | {"statuses": statuses, "seconds": round(elapsed, 1), "concurrency": concurrency,
                     "leads_per_second": round(counts["scored"] / elapsed, 1), "request_ids": request_ids}  # fmt: skip


def export_requests(data: Path, leads_per_request: int, leads: int = 2000) -> list[dict]:
    """/score requests for up to `leads` leads of the export drawn at random, as of its end, with the phones
    and e-mails a CRM sends."""
    from features.contract import load_export
    from features.labels import export_time
    from leadscore.tools.demo import lead_request

    tables = load_export(data).tables
    ids = tables["leads"]["lead_id"].sample(min(leads, len(tables["leads"])), random_state=0).tolist()
    step, as_of = leads_per_request, export_time(tables)
    return [lead_request(tables, ids[i : i + step], as_of, personal=True) for i in range(0, len(ids), step)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--data", required=True, help="the export whose leads are sent")
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--leads-per-request", type=int, default=4)
    parser.add_argument("--prediction-log", help="the service's LEADSCORE_PREDICTION_LOG_URL, to count its rows")
    args = parser.parse_args()
    from leadscore.tools.demo import demo_api_key
    from models.settings import Settings

    key = os.environ.get("LEADSCORE_API_KEY") or demo_api_key(Settings.from_env().home)
    requests = export_requests(Path(args.data), args.leads_per_request)
    figures = run_load(args.url, key, requests, args.concurrency, args.seconds)
    request_ids = figures.pop("request_ids")
    if args.prediction_log:
        from serving.predlog import PredictionLog

        figures["log_rows"] = PredictionLog(args.prediction_log).count_for(request_ids)
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if figures["errors"] or figures.get("log_rows", figures["scored"]) != figures["scored"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
