"""Single-feature AUC for 90-day wins on a simulated world, so that leakage would stand out.

    python -m bench.feature_auc [--leads 20000] [--seed 3] [--out bench/results/feature_auc.md]

The pipeline is fitted on the training period and the AUCs are measured on the later test period
(matured snapshots), exactly as the health model is evaluated.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.report import write_report
from features.catalogue import CATALOGUE
from features.contract import load_export
from features.pipeline import FeaturePipeline
from features.snapshots import make_snapshots
from leadscore.tools.simulator import simulate
from training.audit import single_feature_auc
from training.split import time_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", default="bench/results/feature_auc.md")
    args = parser.parse_args()
    data = Path(f"bench/.data/sim-{args.leads}-{args.seed}")
    if not (data / "leads.parquet").exists():
        simulate(args.leads, args.seed, data, story="classic")
    tables = load_export(data).tables
    snapshots = make_snapshots(tables)
    split = time_split(tables, snapshots)
    train = split.train[split.train["matured"]].reset_index(drop=True)
    pipeline = FeaturePipeline()
    pipeline.fit_transform(tables, train, train["won_within"].to_numpy())
    test_snaps = split.test[split.test["matured"]].reset_index(drop=True)
    table = single_feature_auc(pipeline.transform(tables, test_snaps), test_snaps["won_within"].to_numpy())
    lines = [
        f"# Single-feature AUC, 90-day win (simulated world: {args.leads:,} leads, seed {args.seed})",
        "",
        f"`python -m bench.feature_auc --leads {args.leads} --seed {args.seed}`; pipeline fitted on "
        f"{len(train):,} training snapshots, AUC on {len(test_snaps):,} later test snapshots "
        f"(positive rate {test_snaps['won_within'].mean():.3f}). strength = max(AUC, 1 - AUC).",
        "",
        "| # | feature | group | AUC | strength | missing |",
        "|---|---|---|---|---|---|",
    ]
    for i, row in table.iterrows():
        group = CATALOGUE[row["feature"]].group
        lines.append(
            f"| {i + 1} | {row['feature']} | {group} | {row['auc']:.3f} | {row['strength']:.3f} | {row['missing']:.0%} |"
        )
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
