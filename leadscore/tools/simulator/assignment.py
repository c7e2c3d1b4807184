"""The true value of routing a lead: P(won within 90 days of creation) if rep r takes it at creation with load l.

A routing evaluation (issue 18) routes a world's new leads in time order with some policy, then asks the
simulator what each choice was truly worth. Reps differ in skill by industry and region (hidden, in
truth/reps.parquet) and lose log-odds and touch speed when overloaded (load = new leads they were given in the 30
days before; `LoadTracker` keeps it for a policy). `true_win_probability` rolls the lead forward from its
creation with the simulator's own `dynamics.step` and the lead's hidden state from truth/, so the figures are
exactly the simulator's up to Monte Carlo error. Every (lead, rep, load) triple shares the same random numbers
(common random numbers), so the difference between two reps for one lead is far more precise than either
probability alone. docs/simulator.md ("Routing") shows an evaluation.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.tools.simulator import world
from leadscore.tools.simulator.dynamics import WON, Chains, step
from leadscore.tools.simulator.simulate import DAY, EXPORT_TIME, HOUR, first_touch_hours, load_effects, static_eta
from leadscore.tools.simulator.story import Story

HORIZON_DAYS = 90
_CHAINS_PER_BATCH = 200_000  # bounds memory: ~20 arrays of this length per batch


@dataclass(frozen=True)
class World:
    """What a roll-out needs from a simulated export's truth/: the story, the reps and each lead's hidden state."""

    story: Story
    reps: pd.DataFrame  # indexed by rep_id
    leads: pd.DataFrame  # indexed by lead_id: hidden state and creation time (seconds into the simulated year)
    skill_industry: np.ndarray  # (reps, industries)
    skill_region: np.ndarray  # (reps, regions)


@cache
def _load_world(path: str) -> World:
    root = Path(path)
    for name in ("truth/story.json", "truth/leads.parquet", "truth/reps.parquet"):
        if not (root / name).exists():
            raise FileNotFoundError(f"{root / name} is missing: true_win_probability needs a simulated export's truth")
    story = Story.from_json(json.loads((root / "truth" / "story.json").read_text()))
    reps = pd.read_parquet(root / "truth" / "reps.parquet").set_index("rep_id")
    truth = pd.read_parquet(root / "truth" / "leads.parquet").set_index("lead_id")
    export = next((root / f"leads.{ext}" for ext in ("parquet", "csv") if (root / f"leads.{ext}").exists()), None)
    if export is None:
        raise FileNotFoundError(f"{root} has no leads.parquet or leads.csv")
    created = pd.read_parquet(export) if export.suffix == ".parquet" else pd.read_csv(export)
    created_at = pd.to_datetime(created.set_index("lead_id")["created_at"], utc=True)
    truth["created_t"] = (created_at - (EXPORT_TIME - pd.Timedelta(days=365))).dt.total_seconds()
    truth["_industry"] = truth["true_industry"].map({name: i for i, name in enumerate(world.INDUSTRIES)})
    truth["_region"] = truth["true_city"].map({r[1]: i for i, r in enumerate(world.REGIONS)})
    skill_industry = reps[[f"skill_industry:{name}" for name in world.INDUSTRIES]].to_numpy()
    skill_region = reps[[f"skill_region:{r[1]}" for r in world.REGIONS]].to_numpy()
    return World(story, reps, truth, skill_industry, skill_region)


def load_world(world_dir: str | Path) -> World:
    """A simulated export's truth, read once per process."""
    return _load_world(str(Path(world_dir).resolve()))


class _SharedRandoms:
    """Stands in for a Generator inside `dynamics.step`: every block of `replicates` chains gets the same numbers,
    so replicate j of every triple sees the same randomness whatever the batch holds."""

    def __init__(self, seed: int, replicates: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._replicates = replicates

    def normal(self, n_triples: int) -> np.ndarray:
        return np.tile(self._rng.normal(0.0, 1.0, self._replicates), n_triples)

    def random(self, shape: tuple[int, int]) -> np.ndarray:
        rows, n = shape
        return np.tile(self._rng.random((rows, self._replicates)), n // self._replicates)


def _check(w: World, lead_ids: np.ndarray, rep_ids: np.ndarray, loads: np.ndarray) -> None:
    if not (len(lead_ids) == len(rep_ids) == len(loads)):
        raise ValueError(f"lead_ids, rep_ids and loads differ in length: {len(lead_ids)}, {len(rep_ids)}, {len(loads)}")
    unknown = pd.Index(lead_ids).difference(w.leads.index)
    if len(unknown):
        raise ValueError(f"{len(unknown)} lead ids are not in this world's truth, e.g. {list(unknown[:3])}")
    unknown = pd.Index(rep_ids).difference(w.reps.index)
    if len(unknown):
        raise ValueError(f"{len(unknown)} rep ids are not in this world's truth, e.g. {list(unknown[:3])}")
    if not np.all(np.isfinite(loads)) or np.any(loads < 0):
        raise ValueError("loads must be finite and non-negative (new leads the rep was given in the last 30 days)")


def _chains_at_creation(w: World, lead_ids, rep_ids, loads, spread: np.ndarray, replicates: int) -> Chains:
    """Each triple's deal at its creation, `replicates` copies each (triple-major order)."""
    lead = w.leads.loc[lead_ids]
    rep = w.reps.index.get_indexer(rep_ids)
    story = w.story
    skill = w.skill_industry[rep, lead["_industry"].to_numpy()] + w.skill_region[rep, lead["_region"].to_numpy()]
    load_loss, delay_factor, touch_factor = load_effects(story, loads)
    urgency = lead["urgency"].to_numpy()
    eta = static_eta(
        story,
        lead["fit_observable"].to_numpy(),
        lead["hidden_fit"].to_numpy(),
        urgency,
        lead["disposition"].to_numpy(),
        skill,
        load_loss,
    )
    diligence = w.reps["diligence"].to_numpy()[rep]
    r = lambda values: np.repeat(np.asarray(values), replicates)  # noqa: E731
    delay = first_touch_hours(r(diligence), spread, r(delay_factor))
    time_of_day = r(lead["created_t"].to_numpy() % DAY)
    n = len(lead) * replicates
    return Chains.starting(
        eta=r(eta),
        urgency=r(urgency),
        inbound_rate=r(0.02 * np.exp(story.inbound_urgency * urgency)),
        touch_factor=r(touch_factor),
        invalid=r(lead["is_spam"].to_numpy(bool)),
        duplicate=r(lead["duplicate_of"].notna().to_numpy()),
        requires_sample=r(lead["requires_sample"].to_numpy(bool)),
        requires_tender=r(lead["requires_tender"].to_numpy(bool)),
        diligence=r(diligence),
        has_owner=np.ones(n, dtype=bool),
        created_day=np.zeros(n, dtype=np.int32),
        first_touch_day=((time_of_day + delay * HOUR) // DAY).astype(np.int32),
        fast_first_touch=delay <= 2.0,
    )


def true_win_probability(
    world_dir: str | Path,
    lead_ids,
    rep_ids,
    loads,
    *,
    replicates: int = 200,
    seed: int = 0,
    horizon_days: int = HORIZON_DAYS,
) -> np.ndarray:
    """True P(won within `horizon_days` of creation) of each lead if rep_ids[i] takes it at creation with load
    loads[i] (new leads that rep was given in the 30 days before). One probability per triple.

    The lead's own hidden state comes from truth/ (fit, noise, urgency, disposition, sample/tender needs); the
    rep's diligence and skills from truth/reps.parquet; the load's effect from the story. Days 0..horizon-1
    after the creation day are stepped (the creation day is day 0). Monte Carlo standard error <= 0.5 /
    sqrt(replicates) per triple; all triples share their random numbers."""
    w = load_world(world_dir)
    lead_ids, rep_ids = np.asarray(lead_ids, dtype=object), np.asarray(rep_ids, dtype=object)
    loads = np.asarray(loads, dtype=float)
    _check(w, lead_ids, rep_ids, loads)
    per_batch = max(1, _CHAINS_PER_BATCH // replicates)
    out = np.empty(len(lead_ids))
    for lo in range(0, len(lead_ids), per_batch):
        hi = min(lo + per_batch, len(lead_ids))
        rng = _SharedRandoms(seed, replicates)  # the same numbers for every batch: triples never depend on batching
        chains = _chains_at_creation(w, lead_ids[lo:hi], rep_ids[lo:hi], loads[lo:hi], rng.normal(hi - lo), replicates)
        for day in range(horizon_days):
            step(chains, day, rng)
        out[lo:hi] = (chains.stage == WON).reshape(hi - lo, replicates).mean(axis=1)
    return out


def win_probability_table(
    world_dir: str | Path, lead_ids, loads=(0.0,), *, replicates: int = 64, seed: int = 0
) -> pd.DataFrame:
    """True P(won within 90 days) of each lead with every rep at each load: columns lead_id, rep_id, load,
    p_won_90. What an oracle router picks from (the rep with the highest probability at its current load)."""
    w = load_world(world_dir)
    lead_ids = np.asarray(lead_ids, dtype=object)
    grid = pd.MultiIndex.from_product([lead_ids, w.reps.index, np.asarray(loads, dtype=float)]).to_frame(
        index=False, name=["lead_id", "rep_id", "load"]
    )
    grid["p_won_90"] = true_win_probability(
        world_dir, grid["lead_id"], grid["rep_id"], grid["load"], replicates=replicates, seed=seed
    )
    return grid


class LoadTracker:
    """Rep loads as the simulator defines them (new leads given in the 30 days before), for a policy that routes
    leads in time order: start from the world's own assignments before the routed period, then `assign`."""

    def __init__(self, world_dir: str | Path, before: pd.Timestamp) -> None:
        w = load_world(world_dir)
        self.rep_ids = list(w.reps.index)
        self._window = world.LOAD_WINDOW_DAYS * DAY
        self._given: dict[str, deque[float]] = {rep: deque() for rep in self.rep_ids}
        root = Path(world_dir)
        export = root / "leads.parquet"
        leads = pd.read_parquet(export) if export.exists() else pd.read_csv(root / "leads.csv")
        created = (pd.to_datetime(leads["created_at"], utc=True) - (EXPORT_TIME - pd.Timedelta(days=365))).dt
        t = created.total_seconds().to_numpy()
        cutoff = (pd.Timestamp(before) - (EXPORT_TIME - pd.Timedelta(days=365))).total_seconds()
        owner = leads["owner_id"].to_numpy()
        for i in np.argsort(t, kind="stable"):
            if t[i] < cutoff and isinstance(owner[i], str):
                self._given[owner[i]].append(t[i])

    def _trim(self, rep: str, t: float) -> deque[float]:
        given = self._given[rep]
        while given and given[0] <= t - self._window:
            given.popleft()
        return given

    def load(self, rep: str, t: float) -> int:
        """The rep's load for a lead created at t (seconds into the simulated year)."""
        return sum(1 for s in self._trim(rep, t) if s < t)

    def loads(self, t: float) -> np.ndarray:
        return np.array([self.load(rep, t) for rep in self.rep_ids])

    def assign(self, rep: str, t: float) -> None:
        self._given[rep].append(t)


def created_seconds(world_dir: str | Path, lead_ids) -> np.ndarray:
    """Creation times of leads in seconds into the simulated year (the clock LoadTracker uses)."""
    return load_world(world_dir).leads.loc[np.asarray(lead_ids, dtype=object), "created_t"].to_numpy()
