"""Design check for leadscore's router on *tuning* worlds (never the reported ones, seeds 21-25): which way of
combining the health model with the rep segment model routes better, judged by the simulator's truth.

    python -m bench.experiments.routing_variants [--seeds 31 32]

Variants share one trained router and one prepared set of leads per world (leadscore/tools/routing.py):
- "interactions": expected = health(rep as owner) + the rep's industry, region and channel lifts (shipped before);
- "main + interactions": the same plus the rep's overall lift from the segment model (its target is the win
  within 90 days of creation, the routing target; the health model's owner effect is learned on later snapshots,
  where the follow-up features already carry much of a rep's effect);
- each with the declared cap at 1.0x and 1.25x the team's mean load.
"""

from __future__ import annotations

import argparse
import copy
import math

import pandas as pd

from bench.assignment import world
from features.contract import load_export
from leadscore.tools import routing
from leadscore.tools.simulator.assignment import load_world, true_win_probability
from leadscore.tools.simulator.simulate import DAY, EXPORT_TIME
from models.assignment import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[31, 32])
    parser.add_argument("--leads", type=int, default=8000)
    args = parser.parse_args()
    rows = {}
    for seed in args.seeds:
        world_dir = world("bench/.data/stories", None, seed, args.leads)
        w = load_world(world_dir)
        day = (w.leads["created_t"] // DAY).astype(int)
        lead_ids = w.leads[(day >= 200) & (day < 230)].sort_values("created_t").index.to_numpy()
        start = EXPORT_TIME - pd.Timedelta(days=165)
        rep_ids = list(w.reps.index)
        tables = load_export(world_dir).tables
        artifact = routing.train_router(tables, start, select=False)
        past = routing.export_as_of(tables, start)
        requests = routing._lead_requests(tables, lead_ids)
        recent = past["leads"][past["leads"]["created_at"] >= start - pd.Timedelta(days=30)]
        prepared = prepare(artifact, [requests[i] for i in lead_ids], rep_ids,
                           as_of=[requests[i]["created_at"] for i in lead_ids], earlier=recent)  # fmt: skip
        with_main = copy.deepcopy(prepared)
        for p in with_main:
            p.figures["lift"] = p.figures["lift"] + p.figures["main_lift"]
        owners = recent.dropna(subset=["owner_id"]).set_index("lead_id")["owner_id"].to_dict()
        team = routing.Team.from_history(past, rep_ids, start)
        caps = (team.capacity, float(math.ceil(team.capacity / routing.CAP_OVER_MEAN)))
        out = {}
        for name, variant in (("interactions", prepared), ("main + interactions", with_main)):
            for cap in caps:
                team.capacity = cap
                policy = routing.leadscore_policy(artifact, team, dict(zip(lead_ids, variant, strict=True)),
                                                  dict(owners), declared=False, timings=[])  # fmt: skip
                reps, loads = routing.route(world_dir, lead_ids, start, policy)
                value = true_win_probability(world_dir, lead_ids, reps, loads, replicates=200, seed=2).mean()
                out[f"{name}, cap {'1.25' if cap == caps[0] else '1.0'}x mean"] = float(value)
        rows[f"seed {seed}"] = out
        print(seed, out, flush=True)
    table = pd.DataFrame(rows)
    table["mean"] = table.mean(axis=1)
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
