"""Realism figures of a simulated export, checked against documented ranges (docs/simulator.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features import labels

# Documented ranges: a simulated world outside them is not the world the docs describe.
REALISM_RANGES = {
    "win_rate": (0.08, 0.25),
    "open_share": (0.10, 0.35),
    "spam_share": (0.12, 0.30),
    "stage_mismatch_share": (0.15, 0.60),
    "form_text_median_chars": (8, 40),
    "form_text_empty_share": (0.05, 0.25),
    "oracle_auc_90d": (0.75, 0.95),
}


def _read(path: Path, name: str) -> pd.DataFrame:
    parquet, csv = path / f"{name}.parquet", path / f"{name}.csv"
    return pd.read_parquet(parquet) if parquet.exists() else pd.read_csv(csv)


def won_within(outcomes: pd.DataFrame, lead_id: pd.Series, as_of: pd.Series, days: int) -> np.ndarray:
    """True label: the lead was won in (as_of, as_of + days], by features.labels' definition, read from the
    raw outcomes file (nothing is censored before the last outcome)."""
    outcomes = outcomes.assign(closed_at=pd.to_datetime(outcomes["closed_at"], utc=True))
    snaps = pd.DataFrame({"lead_id": lead_id.to_numpy(), "as_of": pd.to_datetime(as_of, utc=True).to_numpy()})
    until = max(outcomes["closed_at"].max(), snaps["as_of"].max())
    durations, events = labels.snapshot_outcomes({"outcomes": outcomes}, snaps, until=until)
    return labels.won_within(durations, events, days)


def realism_figures(data_dir: str | Path) -> dict[str, float]:
    """The realism figures of one simulated export, read from its tables and truth/."""
    path = Path(data_dir)
    leads, outcomes = _read(path, "leads"), _read(path, "outcomes")
    stages = _read(path, "stage_changes")
    truth = pd.read_parquet(path / "truth" / "leads.parquet")
    snaps = pd.read_parquet(path / "truth" / "snapshots.parquet")

    text = leads["form_text"].fillna("")
    matured = snaps[snaps["matured"]]
    label = won_within(outcomes, matured["lead_id"], matured["as_of"], 90)

    recorded = pd.merge_asof(
        snaps.sort_values("as_of").assign(as_of=lambda d: pd.to_datetime(d["as_of"], utc=True)),
        stages.assign(ts=pd.to_datetime(stages["ts"], utc=True)).sort_values("ts"),
        left_on="as_of",
        right_on="ts",
        by="lead_id",
    )
    return {
        "win_rate": float((outcomes["status"] == "won").mean()),
        "open_share": float((outcomes["status"] == "open").mean()),
        "spam_share": float(truth["is_spam"].mean()),
        "stage_mismatch_share": float((recorded["stage"] != recorded["true_stage"]).mean()),
        "form_text_median_chars": float(text[text != ""].str.len().median()),
        "form_text_empty_share": float((text == "").mean()),
        "oracle_auc_90d": float(roc_auc_score(label, matured["p_won_90"]))
        if 0 < label.sum() < len(label)
        else float("nan"),
        "matured_snapshots": float(len(matured)),
        "matured_win_rate_90d": float(label.mean()),
    }


def out_of_range(figures: dict[str, float]) -> dict[str, tuple[float, tuple[float, float]]]:
    """The figures that fall outside their documented range."""
    return {
        name: (figures[name], bounds)
        for name, bounds in REALISM_RANGES.items()
        if not (bounds[0] <= figures[name] <= bounds[1])
    }
