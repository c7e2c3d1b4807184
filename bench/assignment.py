"""Routing by leadscore vs simple policies and the oracle, judged by the simulator's truth, over drawn worlds.

    python -m bench.assignment [--leads 8000] [--seeds 21 22 23 24 25] [--days 30] [--select]

Per world (a story drawn from the seed): leadscore is trained on the export as it stood on day 200 and routes
the next 30 days of new leads in time order through models/assignment.py (what POST /assign runs), knowing only
that export and the loads its own choices create; every policy's (lead, rep, load) triples are then valued by
`true_win_probability` (200 roll-outs each, the same random numbers for every policy). leadscore/tools/routing.py
has the details; docs/assignment.md reads the results (bench/results/assignment.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from bench.report import write_report
from leadscore.tools.routing import evaluate_world, table_lines
from leadscore.tools.simulator import simulate
from leadscore.tools.simulator.story import Story, resolve


def world(data: str, story: str | None, seed: int, leads: int) -> Path:
    """The world of this seed (simulated once, kept in bench/.data)."""
    world_dir = Path(data) / f"{story or 'random'}-{seed}-{leads}"
    story_file = world_dir / "truth" / "story.json"
    if not story_file.exists() or Story.from_json(json.loads(story_file.read_text())) != resolve(story, seed):
        simulate(leads, seed, world_dir, story=story, progress=False)
    return world_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=8000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23, 24, 25])
    parser.add_argument("--story", default=None, help="a preset for every world (default: drawn from each seed)")
    parser.add_argument("--first-day", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--select", action="store_true", help="run the health model's selection (slower)")
    parser.add_argument("--out", default="bench/results/assignment.md")
    parser.add_argument("--data", default="bench/.data/stories")
    args = parser.parse_args()
    rows = {}
    started = time.perf_counter()
    for seed in args.seeds:
        world_dir = world(args.data, args.story, seed, args.leads)
        rows[f"seed {seed}"] = evaluate_world(world_dir, args.first_day, args.days, select=args.select)
        print(seed, rows[f"seed {seed}"], flush=True)
    table = pd.DataFrame(rows)
    command = f"python -m bench.assignment --leads {args.leads} --seeds {' '.join(map(str, args.seeds))}"
    command += (" --story " + args.story if args.story else "") + (" --select" if args.select else "")
    lines = [
        f"# True 90-day win rate by routing policy ({args.leads:,}-lead worlds, {args.days} days of new leads from day "
        f"{args.first_day})",
        "",
        f"`{command}`: {time.perf_counter() - started:.0f} s in all. True P(won within 90 days of creation) from "
        "`true_win_probability`, 200 roll-outs per lead, mean over the routed leads; leadscore trained on the export "
        f"as of day {args.first_day}{' with model selection' if args.select else ' (health model: default LightGBM, no selection)'}.",
        "",
        *table_lines(table),
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
