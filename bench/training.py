"""Training benchmark: every model of the artifact on N simulated leads, seconds per step and peak memory.

    python -m bench.training [--leads 100000] [--seed 7] [--data DIR] [--out bench/results/training.md]

Runs `train_models` (evaluation pass on a time split, then the served pass on all history) and reports
the seconds of each step of both passes, the snapshot counts and the peak resident memory, from this run.
"""

from __future__ import annotations

import argparse
import logging
import platform
import resource
import time
from pathlib import Path

from bench.report import write_report
from features.contract import load_export
from leadscore.tools.simulator import simulate
from training.train import train_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", help="an existing export (default: simulate one into bench/.data)")
    parser.add_argument("--out", default="bench/results/training.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("jieba").setLevel(logging.WARNING)

    data = Path(args.data or f"bench/.data/sim-{args.leads}-{args.seed}")
    if not (data / "leads.parquet").exists() and not (data / "leads.csv").exists():
        simulate(args.leads, args.seed, data, story="classic")
    tables = load_export(data).tables
    labels = data / "labels" / "intent.csv"
    started = time.perf_counter()
    result = train_models(tables, intent_labels=labels if labels.exists() else None)
    total = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2

    m = result.metrics
    lines = [
        f"# Training benchmark: {len(tables['leads']):,} leads",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, Python {platform.python_version()}; "
        f"data {data}; command `python -m bench.training --leads {args.leads} --seed {args.seed}`.",
        "",
        "| | value |",
        "|---|---|",
        f"| total (both passes, intent model, baselines, evaluation) | {total:.0f} s |",
        f"| evaluation pass: training / test snapshots | {m['train_snapshots']:,.0f} / {m['test_snapshots']:,.0f} |",
        f"| served pass snapshots | {result.params['served_snapshots']:,} |",
        f"| peak resident memory | {peak_gb:.1f} GB |",
        "",
        "Evaluation pass, seconds per step:",
        "",
        "| step | seconds |",
        "|---|---|",
        *[
            f"| {k.removeprefix('seconds_').replace('_', ' ')} | {v:.1f} |"
            for k, v in m.items()
            if k.startswith("seconds_")
        ],
        "",
        f"Holdout figures of this run: health AUC {m['test_auc']:.3f} (best customer baseline "
        f"{m['best_baseline_auc']:.3f}), ECE {m['test_ece']:.3f}; close date AUC 30/60/90 d "
        f"{m['closedate_auc_30d']:.3f} / {m['closedate_auc_60d']:.3f} / {m['closedate_auc_90d']:.3f}.",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
