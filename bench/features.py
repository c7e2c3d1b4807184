"""Feature pipeline benchmark: batch features for N simulated leads and the single-lead online path.

    python -m bench.features [--leads 100000] [--seed 7] [--data DIR] [--out bench/results/features.md]

Reports leads per second for the batch path, the cost of each feature group, the one-lead online
latency (request parsing + features) and their ratio, all measured in this one run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import pandas as pd

from bench.common import print_headline
from bench.report import write_report
from features.contract import load_export, request_to_tables
from features.labels import export_time
from features.pipeline import FeaturePipeline
from features.snapshots import make_snapshots
from leadscore.tools.demo import lead_request
from leadscore.tools.simulator import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", help="an existing export (default: simulate one into bench/.data)")
    parser.add_argument("--online-repeats", type=int, default=100)
    parser.add_argument("--out", default="bench/results/features.md")
    args = parser.parse_args()

    data = Path(args.data or f"bench/.data/sim-{args.leads}-{args.seed}")
    if not (data / "leads.parquet").exists() and not (data / "leads.csv").exists():
        simulate(args.leads, args.seed, data, story="classic")
    started = time.perf_counter()
    tables = load_export(data).tables
    load_seconds = time.perf_counter() - started
    n_events = sum(len(tables[n]) for n in ("web_events", "activities", "stage_changes"))

    snaps = make_snapshots(tables)
    snaps = (
        snaps[snaps["matured"]].sample(min(20_000, int(snaps["matured"].sum())), random_state=0).reset_index(drop=True)
    )
    pipeline = FeaturePipeline()
    started = time.perf_counter()
    pipeline.fit_transform(tables, snaps, snaps["won_within"].to_numpy())
    fit_seconds = time.perf_counter() - started

    as_of = export_time(tables)
    batch_snaps = pd.DataFrame({"lead_id": tables["leads"]["lead_id"], "as_of": as_of})
    timings: dict[str, float] = {}
    started = time.perf_counter()
    features = pipeline.transform(tables, batch_snaps, details=True, timings=timings)
    batch_seconds = time.perf_counter() - started

    activity = tables["activities"]["lead_id"].value_counts()
    typical = activity.index[len(activity) // 2]  # a lead with the median number of activities
    request = lead_request(tables, [typical], as_of, personal=True)
    latencies = []
    for _ in range(args.online_repeats):
        t0 = time.perf_counter()
        request_as_of, result = request_to_tables(request)
        pipeline.transform(result.tables, pd.DataFrame({"lead_id": [typical], "as_of": request_as_of}))
        latencies.append(time.perf_counter() - t0)
    online_ms = 1000 * statistics.median(latencies)
    batch_per_lead_ms = 1000 * batch_seconds / len(batch_snaps)

    lines = [
        f"# Feature pipeline benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"`python -m bench.features --leads {args.leads} --seed {args.seed}`.",
        f"Export: {len(tables['leads']):,} leads, {n_events:,} event rows; loading and validating it took {load_seconds:.1f} s.",
        f"Fitting the pipeline (text models on {len(snaps):,} snapshots): {fit_seconds:.1f} s.",
        "",
        "| path | figure |",
        "|---|---|",
        f"| batch: {len(batch_snaps):,} leads as of the export, {features.shape[1]} features | {batch_seconds:.1f} s, "
        f"{len(batch_snaps) / batch_seconds:,.0f} leads/s ({batch_per_lead_ms:.3f} ms per lead) |",
        f"| online: one typical lead ({int(activity[typical])} activities), request parsing + features, median of "
        f"{args.online_repeats} | {online_ms:.1f} ms ({1000 / online_ms:,.0f} leads/s) |",
        f"| ratio online / batch per lead | {online_ms / batch_per_lead_ms:,.0f}x |",
        "",
        "| feature group (batch) | seconds | share |",
        "|---|---|---|",
    ]
    total = sum(timings.values())
    lines += [
        f"| {name} | {sec:.2f} | {sec / total:.0%} |" for name, sec in sorted(timings.items(), key=lambda kv: -kv[1])
    ]
    write_report(args.out, lines)
    headline = [[f"features, batch per lead ({len(batch_snaps):,} leads, ms)", f"{batch_per_lead_ms:.3f}",
                 f"online one lead {online_ms:.1f}", f"{online_ms / batch_per_lead_ms:,.0f}x", "reported"]]  # fmt: skip
    headline += [[f"features: {name} (s)", f"{sec:.2f}", "", f"{sec / total:.0%} of batch", "reported"]
                 for name, sec in sorted(timings.items(), key=lambda kv: -kv[1])]  # fmt: skip
    print_headline(headline)


if __name__ == "__main__":
    main()
