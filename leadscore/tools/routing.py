"""Routing evaluation in the simulator (issue 18): the true 90-day win rate of a period's new leads routed by
leadscore's POST /assign logic, by simple policies and by the oracle.

For one world: the export as it stood when the routed period starts (`export_as_of`: leads created before,
events before, outcomes closed before, the rest open) is all leadscore knows. It is trained on that (the
artifact's feature pipeline and models, `fit_all` as `leadscore train` fits them) and routes each new lead of the
period in time order through `models.assignment.rank`, the function POST /assign runs, with the team described
as a CRM would:
- every rep available; `open_leads` = the rep's new leads in the last 30 days (the simulator's load, kept by
  `LoadTracker` from the policy's own choices);
- `capacity` = a manager's cap: 1.25 x the team's mean new leads per rep in the 30 days before the period;
- declared industries (for the rule pool): each rep's two industries with the most wins in the history.
Nothing is read from truth/ to route; the truth only judges: `true_win_probability` of the (lead, rep, load)
triples a policy produced. The oracle (true skills and load) and the simple policies come from
bench/experiments/routing_truth.py's definitions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import EVENT_TABLES, load_export
from features.snapshots import make_snapshots
from leadscore.tools.simulator.assignment import (
    LoadTracker,
    created_seconds,
    load_world,
    true_win_probability,
    win_probability_table,
)
from leadscore.tools.simulator.simulate import DAY, EXPORT_TIME
from models.artifact import LeadArtifact
from models.assignment import Prepared, RoutingRules, decide, parse_candidates, prepare
from training.train import fit_all

Policy = Callable[[str, float, np.ndarray], str]  # (lead_id, created seconds, current loads) -> rep_id
LEAD_FIELDS = ["lead_id", "created_at", "channel", "campaign", "province", "city", "industry", "customer_type",
               "company_name", "company_size", "budget_cny", "form_text", "phone", "email"]  # fmt: skip
CAP_OVER_MEAN = 1.25
FIGURES = ["leads routed", "reps", "declared capacity", "true capacity", "training s", "prepare s", "decide p50 ms"]


def export_as_of(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The export as it stood at `cutoff`: leads created before it with their events before it; an outcome
    closed after it is still open."""
    leads = tables["leads"][tables["leads"]["created_at"] < cutoff].reset_index(drop=True)
    out = {"leads": leads}
    for name in EVENT_TABLES:
        table = tables[name]
        out[name] = table[(table["ts"] < cutoff) & table["lead_id"].isin(leads["lead_id"])].reset_index(drop=True)
    outcomes = tables["outcomes"][tables["outcomes"]["lead_id"].isin(leads["lead_id"])].copy()
    later = ~(outcomes["closed_at"] < cutoff)
    outcomes.loc[later, "status"] = "open"
    outcomes.loc[later, ["closed_at", "amount_cny"]] = None
    out["outcomes"] = outcomes.reset_index(drop=True)
    return out


def train_router(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, select: bool = True) -> LeadArtifact:
    """leadscore's models trained on what was known at `cutoff` (one pass on all of it, as the served pass)."""
    past = export_as_of(tables, cutoff)
    snapshots = make_snapshots(past, until=cutoff)
    params = None if select else {"health": {}}
    return fit_all(past, snapshots, cutoff, None, progress=False, params=params).artifact


@dataclass
class Team:
    """The reps as the CRM describes them to /assign (nothing from truth/)."""

    rep_ids: list[str]
    capacity: float
    industries: dict[str, tuple[str, ...]]

    @classmethod
    def from_history(cls, past: dict[str, pd.DataFrame], rep_ids: list[str], cutoff: pd.Timestamp) -> Team:
        leads = past["leads"]
        recent = leads[leads["created_at"] >= cutoff - pd.Timedelta(days=30)]
        capacity = math.ceil(CAP_OVER_MEAN * len(recent[recent["owner_id"].notna()]) / len(rep_ids))
        won = past["outcomes"].loc[past["outcomes"]["status"] == "won", "lead_id"]
        mine = leads.assign(won=leads["lead_id"].isin(won))
        table = mine.groupby(["owner_id", "industry"])["won"].agg(["sum", "size"])
        industries = {}
        for rep in rep_ids:
            own = table.loc[rep].sort_values(["sum", "size"], ascending=False) if rep in table.index else None
            industries[rep] = tuple(own.index[:2]) if own is not None else ()
        return cls(rep_ids, float(capacity), industries)

    def reps(self, loads: np.ndarray, declared: bool) -> list[dict]:
        return [
            {"rep_id": r, "open_leads": float(load), "capacity": self.capacity,
             "industries": list(self.industries[r]) if declared else []}
            for r, load in zip(self.rep_ids, loads, strict=True)
        ]  # fmt: skip


def _lead_requests(tables, lead_ids: np.ndarray) -> dict[str, dict]:
    leads = tables["leads"].set_index("lead_id", drop=False).loc[lead_ids, LEAD_FIELDS]
    out = {}
    for row in leads.to_dict("records"):
        row = {k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else v) for k, v in row.items()}
        row["created_at"] = row["created_at"].isoformat()
        out[row["lead_id"]] = row
    return out


def leadscore_policy(artifact: LeadArtifact, team: Team, prepared: dict[str, Prepared], owners: dict[str, str],
                     *, declared: bool, timings: list[float]) -> Policy:  # fmt: skip
    """Route as POST /assign does (`models.assignment.decide` on the lead prepared in advance: its health and
    record per rep do not depend on the loads), with rules by declared industry if `declared`. Duplicates go to
    the owner of the earlier lead, which `owners` learns as leads are routed."""
    rules = RoutingRules()

    def route(lead: str, _t: float, loads: np.ndarray) -> str:
        started = time.perf_counter()
        candidates, _ = parse_candidates(team.reps(loads, declared))
        answer = decide(artifact, prepared[lead], candidates, rules, owners=owners)
        timings.append(time.perf_counter() - started)
        owners[lead] = answer.chosen_rep
        return answer.chosen_rep

    return route


def rule_pool_policy(team: Team, industry: dict[str, str]) -> Policy:
    """The rules without the model: the reps who declare the lead's industry, the least loaded with room."""

    def route(lead: str, _t: float, loads: np.ndarray) -> str:
        pool = [i for i, r in enumerate(team.rep_ids) if industry[lead] in team.industries[r]]
        pool = pool or list(range(len(team.rep_ids)))
        room = [i for i in pool if loads[i] < team.capacity] or pool
        return team.rep_ids[min(room, key=lambda i: (loads[i], i))]

    return route


def oracle_policy(world_dir: Path, lead_ids: np.ndarray, rep_ids: list[str]) -> Policy:
    """Best rep by true probability at its current load; ties (junk leads no rep can win) go to the least loaded.
    P depends on load only above capacity, so a table at 0 and capacity x 1, 1.5, 2, 3 is interpolated in the
    load (linearly extrapolated past 3x)."""
    capacity = load_world(world_dir).story.capacity
    levels = np.array([0.0, 1.0, 1.5, 2.0, 3.0]) * capacity
    table = win_probability_table(world_dir, lead_ids, levels, replicates=32, seed=1)
    grid = table.set_index(["lead_id", "rep_id", "load"])["p_won_90"].unstack("load")[levels]

    def route(lead: str, _t: float, loads: np.ndarray) -> str:
        rows = grid.loc[lead].loc[rep_ids].to_numpy()
        slope = (rows[:, 4] - rows[:, 3]) / capacity
        p = np.array([np.interp(load, levels[1:], row[1:]) for row, load in zip(rows, loads, strict=True)])
        p = np.where(loads <= capacity, rows[:, 0], p)
        p = np.where(loads > levels[-1], np.maximum(rows[:, 4] + slope * (loads - levels[-1]), 0.0), p)
        best = np.flatnonzero(p >= p.max() - 1e-12)
        return rep_ids[int(best[np.argmin(loads[best])])]

    return route


def route(world_dir: Path, lead_ids: np.ndarray, start: pd.Timestamp, policy: Policy) -> tuple[list, list]:
    """Route the leads in time order: (chosen reps, each rep's load when it took its lead)."""
    tracker = LoadTracker(world_dir, before=start)
    reps, loads = [], []
    for lead, t in zip(lead_ids, created_seconds(world_dir, lead_ids), strict=True):
        current = tracker.loads(t)
        rep = policy(lead, t, current)
        reps.append(rep)
        loads.append(current[tracker.rep_ids.index(rep)])
        tracker.assign(rep, t)
    return reps, loads


def evaluate_world(
    world_dir: str | Path, first_day: int = 200, days: int = 30, *, select: bool = True, oracle: bool = True
) -> dict[str, float]:
    """True mean P(won within 90 days) of the period's new leads per policy, and timings."""
    world_dir = Path(world_dir)
    w = load_world(world_dir)
    day = (w.leads["created_t"] // DAY).astype(int)
    period = w.leads[(day >= first_day) & (day < first_day + days)].sort_values("created_t")
    lead_ids = period.index.to_numpy()
    start = EXPORT_TIME - pd.Timedelta(days=365) + pd.Timedelta(days=first_day)
    rep_ids = list(w.reps.index)
    tables = load_export(world_dir).tables
    clock = time.perf_counter()
    artifact = train_router(tables, start, select=select)
    train_seconds = time.perf_counter() - clock
    past = export_as_of(tables, start)
    team = Team.from_history(past, rep_ids, start)
    requests = _lead_requests(tables, lead_ids)
    industry = {k: v["industry"] for k, v in requests.items()}
    recent = past["leads"][past["leads"]["created_at"] >= start - pd.Timedelta(days=30)]
    clock = time.perf_counter()
    prepared = dict(
        zip(lead_ids, prepare(artifact, [requests[i] for i in lead_ids], rep_ids,
                              as_of=[requests[i]["created_at"] for i in lead_ids], earlier=recent), strict=True)
    )  # fmt: skip
    prepare_seconds = time.perf_counter() - clock
    owners = recent.dropna(subset=["owner_id"]).set_index("lead_id")["owner_id"].to_dict()
    rng = np.random.default_rng(0)
    turn = iter(range(10**9))
    timings: list[float] = []
    policies: dict[str, Policy] = {
        "random": lambda lead, t, loads: rep_ids[rng.integers(len(rep_ids))],
        "round robin": lambda lead, t, loads: rep_ids[next(turn) % len(rep_ids)],
        "least loaded": lambda lead, t, loads: rep_ids[int(np.argmin(loads))],
        "rule pool alone (declared industries, least loaded with room)": rule_pool_policy(team, industry),
        "leadscore (rule pool + model)": leadscore_policy(
            artifact, team, prepared, dict(owners), declared=True, timings=timings
        ),
        "leadscore (model, every rep)": leadscore_policy(
            artifact, team, prepared, dict(owners), declared=False, timings=timings
        ),
    }
    if oracle:
        policies["oracle (true skills and load)"] = oracle_policy(world_dir, lead_ids, rep_ids)
    out = {}
    for name, policy in policies.items():
        reps, loads = route(world_dir, lead_ids, start, policy)
        out[name] = float(true_win_probability(world_dir, lead_ids, reps, loads, replicates=200, seed=2).mean())
    out["leads routed"] = float(len(lead_ids))
    out["reps"] = float(len(rep_ids))
    out["declared capacity"] = team.capacity
    out["true capacity"] = float(w.story.capacity)
    out["training s"] = train_seconds
    out["prepare s"] = prepare_seconds
    out["decide p50 ms"] = 1000 * float(np.median(timings)) if timings else float("nan")
    return out


def table_lines(table: pd.DataFrame) -> list[str]:
    """A markdown table: the policies' true win rates per world (columns), mean and worst, then the figures."""
    policies = [i for i in table.index if i not in FIGURES]
    lines = [
        "| policy | " + " | ".join(table.columns) + " | mean | worst |",
        "|---|" + "---|" * (len(table.columns) + 2),
    ]
    for name in policies:
        values = table.loc[name]
        lines.append(
            f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {values.mean():.4f} | {values.min():.4f} |"
        )
    for name in FIGURES:
        if name in table.index:
            lines.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in table.loc[name]) + " | | |")
    return lines
