"""Each simulator story measured: base win rate, oracle AUC, the variance each signal family carries, which
observable family carries the outcome, and the time to simulate.

    python -m bench.experiments.simulator_stories [--leads 8000] [--out bench/results/simulator_stories.md]

Worlds: the five named presets on seed 21, and the stories seeds 21..25 draw (the default of `leadscore
simulate`). Variance shares are of the static log-odds over valid leads (truth/story.json); the family AUCs
are `realism.signal_family_auc` (one simple score per family, "won within 90 days of creation").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.report import write_report
from leadscore.tools.simulator import simulate
from leadscore.tools.simulator.realism import out_of_range, ranges_for, realism_figures, signal_family_auc
from leadscore.tools.simulator.story import FAMILIES, PRESET_NAMES

SHARES = ("profile", "intent", "behaviour", "notes", "rep", "noise")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=8000)
    parser.add_argument("--out", default="bench/results/simulator_stories.md")
    parser.add_argument("--data", default="bench/.data/stories")
    args = parser.parse_args()
    worlds = [(name, 21) for name in PRESET_NAMES] + [(None, seed) for seed in range(21, 26)]
    lines = [
        f"# Simulator stories ({args.leads:,} leads per world)",
        "",
        f"`python -m bench.experiments.simulator_stories --leads {args.leads}`. Shares: variance of each term of "
        "the static log-odds over valid leads, over the total (terms are independent, so they add up to about 1; "
        "rep = skill and load, diligence aside). Family AUC: `realism.signal_family_auc`, the family with the "
        "highest in bold. Oracle AUC: `p_won_90` on matured snapshots.",
        "",
        "| story | seed | win rate | oracle AUC | "
        + " | ".join(f"{s} share" for s in SHARES)
        + " | "
        + " | ".join(f"{f} AUC" for f in FAMILIES)
        + " | simulate s | outside ranges |",
        "|" + "---|" * (5 + len(SHARES) + len(FAMILIES) + 1),
    ]
    for story, seed in worlds:
        out = Path(args.data) / f"{story or 'random'}-{seed}-{args.leads}"
        started = time.perf_counter()
        simulate(args.leads, seed, out, story=story, progress=False)
        seconds = time.perf_counter() - started
        figures = realism_figures(out)
        record = json.loads((out / "truth" / "story.json").read_text())
        variance = record["variance"]
        auc = signal_family_auc(out)
        best = max(auc, key=auc.get)
        shares = " | ".join(f"{variance[s] / variance['total']:.2f}" for s in SHARES)
        aucs = " | ".join(f"**{auc[f]:.3f}**" if f == best else f"{auc[f]:.3f}" for f in FAMILIES)
        outside = ", ".join(f"{k} {v:.3f}" for k, (v, _) in out_of_range(figures, ranges_for(out)).items()) or "none"
        lines.append(
            f"| {record['name']} | {seed} | {figures['win_rate']:.3f} | {figures['oracle_auc_90d']:.3f} | {shares} | "
            f"{aucs} | {seconds:.1f} | {outside} |"
        )
        print(lines[-1], flush=True)
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
