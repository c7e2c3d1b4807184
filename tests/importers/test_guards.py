"""The leak guards on made-up lead tables: each rule finds its leak and leaves honest fields alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.tools.importers.guards import find_leaks


def _tables(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    status = rng.choice(["won", "lost", "open"], n, p=[0.3, 0.3, 0.4])
    created = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    closed = created + pd.to_timedelta(rng.integers(10, 60, n), unit="D")
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)], "created_at": [t.isoformat() for t in created],
                          "industry": rng.choice(["a", "b"], n), "phone": np.where(rng.random(n) < 0.7, "138", None)})  # fmt: skip
    outcomes = pd.DataFrame({"lead_id": leads["lead_id"], "status": status,
                             "closed_at": [c.isoformat() if s != "open" else None for c, s in zip(closed, status, strict=True)]})  # fmt: skip
    return leads, outcomes


def test_a_field_filled_only_for_won_leads_is_found() -> None:
    leads, outcomes = _tables()
    leads["contract_no"] = np.where(outcomes["status"] == "won", "HT-1", None)
    found = {f.field: f.reason for f in find_leaks(leads, outcomes)}
    assert "contract_no" in found and "only for won" in found["contract_no"]
    assert "industry" not in found and "phone" not in found


def test_a_field_filled_as_the_deal_goes_is_found() -> None:
    leads, outcomes = _tables()
    closed = outcomes["status"].isin(["won", "lost"]).to_numpy()
    leads["account"] = np.where(closed | (np.arange(len(leads)) % 4 == 0), "Acme", None)
    found = {f.field: f.reason for f in find_leaks(leads, outcomes)}
    assert "account" in found and "filled in as the deal progressed" in found["account"]


def test_a_time_stamped_after_the_close_is_found_and_one_before_is_not() -> None:
    leads, outcomes = _tables()
    closed_at = pd.to_datetime(outcomes["closed_at"], utc=True)
    created = pd.to_datetime(leads["created_at"], utc=True)
    # Filled for every lead (so it is about time, not about who has it): 2 days after the close, or after creation.
    leads["last_touch"] = [
        ((c if pd.notna(c) else t) + pd.Timedelta(days=2)).isoformat() for c, t in zip(closed_at, created, strict=True)
    ]
    leads["first_call"] = [(t + pd.Timedelta(hours=3)).isoformat() for t in created]
    found = {f.field: f.reason for f in find_leaks(leads, outcomes)}
    assert "stamped after the outcome" in found.get("last_touch", "")
    assert "first_call" not in found
