"""Early warnings: working days on the Chinese calendar, stall rules and escalation, the 7-day threshold and
the loss horizons' calibration (on synthetic numbers: the trained model's figures are in bench/warnings.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from models.warnings import LOSS_DAYS, RiskModel, choose_threshold, loss_labels
from models.workdays import coverage_note, is_workday, working_days_between


def at(text: str) -> pd.Series:
    return pd.Series([pd.Timestamp(text, tz="Asia/Shanghai")])


def test_working_days_follow_the_statutory_holidays_and_adjusted_days() -> None:
    assert not is_workday(dt.date(2025, 10, 1)) and not is_workday(dt.date(2025, 10, 8))  # 国庆 + 中秋
    assert is_workday(dt.date(2025, 9, 28)) and is_workday(dt.date(2025, 10, 11))  # 调休 Sunday / Saturday
    assert working_days_between(at("2025-09-30 18:00"), at("2025-10-09 09:00"))[0] == 1
    assert working_days_between(at("2026-01-30"), at("2026-02-02"))[0] == 1  # Friday -> Monday
    assert working_days_between(at("2026-02-02"), at("2026-02-02 23:00"))[0] == 0
    # past the calendar's years: Monday to Friday, and the answer says so
    assert working_days_between(at("2027-01-01"), at("2027-01-08"))[0] == 5
    assert coverage_note(dt.date(2027, 3, 1)).startswith("2027年的法定节假日安排未收录")
    assert coverage_note(dt.date(2026, 3, 1)) is None
    assert np.isnan(working_days_between(pd.Series([pd.NaT]), at("2026-01-01"))[0])


def risk() -> RiskModel:
    model = RiskModel(untouched_after=5, overdue_after=1, stage_held_after=10, escalate_after=3)
    model.calibration_ = {d: (1.0, 0.0) for d in LOSS_DAYS}
    model.threshold_7d_ = 0.6
    return model


def one(model, p=(0.1, 0.15, 0.2), untouched=None, overdue=None, stage_held=None, closed=False, day="2026-03-02"):
    work = {"untouched": untouched, "overdue": overdue, "stage_held": stage_held}
    return model._one(np.array(p), work, closed, pd.Timestamp(day, tz="Asia/Shanghai"))


def test_levels_reasons_and_escalation() -> None:
    m = risk()
    calm = one(m, untouched=2)
    assert calm.level == "正常" and calm.escalate_to is None and calm.reasons == []
    stalled = one(m, untouched=6)
    assert stalled.level == "关注" and stalled.escalate_to == "rep"
    assert stalled.stalls[0].reason == "已6个工作日未跟进（阈值5个工作日）"
    ignored = one(m, untouched=8)  # 3 working days past the threshold with nobody following up
    assert ignored.level == "预警" and ignored.escalate_to == "manager" and "升级给主管" in ignored.reasons[0]
    # a stage held long while the rep still follows the lead up is a stall, not an ignored one
    busy = one(m, untouched=1, stage_held=30)
    assert busy.stalls[0].kind == "stage_held" and busy.escalate_to == "rep"
    high = one(m, p=(0.7, 0.8, 0.9), untouched=1)
    assert high.level == "高危" and high.reasons[0] == "7天内丢单概率70%，超过警戒线60%" and high.escalate_to == "rep"
    assert one(m, p=(0.7, 0.8, 0.9), untouched=3).escalate_to == "manager"
    assert one(m, p=(0.2, 0.4, 0.55)).level == "预警"
    done = one(m, p=(0.9, 0.9, 0.9), untouched=20, closed=True)
    assert done.level == "正常" and done.stalls == [] and done.escalate_to is None
    late = one(m, untouched=6, day="2027-03-01")
    assert late.calendar_note and late.reasons[-1] == late.calendar_note


def test_the_threshold_is_the_lowest_reaching_the_precision_target() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 5000)
    y = rng.uniform(0, 1, 5000) < p  # calibrated: precision above t is about (1 + t) / 2
    t, stats = choose_threshold(p, y, target=0.75, min_flagged=30)
    assert stats["target_met"] and stats["precision_lower_bound"] >= 0.75 and stats["precision"] > 0.75
    assert 0.5 < t < 0.65, t  # (1 + t) / 2 = 0.75 at t = 0.5; the bound asks a little more
    looser, _ = choose_threshold(p, y, target=0.75, min_flagged=30, z=0.0)  # z = 0: the precision itself
    assert 0.4 < looser < t
    flagged = p >= t
    assert stats["flagged"] == flagged.sum() and stats["recall"] == pytest.approx(y[flagged].sum() / y.sum())
    # a target nothing reaches: the highest precision instead, and it says so
    t2, stats2 = choose_threshold(p, y & (rng.uniform(0, 1, 5000) < 0.3), target=0.75, min_flagged=30)
    assert not stats2["target_met"] and stats2["precision"] < 0.75


def test_calibration_fits_each_horizon_and_keeps_them_ordered() -> None:
    rng = np.random.default_rng(1)
    true = rng.beta(1, 6, (4000, 1)) * np.array([[1.0, 1.6, 2.5]])
    lost = rng.uniform(0, 1, true.shape) < np.clip(true, 0, 1)
    raw = np.clip(true * 1.8, 1e-4, 0.999)  # over-confident, as the raw incidence is on the worlds
    m = RiskModel()
    m.calibration_ = {d: (1.0, 0.0) for d in LOSS_DAYS}
    m.calibrate(raw, lost, np.ones_like(lost, dtype=bool))
    p = m._calibrated(raw)
    for j in range(3):
        assert abs(p[:, j].mean() - lost[:, j].mean()) < 0.01
    assert (np.diff(p, axis=1) >= 0).all()


def test_loss_labels_count_only_matured_horizons() -> None:
    durations = np.array([3.0, 10.0, 20.0, 40.0, 5.0])
    events = np.array([2, 2, 1, 0, 0])
    followup = np.array([100.0, 100.0, 100.0, 40.0, 5.0])
    lost, matured = loss_labels(durations, events, followup)
    assert lost.tolist() == [[True, True, True], [False, True, True], [False] * 3, [False] * 3, [False] * 3]
    assert matured[:, 0].tolist() == [True, True, True, True, False]
