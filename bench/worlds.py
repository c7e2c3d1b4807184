"""Quality over randomised worlds: for each seed, a story drawn from it (leadscore/tools/simulator/story.py), a
training world and a judging world told by that same story with other seeds. The models trained on the first
(model selection included) are judged on the second: the chosen family, the holdout AUC against the customer's
baselines, the share of the oracle's lift, calibration, and the close-date model's. One table, mean and worst.

    python -m bench.worlds [--seeds 71 72 73 74 75] [--train-leads 8000] [--judge-leads 8000]

tests/model/test_quality_bars.py runs the same `world_figures` on smaller worlds and asserts issue 16's bars.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from features.contract import load_export
from leadscore.tools.simulator import simulate
from leadscore.tools.simulator.story import draw
from training.evaluate import evaluate_artifact
from training.train import train_models

DATA = Path("bench/.data/worlds")


def world_figures(seed: int, train_leads: int, judge_leads: int, root: Path = DATA) -> dict[str, float | str]:
    """Train on a world of `seed`'s story, judge on another world of the same story (seed + 500)."""
    story = draw(seed)
    folders = {}
    for role, world_seed, leads in (("train", seed, train_leads), ("judge", seed + 500, judge_leads)):
        folders[role] = root / f"{story.name}-{role}-{leads}"
        if not (folders[role] / "leads.parquet").exists():
            simulate(leads, world_seed, folders[role], story=story, n_snapshots=min(2000, leads // 2), progress=False)
    started = time.perf_counter()
    result = train_models(load_export(folders["train"]).tables, progress=False, refit=False)
    seconds = time.perf_counter() - started
    metrics = evaluate_artifact(result.artifact, folders["judge"], oracle_parts=("health", "closedate"))["metrics"]
    card = result.artifact.card
    return {
        "world": story.name,
        "served": card.get("family", "?"),
        "fold_auc_margin_over_best_baseline": card.get("margin_over_best_baseline", float("nan")),
        "auc": metrics["test_auc"],
        "best_baseline_auc": metrics["best_baseline_auc"],
        "gain_over_best_baseline": metrics["auc_gain_over_best_baseline"],
        "oracle_share": metrics["oracle_oracle_share"],
        "ece_later": metrics["test_ece"],
        "ece_all_matured": metrics["ece_all_matured"],
        **{f"closedate_ece_all_{d}d": metrics[f"closedate_ece_all_{d}d"] for d in (30, 60, 90)},
        **{f"closedate_oracle_share_{d}d": metrics[f"closedate_oracle_share_{d}d"] for d in (30, 60, 90)},
        "train_seconds": seconds,
    }


def summary(rows: list[dict]) -> pd.DataFrame:
    """The per-world rows with their mean and worst case below (worst: the lowest share or gain, the highest
    calibration error)."""
    table = pd.DataFrame(rows)
    numeric = table.select_dtypes("number").columns
    worst_is_max = [c for c in numeric if "ece" in c or c == "train_seconds"]
    mean = table[numeric].mean()
    worst = pd.Series({c: table[c].max() if c in worst_is_max else table[c].min() for c in numeric})
    extra = pd.DataFrame([mean, worst]).assign(world=["mean", "worst"], served="")
    return pd.concat([table, extra], ignore_index=True)


def markdown(table: pd.DataFrame) -> str:
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[71, 72, 73, 74, 75])
    parser.add_argument("--train-leads", type=int, default=8000)
    parser.add_argument("--judge-leads", type=int, default=8000)
    parser.add_argument("--out", default="bench/results/worlds.md")
    args = parser.parse_args()
    rows = [world_figures(seed, args.train_leads, args.judge_leads) for seed in args.seeds]
    table = summary(rows)
    text = markdown(table)
    command = f"`python -m bench.worlds --seeds {' '.join(map(str, args.seeds))} --train-leads {args.train_leads} --judge-leads {args.judge_leads}`"
    Path(args.out).write_text(f"# Quality over randomised worlds\n\n{command}, {time.strftime('%Y-%m-%d')}\n\n{text}\n")
    print(text)


if __name__ == "__main__":
    main()
