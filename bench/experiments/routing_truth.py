"""What routing is truly worth in the simulator: the true 90-day win rate of a period's new leads routed by simple
policies and by an oracle that knows the reps' true skills and the load penalty.

    python -m bench.experiments.routing_truth [--leads 8000] [--seeds 21 22 23 24 25] [--days 30]

For each world, the new leads created in `--days` days from day 200 of the simulated year are routed in time
order; a rep's load is the simulator's (new leads given in the 30 days before: `LoadTracker`, started from the
world's own assignments). Each policy's (lead, rep, load) triples are then valued by `true_win_probability`
(roll-outs of the simulator's own process from the lead's hidden state). The oracle routes each lead to the rep
with the highest true probability at that rep's current load, read from `win_probability_table` (other random
numbers than the valuation's, so its choices carry no selection bias into its score). A routing model (issue 18)
plugs in as one more policy: a function (lead_id, created seconds, loads) -> rep_id.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.assignment import world
from bench.report import write_report
from leadscore.tools.routing import Policy, oracle_policy, route
from leadscore.tools.simulator.assignment import load_world, true_win_probability
from leadscore.tools.simulator.simulate import DAY, EXPORT_TIME


def evaluate_world(world_dir: Path, first_day: int, days: int) -> dict[str, float]:
    w = load_world(world_dir)
    day = (w.leads["created_t"] // DAY).astype(int)
    period = w.leads[(day >= first_day) & (day < first_day + days)].sort_values("created_t")
    lead_ids = period.index.to_numpy()
    start = EXPORT_TIME - pd.Timedelta(days=365) + pd.Timedelta(days=first_day)
    rep_ids = list(w.reps.index)
    rng = np.random.default_rng(0)
    turn = iter(range(10**9))
    actual_owner = pd.read_parquet(world_dir / "leads.parquet").set_index("lead_id")["owner_id"]
    policies: dict[str, Policy] = {
        "world's own (random, uneven shares)": lambda lead, t, loads: (
            actual_owner[lead] if isinstance(actual_owner[lead], str) else rep_ids[rng.integers(len(rep_ids))]
        ),
        "random": lambda lead, t, loads: rep_ids[rng.integers(len(rep_ids))],
        "round robin": lambda lead, t, loads: rep_ids[next(turn) % len(rep_ids)],
        "least loaded": lambda lead, t, loads: rep_ids[int(np.argmin(loads))],
    }
    started = time.perf_counter()
    policies["oracle (true skills and load)"] = oracle_policy(world_dir, lead_ids, rep_ids)
    oracle_seconds = time.perf_counter() - started
    out = {}
    for name, policy in policies.items():
        reps, loads = route(world_dir, lead_ids, start, policy)
        out[name] = float(true_win_probability(world_dir, lead_ids, reps, loads, replicates=200, seed=2).mean())
    out["leads routed"] = float(len(lead_ids))
    out["oracle table s"] = oracle_seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=8000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23, 24, 25])
    parser.add_argument("--story", default=None, help="a preset for every world (default: drawn from each seed)")
    parser.add_argument("--first-day", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--out", default="bench/results/routing_truth.md")
    parser.add_argument("--data", default="bench/.data/stories")
    args = parser.parse_args()
    rows = {}
    started = time.perf_counter()
    for seed in args.seeds:
        world_dir = world(args.data, args.story, seed, args.leads)
        rows[f"seed {seed}"] = evaluate_world(world_dir, args.first_day, args.days)
        print(seed, rows[f"seed {seed}"], flush=True)
    total = time.perf_counter() - started
    table = pd.DataFrame(rows)
    policies = [i for i in table.index if i not in {"leads routed", "oracle table s"}]
    lines = [
        f"# True 90-day win rate by routing policy ({args.leads:,}-lead worlds, {args.days} days of new leads)",
        "",
        f"`python -m bench.experiments.routing_truth --leads {args.leads} --seeds {' '.join(map(str, args.seeds))}"
        f"{' --story ' + args.story if args.story else ''}`: {total:.0f} s in all (with any simulation that had to "
        "run). True P(won within 90 days of creation) from `true_win_probability`, 200 roll-outs per lead, mean "
        "over the routed leads; the oracle's table uses other random numbers (32 roll-outs).",
        "",
        "| policy | " + " | ".join(table.columns) + " | mean | worst |",
        "|---|" + "---|" * (len(table.columns) + 2),
    ]
    for name in policies:
        values = table.loc[name]
        lines.append(
            f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {values.mean():.4f} | {values.min():.4f} |"
        )
    for name in ["leads routed", "oracle table s"]:
        lines.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in table.loc[name]) + " | | |")
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
