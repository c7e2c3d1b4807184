"""Health-score tiers and the calibration measure."""

from __future__ import annotations

import numpy as np
import pytest

from models.tiers import TIERS, TierThresholds
from training.metrics import expected_calibration_error


def test_default_tiers_follow_the_thresholds() -> None:
    tiers = TierThresholds().tier([95, 60, 59.9, 35, 20, 15, 14.9, 0])
    assert list(tiers) == ["战略级", "战略级", "重点跟进", "重点跟进", "培育中", "培育中", "暂缓", "暂缓"]


def test_tiers_come_from_the_environment_and_bad_ones_are_clear_errors(monkeypatch) -> None:
    monkeypatch.setenv("LEADSCORE_TIERS", '{"战略级": 80, "重点跟进": 50, "培育中": 20}')
    assert list(TierThresholds.from_env().tier([79, 81, 10])) == ["重点跟进", "战略级", "暂缓"]
    monkeypatch.setenv("LEADSCORE_TIERS", '{"战略级": 30, "重点跟进": 50, "培育中": 20}')
    with pytest.raises(ValueError, match="100 >= 战略级 > 重点跟进 > 培育中 >= 0"):
        TierThresholds.from_env()
    monkeypatch.setenv("LEADSCORE_TIERS", "strategic=60")
    with pytest.raises(ValueError, match="LEADSCORE_TIERS must be JSON"):
        TierThresholds.from_env()
    assert set(TIERS) == {"战略级", "重点跟进", "培育中", "暂缓"}


def test_expected_calibration_error() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200_000)
    assert expected_calibration_error(p, rng.uniform(size=p.size) < p) < 0.01  # calibrated by construction
    assert expected_calibration_error(np.full(1000, 0.9), np.zeros(1000)) == pytest.approx(0.9)
