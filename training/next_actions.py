"""How good are the next actions? Judged against the simulator's true counterfactual effects.

`truth/counterfactuals.parquet` holds, for up to 500 snapshots, each simulator action's true P(won within
90 days) with and without taking it at as_of. A policy takes one action per snapshot; its true win rate is
the mean of the chosen actions' P(won | action). Compared:
- leadscore: the top-ranked of the actions the service recommends that the simulator can play out;
- rules only: the same candidates in the playbook's own order (what a rep with the playbook would do);
- oracle: the action with the best true effect, knowing the hidden state;
- no action, a random choice among the candidates, and the best fixed order in hindsight (the actions
  sorted by their mean true effect on these very snapshots: a reference no rule book could know).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import load_export
from models.actions import ACTIONS, PLAYBOOK
from models.artifact import LeadArtifact


def evaluate_next_actions(artifact: LeadArtifact, data_dir: str | Path, seed: int = 0) -> dict[str, float]:
    """True 90-day win rates of the policies above on the counterfactual snapshots of a simulated export."""
    data_dir = Path(data_dir)
    truth = pd.read_parquet(data_dir / "truth" / "counterfactuals.parquet")
    tables = load_export(data_dir).tables
    snapshots = truth[["lead_id", "as_of"]].drop_duplicates().reset_index(drop=True)
    answers = [answer.model_dump() for answer in artifact.score_tables(tables, snapshots)]
    p_with = truth.pivot_table(index=["lead_id", "as_of"], columns="action", values="p_won_90_with")
    p_without = truth.groupby(["lead_id", "as_of"])["p_won_90_without"].first()
    playbook_order = {a.key: k for k, a in enumerate(PLAYBOOK)}
    # A reference no rule book has: one fixed order, the actions sorted by their mean true effect here.
    mean_effect = truth.groupby("action")["effect"].mean()
    rng = np.random.default_rng(seed)
    rows = []
    for (lead_id, as_of), answer in zip(snapshots.itertuples(index=False), answers, strict=True):
        key = (lead_id, as_of)
        playable = [a for a in answer["next_actions"] if ACTIONS[a["action"]].simulator_action]
        true_with = p_with.loc[key]
        base = float(p_without.loc[key])

        def outcome(chosen: dict | None, true_with=true_with, base=base) -> float:
            return base if chosen is None else float(true_with[ACTIONS[chosen["action"]].simulator_action])

        def first(order, playable=playable) -> dict | None:
            return min(playable, key=order) if playable else None

        rows.append(
            {
                "leadscore": outcome(playable[0] if playable else None),
                "rules_only": outcome(first(lambda a: playbook_order[a["action"]])),
                "best_fixed_order": outcome(first(lambda a: -mean_effect[ACTIONS[a["action"]].simulator_action])),
                "random": outcome(playable[rng.integers(len(playable))] if playable else None),
                "oracle": max(base, float(true_with.max())),
                "no_action": base,
                "has_candidate": bool(playable),
                "predicted_gain": playable[0]["expected_gain"] if playable else np.nan,
                "true_gain_points": 100 * (outcome(playable[0]) - base) if playable else np.nan,
            }
        )
    frame = pd.DataFrame(rows)
    figures = {f"win_rate_{name}": float(frame[name].mean()) for name in ("leadscore", "rules_only", "best_fixed_order", "random", "oracle", "no_action")}  # fmt: skip
    chosen = frame[frame["has_candidate"]]
    figures |= {
        "snapshots": float(len(frame)),
        "share_with_a_playable_action": float(frame["has_candidate"].mean()),
        "gap_to_oracle": figures["win_rate_oracle"] - figures["win_rate_leadscore"],
        "gain_over_rules": figures["win_rate_leadscore"] - figures["win_rate_rules_only"],
        "mean_predicted_gain_points": float(chosen["predicted_gain"].mean()),
        "mean_true_gain_points": float(chosen["true_gain_points"].mean()),
    }
    return figures
