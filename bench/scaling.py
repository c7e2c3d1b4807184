"""Scaling benchmark: simulate, features, training (health model) and batch scoring at growing lead counts,
in one process and on a Dask LocalCluster, with the time and the peak memory of every process.

    python -m bench.scaling [--leads 100000 300000 1000000] [--steps simulate features score train]
                            [--model-dir DIR] [--out bench/results/scaling.md]

Every step runs in a fresh child process, so a step's peak resident memory is its own (read from the
kernel when the child ends); the Dask steps also report each worker's peak, read inside the workers.
The model is the registry's champion (`make demo` makes one) unless --model-dir names an artifact.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from bench.report import write_report

DATA = Path("bench/.data")
STEPS = ["simulate", "features", "score", "train"]


def export_dir(leads: int, seed: int = 7) -> Path:
    return DATA / f"sim-{leads}-{seed}"


def _artifact(model_dir: str | None):
    from models.artifact import LeadArtifact
    from models.champion import load_champion
    from models.settings import Settings

    return LeadArtifact.load(model_dir) if model_dir else load_champion(Settings.from_env())


def _all_leads(tables):
    """Every lead as of the export's end: the feature step's rows (scoring takes the open ones only)."""
    from features.labels import export_time
    from leadscore.jobs.batch import snapshots_to_score

    return snapshots_to_score(tables, export_time(tables), include_closed=True)


def _training_rows(tables, leads: int):
    """One matured snapshot per lead (a random one): the health model's rows for this many leads."""
    from features.snapshots import make_snapshots

    snaps = make_snapshots(tables)
    snaps = snaps[snaps["matured"]].sample(frac=1.0, random_state=0).drop_duplicates("lead_id")
    return snaps.head(leads).reset_index(drop=True)


def run_step(step: str, engine: str, leads: int, model_dir: str | None) -> dict:
    """One measurement, in this (child) process. Seconds exclude loading the export, reported apart."""
    import resource

    from features.contract import load_export
    from leadscore.jobs.scaleout import dask_client

    data = export_dir(leads)
    figures: dict = {}
    with dask_client("local") if engine == "dask" else nullcontext() as client:
        started = time.perf_counter()
        if step == "score":
            from leadscore.jobs.batch import score_export
            from leadscore.jobs.scaleout import score_export_on_dask

            artifact, out = _artifact(model_dir), data / f"scores-{engine}.parquet"
            started = time.perf_counter()
            if client is None:
                summary = score_export(artifact, data, out, progress=False)
            else:
                summary = score_export_on_dask(artifact, data, out, client, progress=False)
            figures["leads_scored"] = summary["leads"]
        else:
            tables = load_export(data).tables
            figures["load_seconds"] = time.perf_counter() - started
            if step == "features":
                pipeline = _artifact(model_dir).pipeline
                snaps = _all_leads(tables)
                started = time.perf_counter()
                if client is None:
                    pipeline.transform(tables, snaps, details=True)
                else:
                    from leadscore.jobs.scaleout import DaskFeatures

                    DaskFeatures(client).transform(pipeline, tables, snaps)
                figures["rows"] = len(snaps)
            elif step == "train":
                from models.health import HealthModel

                rows = _training_rows(tables, leads)
                features = _artifact(model_dir).pipeline.transform(tables, rows)
                del tables
                started = time.perf_counter()
                HealthModel().fit(features, rows["won_within"].to_numpy(), rows["lead_id"].to_numpy(), client=client)
                figures["rows"] = len(rows)
        figures["seconds"] = time.perf_counter() - started
        if client is not None:
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
            figures["worker_peak_gb"] = sorted(peaks.values())
    return figures


def measure(command: list[str]) -> tuple[dict, float, float]:
    """Run a child; return its JSON figures, wall seconds and peak resident memory (GB)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {child.returncode}")
    lines = [line for line in output.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), time.perf_counter() - started, usage.ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=STEPS)
    parser.add_argument("--engines", nargs="+", choices=["one", "dask"], default=["one", "dask"])
    parser.add_argument("--model-dir", help="a saved model artifact (default: the registry's champion)")
    parser.add_argument("--out", default="bench/results/scaling.md")
    parser.add_argument("--step", nargs=3, metavar=("STEP", "ENGINE", "LEADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # the child process
        step, engine, leads = args.step
        print(json.dumps(run_step(step, engine, int(leads), args.model_dir)))
        return

    rows = []
    for leads in args.leads:
        for step in args.steps:
            if step == "simulate":
                command = [
                    sys.executable,
                    "-m",
                    "leadscore.tools.cli",
                    "simulate",
                    "--leads",
                    str(leads),
                    "--seed",
                    "7",
                ]
                if (export_dir(leads) / "leads.parquet").exists():
                    command = None  # reuse: the simulation is deterministic for a seed
                else:
                    command += ["--out", str(export_dir(leads))]
                if command:
                    _, wall, peak = measure(command)
                    rows.append(_row(leads, "simulate", "one", {"seconds": wall}, peak))
                continue
            for engine in args.engines:
                command = [sys.executable, "-m", "bench.scaling", "--step", step, engine, str(leads)]
                command += ["--model-dir", args.model_dir] if args.model_dir else []
                figures, _, peak = measure(command)
                rows.append(_row(leads, step, engine, figures, peak))
                print(rows[-1], flush=True)
                _write(args, rows)
    _write(args, rows)


def _row(leads: int, step: str, engine: str, figures: dict, peak_gb: float) -> dict:
    return {"leads": leads, "step": step, "engine": engine, "peak_gb": peak_gb, **figures}


def _write(args: argparse.Namespace, rows: list[dict]) -> None:
    lines = [
        "# Scaling benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GiB, Python {platform.python_version()}; "
        f"command `python -m bench.scaling --leads {' '.join(map(str, args.leads))}`; "
        f"Dask: LocalCluster, {os.cpu_count()} worker processes x 1 thread, 25,000 leads per partition.",
        "",
        "Seconds exclude loading the export (given apart where the step loads it in one process); peak memory is",
        "the process's (for Dask: the client process, then each worker).",
        "",
        "| leads | step | engine | rows | seconds | rows/s | load s | peak GB (process) | peak GB per worker |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        count = r.get("leads_scored", r.get("rows"))
        rate = f"{count / r['seconds']:,.0f}" if count else ""
        count = f"{count:,}" if count else ""
        workers = " / ".join(f"{g:.2f}" for g in r.get("worker_peak_gb", []))
        load = f"{r['load_seconds']:.0f}" if "load_seconds" in r else ""
        lines.append(
            f"| {r['leads']:,} | {r['step']} | {r['engine']} | {count} | {r['seconds']:.0f} | {rate} | {load} "
            f"| {r['peak_gb']:.2f} | {workers} |"
        )
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
