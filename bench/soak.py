"""Soak: `leadscore serve` with two model workers under 32 concurrent clients for five minutes, a new champion
registered half-way, the memory of every process of the service sampled throughout.

    python -m bench.soak [--home DIR] [--seconds 300] [--concurrency 32] [--workers 2] [--poll 10]
                         [--leads-per-request 1] [--out bench/results/soak.md]

What one run checks (each printed with its figure, and the exit code says whether all held):
- no request fails, and every scored lead has its row in the prediction log;
- every answer comes from exactly one model version: the old one for requests sent before the new champion,
  the new one for requests sent after every model worker said it switched;
- every model worker switches (its log line, with its pid) within the poll interval plus its load time;
- resident memory of each process at the end against its level after the warm-up: growth <= 10 %.
The service reads a copy of the home's registry, so the soak's new champion never touches the home's.
The tests run the same code for under a minute (tests/integration/test_reliability.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.load import export_requests, run_load
from bench.report import write_report

KEY = "soak-key-0123456789abcdef"
RSS_BAR = 0.10
SWITCHED = re.compile(r"champion reloaded in model worker pid (\d+) in ([\d.]+) s: now (\S+)")


def copy_registry(tracking_uri: str, directory: Path) -> str:
    """A consistent copy of a SQLite registry (SQLite's backup API, safe while it is in use); the artifacts
    it points at are only read."""
    if not tracking_uri.startswith("sqlite:///"):
        raise SystemExit(f"the soak copies a SQLite registry; the tracking URI is {tracking_uri}")
    copy = directory / "mlflow.db"
    with sqlite3.connect(tracking_uri.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return f"sqlite:///{copy}"


def register_new_champion(tracking_uri: str, model_name: str) -> str:
    """Register the champion's model again as a new version and move the alias to it (as a retraining would);
    the digest `leadscore train` records is copied, or the service would refuse it. Returns its version."""
    from mlflow.tracking import MlflowClient

    from models.champion import CHAMPION
    from models.integrity import DIGEST_TAG

    client = MlflowClient(tracking_uri)
    current = client.get_model_version_by_alias(model_name, CHAMPION)
    source = current.source
    if source.startswith(
        "models:/"
    ):  # MLflow resolves a logged model's URI on the global tracking URI: resolve it here
        source = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    new = client.create_model_version(model_name, source, run_id=current.run_id)
    client.set_model_version_tag(model_name, new.version, DIGEST_TAG, current.tags[DIGEST_TAG])
    client.set_registered_model_alias(model_name, CHAMPION, new.version)
    return str(new.version)


class Watcher(threading.Thread):
    """Every `every` seconds: the resident memory of each process of the service, and the model workers'
    switch lines that appeared in its log (with the time they were seen)."""

    def __init__(self, server: psutil.Process, log: Path, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.server, self.log, self.every = server, log, every
        self.samples: list[tuple[float, dict[int, tuple[str, int]]]] = []
        self.switches: dict[int, tuple[float, float]] = {}  # pid -> (seen at, seconds its loading took)
        self.started = time.monotonic()
        self._halt, self._offset = threading.Event(), 0

    def run(self) -> None:
        while not self._halt.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()

    def sample(self) -> None:
        now = time.monotonic() - self.started
        processes = {}
        for process in [self.server, *self.server.children(recursive=True)]:
            try:
                processes[process.pid] = (_role(process, self.server), process.memory_info().rss)
            except psutil.NoSuchProcess:
                continue
        self.samples.append((now, processes))
        with open(self.log, encoding="utf-8", errors="replace") as log:
            log.seek(self._offset)
            text = log.read()
            self._offset = log.tell()
        for pid, loading, _version in SWITCHED.findall(text):
            self.switches.setdefault(int(pid), (now, float(loading)))


def _role(process: psutil.Process, server: psutil.Process) -> str:
    if process.pid == server.pid:
        return "leadscore serve"
    if process.ppid() == server.pid:
        return "BentoML supervisor"
    return "model worker" if "ModelWorker" in " ".join(process.cmdline()) else "HTTP worker"


def timeline(samples: list, points: int = 10) -> list[tuple[float, int]]:
    """(seconds, MB of the whole service) at about `points` moments of the run."""
    step = max(1, len(samples) // points)
    return [(round(t), round(sum(rss for _, rss in processes.values()) / 2**20)) for t, processes in samples[::step]]


def memory_growth(samples: list, warm_up: float) -> dict[int, dict]:
    """Per process seen from the warm-up to the end: role, MB after the warm-up, MB at the end, growth."""
    warm = next(processes for t, processes in samples if t >= warm_up)
    _, end = samples[-1]
    return {
        pid: {
            "role": role,
            "warm_mb": round(rss / 2**20),
            "end_mb": round(end[pid][1] / 2**20),
            "growth": round(end[pid][1] / rss - 1, 3),
        }  # fmt: skip
        for pid, (role, rss) in warm.items()
        if pid in end
    }


def soak(
    env: dict[str, str],
    requests: list[dict],
    *,
    seconds: float,
    concurrency: int,
    workers: int,
    poll: int,
    workdir: Path,
    port: int,
) -> dict:
    """Start `leadscore serve` on a copy of the registry, load it for `seconds`, register a new champion
    half-way, stop it; the figures and the checks (name -> held?)."""
    from leadscore.tools.demo import wait_until_ready
    from models.settings import Settings
    from serving.predlog import PredictionLog

    registry = Settings.from_env()
    tracking_uri = copy_registry(registry.tracking_uri, workdir)
    log_url = f"sqlite:///{workdir / 'predictions.db'}"
    env = {**env, "LEADSCORE_MLFLOW_URI": tracking_uri, "LEADSCORE_API_KEYS": KEY,
           "LEADSCORE_PREDICTION_LOG_URL": log_url, "LEADSCORE_RELOAD_SECONDS": str(poll),
           "LEADSCORE_MODEL_WORKERS": str(workers), "LEADSCORE_STORE_URL": f"sqlite:///{workdir / 'leads.db'}",
           "LEADSCORE_AUDIT_LOG": str(workdir / "audit.jsonl")}  # fmt: skip
    env.pop("LEADSCORE_API_KEYS_FILE", None)
    url, log = f"http://127.0.0.1:{port}", workdir / "server.log"
    command = [sys.executable, "-m", "leadscore.tools.cli", "serve", "--port", str(port), "--host", "127.0.0.1"]
    with open(log, "w") as out:
        server = psutil.Popen(command, env=env, stdout=out, stderr=out)
        try:
            wait_until_ready(url, server, timeout=300)
            model_workers = [p for p in server.children(recursive=True) if _role(p, server) == "model worker"]
            watcher = Watcher(server, log)
            watcher.start()
            answers: list[tuple[float, set[str]]] = []
            promotion: dict[str, float | str] = {}

            def promote_half_way() -> None:
                time.sleep(seconds / 2)
                version = register_new_champion(tracking_uri, registry.model_name)
                promotion["version"] = f"{registry.model_name}/{version}"  # as answers name it
                promotion["at"] = time.monotonic() - watcher.started

            promoter = threading.Thread(target=promote_half_way, daemon=True)
            promoter.start()
            figures = run_load(url, KEY, requests, concurrency, seconds,
                               on_answer=lambda sent, body: answers.append(
                                   (sent - watcher.started, {r["model_version"] for r in body["results"]})))  # fmt: skip
            promoter.join()
            watcher.stop()
        finally:
            server.terminate()
            server.wait(timeout=120)
    request_ids = figures.pop("request_ids")
    logged = PredictionLog(log_url).count_for(request_ids)
    old = {v for t, versions in answers if t < promotion["at"] for v in versions}
    switched = [watcher.switches.get(p.pid) for p in model_workers]
    last_switch = max((s[0] for s in switched if s), default=float("inf"))
    after = {v for t, versions in answers if t > last_switch for v in versions}
    delays = [round(s[0] - promotion["at"], 1) if s else None for s in switched]
    loading = [s[1] if s else None for s in switched]
    # Seen by a watcher that looks every `every` seconds: a switch is on time if it came within the poll
    # interval plus the worker's own loading time (and one look of the watcher).
    on_time = [s is not None and s[0] - promotion["at"] <= poll + s[1] + watcher.every for s in switched]
    growth = memory_growth(watcher.samples, warm_up=min(60.0, seconds / 5))
    total_warm, total_end = (sum(p[k] for p in growth.values()) for k in ("warm_mb", "end_mb"))
    checks = {
        "no failed request": figures["errors"] == 0,
        "prediction-log rows == scored leads": logged == figures["scored"] > 0,
        "every answer from one model version": all(len(versions) == 1 for _, versions in answers),
        "old version before the promotion, new after every switch": len(old) == 1 and after == {promotion["version"]},
        f"all {workers} model workers switched within the poll interval": len(model_workers) == workers
        and all(on_time),
        "resident memory growth <= 10 % per process": all(p["growth"] <= RSS_BAR for p in growth.values()),
    }
    return figures | {
        "log_rows": logged,
        "workers": len(model_workers),
        "poll_seconds": poll,
        "promoted_at_s": round(promotion["at"], 1),
        "switch_delays_s": delays,
        "loading_s": loading,
        "memory_timeline_mb": timeline(watcher.samples),
        "answers_after_switch": sum(1 for t, _ in answers if t > last_switch),
        "versions": {"before": sorted(old), "after": sorted(after)},
        "memory": list(growth.values()),
        "memory_total_mb": {"warm": total_warm, "end": total_end, "growth": round(total_end / total_warm - 1, 3)},
        "checks": checks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="LEADSCORE_HOME with a trained champion (default: bench/.service-home)")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=int, default=10, help="LEADSCORE_RELOAD_SECONDS of the soaked service")
    parser.add_argument("--leads-per-request", type=int, default=1)
    parser.add_argument("--port", type=int, default=3932)
    parser.add_argument("--out", default="bench/results/soak.md")
    args = parser.parse_args()
    from bench.common import bench_home

    _, data = bench_home(args.home)
    requests = export_requests(data, args.leads_per_request)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))  # kept: the server's log is there
    figures = soak(dict(os.environ), requests, seconds=args.seconds, concurrency=args.concurrency,
                   workers=args.workers, poll=args.poll, workdir=workdir, port=args.port)  # fmt: skip
    print(f"server log: {workdir / 'server.log'}")
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    write_report(args.out, report(figures, args))
    if not all(figures["checks"].values()):
        raise SystemExit(1)


def report(figures: dict, args: argparse.Namespace) -> list[str]:
    total = figures["memory_total_mb"]
    lines = [
        "# Soak",
        "",
        f"`python -m bench.soak --seconds {args.seconds:.0f} --concurrency {args.concurrency} --workers "
        f"{args.workers} --poll {args.poll}` on this machine ({os.cpu_count()} cores), "
        f"{time.strftime('%Y-%m-%d %H:%M')}: {figures['requests']} requests of {args.leads_per_request} lead(s) in "
        f"{figures['seconds']} s ({figures['leads_per_second']} leads/s), statuses {figures['statuses']}. "
        f"A new champion was registered after {figures['promoted_at_s']} s.",
        "",
        "| check | held | figure |",
        "|---|---|---|",
    ]
    detail = {
        "no failed request": f"{figures['errors']} errors",
        "prediction-log rows == scored leads": f"{figures['log_rows']} rows, {figures['scored']} scored",
        "every answer from one model version": f"versions before {figures['versions']['before']}, after "
        f"{figures['versions']['after']} ({figures['answers_after_switch']} answers after the last switch)",
        "resident memory growth <= 10 % per process": f"total {total['warm']} -> {total['end']} MB "
        f"({100 * total['growth']:+.1f} %)",
    }
    for name, held in figures["checks"].items():
        figure = detail.get(name, "")
        if name.startswith("all "):
            figure = (f"switched {figures['switch_delays_s']} s after the promotion (poll {figures['poll_seconds']} s; "
                      f"loading took {figures['loading_s']} s)")  # fmt: skip
        lines.append(f"| {name} | {'yes' if held else '**no**'} | {figure} |")
    lines += ["", "| process | MB after the warm-up | MB at the end | growth |", "|---|---|---|---|"]
    lines += [
        f"| {p['role']} | {p['warm_mb']} | {p['end_mb']} | {100 * p['growth']:+.1f} % |" for p in figures["memory"]
    ]
    lines += ["", "The whole service over the run (s: MB): "
              + ", ".join(f"{t}: {mb}" for t, mb in figures["memory_timeline_mb"]) + "."]  # fmt: skip
    return lines


if __name__ == "__main__":
    main()
