"""Training time against rows: the health model (4 calibration boosters and the final one, 500 trees each)
fitted on R and on 10 x R snapshot rows of one simulated export. The bar: 10x rows in at most 12x time.

    python -m bench.training_rows [--rows 10000] [--leads 100000] [--out bench/results/training_rows.md]

Rows are real point-in-time snapshots (matured, so labelled), drawn at random; their features are
computed first and not timed. `python -m bench.training` times a whole `leadscore train` instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bench.common import print_headline
from bench.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="R: the smaller run's rows (the larger has 10 R)")
    parser.add_argument("--leads", type=int, default=100_000, help="leads of the simulated export the rows come from")
    parser.add_argument("--out", default="bench/results/training_rows.md")
    args = parser.parse_args()
    from features.contract import load_export
    from features.pipeline import FeaturePipeline
    from features.snapshots import make_snapshots
    from leadscore.tools.simulator import simulate
    from models.health import NUM_ROUNDS, HealthModel

    data = Path(f"bench/.data/sim-{args.leads}-7")
    if not (data / "leads.parquet").exists():
        simulate(args.leads, 7, data, story="classic")
    tables = load_export(data).tables
    snaps = make_snapshots(tables)
    snaps = snaps[snaps["matured"]]
    if len(snaps) < 10 * args.rows:
        raise SystemExit(f"{data} has {len(snaps):,} labelled snapshots; need {10 * args.rows:,}: pass more --leads")
    snaps = snaps.sample(10 * args.rows, random_state=0).reset_index(drop=True)
    features = FeaturePipeline().fit_transform(tables, snaps, snaps["won_within"].to_numpy())
    y, groups = snaps["won_within"].to_numpy(), snaps["lead_id"].to_numpy()

    seconds = {}
    for n in (args.rows, 10 * args.rows):
        started = time.perf_counter()
        HealthModel().fit(features.iloc[:n], y[:n], groups[:n])
        seconds[n] = time.perf_counter() - started
    small, large = seconds[args.rows], seconds[10 * args.rows]
    ratio = large / small
    lines = [
        "# Training time against rows",
        "",
        f"`python -m bench.training_rows --rows {args.rows} --leads {args.leads}` on {platform.node()} "
        f"({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M')}. Health model: 5 boosters x {NUM_ROUNDS} "
        f"trees, {features.shape[1]} features. One run, one machine.",
        "",
        "| rows | seconds | ms per 1,000 rows |",
        "|---|---|---|",
        *[f"| {n:,} | {s:.1f} | {1000 * s / n * 1000:.1f} |" for n, s in seconds.items()],
        "",
        f"10x rows took {ratio:.1f}x the time (bar: at most 12x): {'met' if ratio <= 12 else 'missed'}.",
    ]
    write_report(args.out, lines)
    print_headline(
        [[f"training time, {10 * args.rows:,} vs {args.rows:,} rows (s)", f"{large:.1f}", f"{small:.1f}",
          f"{ratio:.1f}x", "<= 12x"]]
    )  # fmt: skip


if __name__ == "__main__":
    main()
