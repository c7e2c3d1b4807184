"""The true deal process: one vectorised daily step shared by the simulation and the oracle.

A chain is one lead's hidden state. The export simulation steps every lead once; the oracle steps
many copies of a snapshot's state forward (Monte Carlo) with the same `step`, so the oracle's
probabilities are exactly those of the process that generated the data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from tqdm.auto import tqdm

from features.contract import STAGE_LADDER

STAGES = list(STAGE_LADDER)  # the contract's ladder; the process indexes stages by their rank
WON, LOST = STAGES.index("赢单"), STAGES.index("丢单")
SAMPLE_STAGE, TENDER_STAGE, PROPOSAL_STAGE = 4, 6, 3
# Chance that a contact day moves the deal on, per stage, before the lead's own effects.
BASE_ADVANCE = np.array([0.9, 0.09, 0.08, 0.065, 0.055, 0.07, 0.055, 0.075])
# Daily hazard that the customer walks away, per stage.
BASE_LOSS = np.array([0.016, 0.013, 0.011, 0.01, 0.009, 0.01, 0.011, 0.008])
# Causal effects of actions on the deal's log-odds (what the counterfactual queries measure).
EFFECTS = {
    "fast_first_touch": 0.35,  # first touch within 2 hours of creation
    "wechat": 0.15,
    "demo": 0.45,  # at 需求确认 .. 样品验证
    "finance": 0.6,  # from 报价 on
    "decision_maker": 0.4,  # from 样品验证 on
}
ACTIONS = ["wechat", "demo", "sample", "finance", "decision_maker"]


@dataclass
class Chains:
    """Hidden state of a set of deals; static fields first, then what the process changes."""

    eta: np.ndarray  # fit, hidden fit, urgency, disposition, rep skill and load in one log-odds term
    urgency: np.ndarray
    inbound_rate: np.ndarray  # daily chance of an inbound contact (before stage and stall); urgency raises it
    touch_factor: np.ndarray  # the owner's touch rhythm under load (1 below capacity)
    invalid: np.ndarray
    duplicate: np.ndarray
    requires_sample: np.ndarray
    requires_tender: np.ndarray
    diligence: np.ndarray
    has_owner: np.ndarray
    created_day: np.ndarray
    first_touch_day: np.ndarray
    fast_first_touch: np.ndarray
    stage: np.ndarray
    stalled: np.ndarray
    touched: np.ndarray
    days_since_touch: np.ndarray
    wechat: np.ndarray
    demo: np.ndarray
    sample: np.ndarray
    finance: np.ndarray
    decision_maker: np.ndarray

    @classmethod
    def starting(cls, **static: np.ndarray) -> Chains:
        """New deals: the static fields given, the process's state at its start (stage 0, nothing done yet)."""
        n = len(static["eta"])
        flags = ("stalled", "touched", "wechat", "demo", "sample", "finance", "decision_maker")
        state = {"stage": np.zeros(n, dtype=np.int8), "days_since_touch": np.zeros(n, dtype=np.int32)}
        return cls(**static, **state, **{name: np.zeros(n, dtype=bool) for name in flags})

    def take(self, index: np.ndarray) -> Chains:
        return Chains(**{f.name: getattr(self, f.name)[index].copy() for f in fields(self)})

    def __len__(self) -> int:
        return len(self.stage)


@dataclass
class DayEvents:
    """What happened to each chain on one day (masks over chains)."""

    active: np.ndarray
    rep_touch: np.ndarray
    first_touch: np.ndarray
    inbound: np.ndarray
    actions: dict[str, np.ndarray]
    advanced: np.ndarray
    previous_stage: np.ndarray
    stepped_back: np.ndarray
    stalled_now: np.ndarray


def next_stage(stage: np.ndarray, requires_sample: np.ndarray, requires_tender: np.ndarray) -> np.ndarray:
    """Stage after an advance: 样品验证 and 招标比价 only where the deal needs them."""
    nxt = stage + 1
    nxt = np.where((nxt == SAMPLE_STAGE) & ~requires_sample, nxt + 1, nxt)
    nxt = np.where((nxt == TENDER_STAGE) & ~requires_tender, nxt + 1, nxt)
    return nxt


def log_odds(c: Chains) -> np.ndarray:
    """The deal's current log-odds of progressing: static fit plus the effects of actions taken."""
    s = c.stage
    return (
        c.eta
        + EFFECTS["fast_first_touch"] * (c.fast_first_touch & c.touched)
        + EFFECTS["wechat"] * c.wechat
        + EFFECTS["demo"] * (c.demo & (s >= 2) & (s <= 4))
        + EFFECTS["finance"] * (c.finance & (s >= 5))
        + EFFECTS["decision_maker"] * (c.decision_maker & (s >= 4))
    )


def step(c: Chains, day: int, rng: np.random.Generator) -> DayEvents:
    """Advance every chain by one day, in place. Draws the same number of randoms whatever the state,
    so two runs with the same seed share their random numbers (common random numbers)."""
    n = len(c)
    u = rng.random((12, n))
    hot = c.urgency > 0  # reps push harder on deals that feel hot: actions are confounded
    active = (c.created_day <= day) & (c.stage < WON)
    open_stage = np.minimum(c.stage, 7)

    first_touch = active & ~c.touched & c.has_owner & (c.first_touch_day == day)
    p_touch = (0.04 + 0.3 * c.diligence) * np.where(c.stage >= 4, 1.3, 1.0) * np.where(c.stalled, 0.6, 1.0)
    rep_touch = first_touch | (active & c.touched & (u[0] < p_touch * c.touch_factor))
    p_inbound = np.where(c.invalid, 0.005, c.inbound_rate) * np.where(c.stage >= 3, 1.5, 1.0)
    inbound = active & c.touched & ~rep_touch & (u[1] < p_inbound * np.where(c.stalled, 0.3, 1.0))
    c.touched |= first_touch
    contact = rep_touch | inbound

    s = c.stage
    actions = {
        "wechat": rep_touch & ~c.wechat & (u[2] < 0.3 + 0.3 * c.diligence),
        "demo": rep_touch & ~c.demo & (s >= 2) & (s <= 3) & (u[3] < 0.2 * np.where(hot, 1.5, 1.0)),
        "sample": rep_touch & ~c.sample & (s == SAMPLE_STAGE) & (u[4] < 0.5),
        "finance": rep_touch & ~c.finance & (s >= 3) & (u[5] < np.where(s >= 5, 0.15, 0.04) * np.where(hot, 1.5, 1.0)),
        "decision_maker": rep_touch & ~c.decision_maker & (s >= 3) & (u[6] < 0.12),
    }
    for name, mask in actions.items():
        getattr(c, name)[mask] = True

    eta = log_odds(c)
    p_advance = 1.0 / (1.0 + np.exp(-(np.log(BASE_ADVANCE[open_stage] / (1 - BASE_ADVANCE[open_stage])) + eta)))
    p_advance = p_advance * np.where(c.stalled, 0.25, 1.0) * np.where((s == SAMPLE_STAGE) & ~c.sample, 0.1, 1.0)
    advanced = contact & (u[7] < p_advance)

    neglect = 1.0 + 0.1 * np.maximum(c.days_since_touch - 7, 0)
    p_loss = np.minimum(BASE_LOSS[open_stage] * np.exp(-0.6 * eta) * neglect, 0.5)
    # Invalid and duplicate leads are usually closed by the rep at the first touch.
    p_loss = np.where(first_touch & c.invalid, 0.6, p_loss)
    p_loss = np.where(first_touch & c.duplicate, 0.7, p_loss)
    lost = active & ~advanced & (u[8] < p_loss)

    stepped_back = active & ~advanced & ~lost & (s >= 5) & (u[9] < 0.004)
    previous = s.copy()
    c.stage = np.where(advanced, np.where(s == 7, WON, next_stage(s, c.requires_sample, c.requires_tender)), s)
    c.stage = np.where(lost, LOST, c.stage)
    c.stage = np.where(stepped_back, PROPOSAL_STAGE, c.stage)

    stalled_now = active & ~c.stalled & (c.stage >= 1) & (c.stage < WON) & (u[10] < 0.01)
    recover = c.stalled & (u[11] < np.where(contact, 0.15, 0.05))
    c.stalled = (c.stalled | stalled_now) & ~recover & ~advanced
    c.days_since_touch = np.where(contact, 0, c.days_since_touch + active)
    return DayEvents(active, rep_touch, first_touch, inbound, actions, advanced, previous, stepped_back, stalled_now)


def rollout_won_day(
    c: Chains, start_day: int, horizon: int, seed: int, *, progress: bool = False, desc: str = "rollouts"
) -> np.ndarray:
    """Day offset (1..horizon) at which each chain is won, or 0 if it is not won within the horizon."""
    c = c.take(np.arange(len(c)))
    rng = np.random.default_rng(seed)
    won_at = np.zeros(len(c), dtype=np.int16)
    for offset in tqdm(range(1, horizon + 1), desc=desc, disable=not progress, unit="day"):
        step(c, start_day + offset, rng)
        won_at[(c.stage == WON) & (won_at == 0)] = offset
    return won_at
