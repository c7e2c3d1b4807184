"""Explanation benchmark: LightGBM's own TreeSHAP (`pred_contrib=True`, what the service uses) against
shap's TreeExplainer on the served health model, on the same rows, and a plain prediction for scale.

    python -m bench.explain [--rows 2000] [--out bench/results/explain.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from bench.common import bench_home, print_headline
from bench.report import write_report


def _best_of(call, repeats: int = 3) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--out", default="bench/results/explain.md")
    args = parser.parse_args()
    _, data = bench_home()
    import shap

    from features.catalogue import FEATURES
    from features.contract import load_export
    from features.labels import export_time
    from models.champion import load_champion
    from models.health import trees_of
    from models.settings import Settings

    artifact = load_champion(Settings.from_env())
    tables = load_export(data).tables
    leads = tables["leads"]["lead_id"].sample(min(args.rows, len(tables["leads"])), random_state=0)
    snaps = pd.DataFrame({"lead_id": leads.to_numpy(), "as_of": export_time(tables)})
    features = artifact.pipeline.transform(tables, snaps)
    trees = trees_of(artifact.health.scorer_)  # the first LightGBM scorer in the served family
    if not trees:
        raise SystemExit(f"the champion's health model has no LightGBM scorer to time: {artifact.health.family}")
    booster, rows = trees[0].booster_, features[trees[0].columns_]
    explainer = shap.TreeExplainer(booster)
    ours = booster.predict(rows, pred_contrib=True)
    theirs = explainer.shap_values(rows)
    difference = float(np.abs(ours[:, :-1] - theirs).max())
    predict = _best_of(lambda: booster.predict(rows))
    contrib = _best_of(lambda: booster.predict(rows, pred_contrib=True))
    tree_explainer = _best_of(lambda: explainer.shap_values(rows))
    per_row = lambda s: 1000 * s / len(rows)  # noqa: E731
    lines = [
        "# Explanation benchmark",
        "",
        f"`python -m bench.explain --rows {args.rows}` on {platform.node()} ({os.cpu_count()} cores), "
        f"{time.strftime('%Y-%m-%d %H:%M')}; model {artifact.model_version} ({booster.num_trees()} trees, "
        f"{len(FEATURES)} features); {len(rows):,} rows; best of 3. One run, one machine.",
        "",
        "| method | ms per row | ratio to pred_contrib |",
        "|---|---|---|",
        f"| LightGBM `predict(pred_contrib=True)` (served) | {per_row(contrib):.3f} | 1.00x |",
        f"| shap `TreeExplainer(booster).shap_values` | {per_row(tree_explainer):.3f} | {tree_explainer / contrib:.2f}x |",
        f"| plain prediction (no explanation), for scale | {per_row(predict):.4f} | {predict / contrib:.3f}x |",
        "",
        f"Largest difference between the two explanations: {difference:.1e} (log-odds).",
    ]
    write_report(args.out, lines)
    print_headline(
        [
            ["explanation per row (ms)", f"pred_contrib {per_row(contrib):.3f}", f"shap TreeExplainer {per_row(tree_explainer):.3f}",
             f"{contrib / tree_explainer:.2f}x", f"same values (max diff {difference:.0e})"],
        ]
    )  # fmt: skip


if __name__ == "__main__":
    main()
