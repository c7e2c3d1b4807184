"""Early warnings: P(lost within 7 / 14 / 30 days), a warning level with its reasons in Chinese, stall alerts
in working days on the Chinese calendar, and escalation from the rep to the manager.

Loss probabilities come from the close-date model's competing risks (`CloseDateModel.loss_within`: censoring
handled there, open deals are never losses), recalibrated per horizon by a Platt step fitted on the
evaluation pass's later period (`calibrate`, called by training/train.py): the health anchor calibrates wins,
losses get their own. The served threshold of "will be lost within 7 days" is chosen there too, for the
precision the sales teams ask for (>= 75 %); docs/warnings.md reports how it does on worlds and data it never
saw.

Stalls are read from the lead's own features as of the snapshot (no state): untouched, a planned next step
overdue, a stage held too long, each in working days. A stall is *ignored* when its threshold passed
`escalate_after` working days ago and nobody has followed the lead up in that time: it is escalated to the
manager; so is a high loss risk with no follow-up for that long.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.linear_model import LogisticRegression

from features.contract import CLOSED_STAGE
from models.base import LeadModel, ScoringBatch, TrainingSet
from models.closedate import CloseDateModel
from models.workdays import coverage_note, working_days_between

LOSS_DAYS = (7, 14, 30)
LEVELS = ("正常", "关注", "预警", "高危")  # in rising order
CLOSED = set(CLOSED_STAGE.values())
DAY = pd.Timedelta(days=1)
_EPS = 1e-6


class Stall(BaseModel):
    kind: Literal["untouched", "overdue", "stage_held"] = Field(
        description="untouched: no follow-up; overdue: the planned next step is past due; stage_held: in one stage too long"
    )
    working_days: int = Field(ge=0, description="working days on the Chinese calendar")
    threshold: int = Field(description="working days after which it is a stall")
    reason: str = Field(description="in Chinese")
    escalate_to: Literal["rep", "manager"]


class RiskAnswer(BaseModel):
    """The lead's early warning."""

    lost_within_7d: float = Field(ge=0, le=1, description="calibrated P(lost within 7 days of as_of)")
    lost_within_14d: float = Field(ge=0, le=1)
    lost_within_30d: float = Field(ge=0, le=1)
    level: Literal[LEVELS] = Field(description="正常 / 关注 / 预警 / 高危")  # type: ignore[valid-type]
    reasons: list[str] = Field(description="why the level, in Chinese, most serious first")
    stalls: list[Stall]
    escalate_to: Literal["rep", "manager"] | None = Field(description="who is told; null at 正常")
    threshold_7d: float = Field(description="the served threshold of lost_within_7d for 高危")
    calendar_note: str | None = Field(None, description="set when the holiday calendar does not cover the date")


class RiskModel(LeadModel):
    """Warnings from the close-date model's loss incidence and the lead's follow-up features.

    Hyperparameters: stall thresholds and the escalation delay in working days, the precision target of the
    7-day threshold, the 30-day probability from which a lead is 预警."""

    name = "risk"
    Answer = RiskAnswer

    def __init__(
        self,
        untouched_after: int = 5,
        overdue_after: int = 1,
        stage_held_after: int = 10,
        escalate_after: int = 3,
        precision_target: float = 0.75,
        warn_30d: float = 0.5,
        min_flagged: int = 30,
    ) -> None:
        self.untouched_after = untouched_after
        self.overdue_after = overdue_after
        self.stage_held_after = stage_held_after
        self.escalate_after = escalate_after
        self.precision_target = precision_target
        self.warn_30d = warn_30d
        self.min_flagged = min_flagged

    @classmethod
    def from_training(cls, data: TrainingSet, fitted: dict[str, LeadModel]) -> RiskModel | None:
        if "close_date" not in fitted:
            return None
        return cls(**data.params.get(cls.name, {})).fit(fitted["close_date"])

    def fit(self, close_date: CloseDateModel) -> RiskModel:
        """Uncalibrated (identity) until `calibrate`; the 7-day threshold defaults to 0.5."""
        self.close_date_ = close_date
        self.calibration_: dict[int, tuple[float, float]] = {d: (1.0, 0.0) for d in LOSS_DAYS}
        self.threshold_7d_ = 0.5
        self.holdout_: dict[str, Any] = {}
        return self

    def warm_up(self) -> RiskModel:
        working_days_between(pd.Series([pd.Timestamp("2026-01-01", tz="UTC")]), pd.Series([pd.Timestamp.now("UTC")]))
        return self

    # ------------------------------------------------------------------ probabilities

    def raw_loss(self, features: pd.DataFrame, anchor_level: np.ndarray | None = None) -> np.ndarray:
        return self.close_date_.loss_within(features, LOSS_DAYS, anchor_level)

    def loss(self, features: pd.DataFrame, anchor_level: np.ndarray | None = None) -> np.ndarray:
        """Calibrated P(lost within 7 / 14 / 30 days), shape (snapshots, 3), non-decreasing along the horizons."""
        return self._calibrated(self.raw_loss(features, anchor_level))

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        out = np.empty_like(raw)
        for j, d in enumerate(LOSS_DAYS):
            a, b = self.calibration_[d]
            out[:, j] = 1.0 / (1.0 + np.exp(-(a * _logit(raw[:, j]) + b)))
        return np.maximum.accumulate(out, axis=1)  # a Platt step per horizon could cross by a hair

    def calibrate(self, raw: np.ndarray, lost: np.ndarray, matured: np.ndarray) -> RiskModel:
        """Fit the Platt step of each horizon on held-out snapshots (`raw` from `raw_loss`; `lost[:, j]` the
        loss within LOSS_DAYS[j], known where `matured[:, j]`), then choose the 7-day threshold
        (`choose_threshold`: precision at least `precision_target` with 90 % confidence) and record what it
        reached."""
        for j, d in enumerate(LOSS_DAYS):
            m = matured[:, j]
            y = lost[m, j].astype(int)
            if m.sum() < 50 or y.min() == y.max():
                continue
            fit = LogisticRegression(C=1e4).fit(_logit(raw[m, j])[:, None], y)
            self.calibration_[d] = (float(fit.coef_[0, 0]), float(fit.intercept_[0]))
        p = self._calibrated(raw)
        m = matured[:, 0]
        self.threshold_7d_, self.holdout_ = choose_threshold(
            p[m, 0], lost[m, 0].astype(bool), self.precision_target, self.min_flagged
        )
        return self

    # ------------------------------------------------------------------ answers

    def answer(self, batch: ScoringBatch) -> list[RiskAnswer]:
        p = self.loss(batch.features, batch.win_probability)
        f = batch.features.reset_index(drop=True)
        as_of = pd.to_datetime(batch.snapshots["as_of"]).reset_index(drop=True)
        since = {
            "untouched": np.where(
                f["days_since_last_activity"].isna(), f["days_since_created"], f["days_since_last_activity"]
            ),
            "overdue": np.where(f["next_action_overdue"].fillna(0) > 0, f["next_action_overdue_days"], np.nan),
            "stage_held": np.where(
                f["days_in_recorded_stage"].isna(), f["days_since_created"], f["days_in_recorded_stage"]
            ),
        }
        work = {
            kind: working_days_between(as_of - pd.to_timedelta(np.nan_to_num(days, nan=0.0), unit="D"), as_of)
            for kind, days in since.items()
        }
        answers = []
        for i in range(len(f)):
            stage = f["recorded_stage"].iat[i]
            closed = isinstance(stage, str) and stage in CLOSED
            values = {kind: None if np.isnan(since[kind][i]) else int(work[kind][i]) for kind in since}
            answers.append(self._one(p[i], values, closed, as_of.iat[i]))
        return answers

    def _one(self, p: np.ndarray, work: dict[str, int | None], closed: bool, as_of: pd.Timestamp) -> RiskAnswer:
        probabilities = {f"lost_within_{d}d": round(float(v), 4) for d, v in zip(LOSS_DAYS, p, strict=True)}
        note = coverage_note(as_of.date())
        common = {**probabilities, "threshold_7d": round(self.threshold_7d_, 4), "calendar_note": note}
        if closed:
            return RiskAnswer(**common, level="正常", reasons=["已结案，不再预警"], stalls=[], escalate_to=None)
        stalls = self._stalls(work)
        reasons, level = [], "正常"
        high = p[0] >= self.threshold_7d_
        untouched = work["untouched"] or 0
        escalate_high = high and untouched >= self.escalate_after
        if high:
            level = "高危"
            reasons.append(f"7天内丢单概率{p[0]:.0%}，超过警戒线{self.threshold_7d_:.0%}")
            if escalate_high and not any(s.kind == "untouched" for s in stalls):  # else that stall says it
                reasons.append(f"高危预警后已{untouched}个工作日无跟进，升级给主管")
        elif p[2] >= self.warn_30d:
            level = "预警"
            reasons.append(f"30天内丢单概率{p[2]:.0%}")
        for stall in stalls:
            reasons.append(stall.reason)
        if stalls and level == "正常":
            level = "关注"
        escalated = escalate_high or any(s.escalate_to == "manager" for s in stalls)
        if escalated and level in ("正常", "关注"):
            level = "预警"
        if note and stalls:
            reasons.append(note)
        escalate_to = None if level == "正常" else ("manager" if escalated else "rep")
        return RiskAnswer(**common, level=level, reasons=reasons, stalls=stalls, escalate_to=escalate_to)

    def _stalls(self, work: dict[str, int | None]) -> list[Stall]:
        rules = {
            "untouched": (self.untouched_after, "已{n}个工作日未跟进"),
            "overdue": (self.overdue_after, "计划的下一步已逾期{n}个工作日"),
            "stage_held": (self.stage_held_after, "在当前阶段已停留{n}个工作日"),
        }
        out = []
        for kind, (threshold, template) in rules.items():
            n = work[kind]
            if n is None or n < threshold:
                continue
            # Ignored: past its threshold by escalate_after working days with no follow-up in that time.
            late = n - threshold >= self.escalate_after and (work["untouched"] or 0) >= self.escalate_after
            reason = template.format(n=n) + f"（阈值{threshold}个工作日）"
            if late:
                reason += f"，超过{self.escalate_after}个工作日未处理，升级给主管"
            out.append(
                Stall(kind=kind, working_days=n, threshold=threshold, reason=reason,
                      escalate_to="manager" if late else "rep")
            )  # fmt: skip
        return out

    @staticmethod
    def flat(part: dict[str, Any]) -> dict[str, Any]:
        return {k: part[k] for k in ("lost_within_7d", "lost_within_14d", "lost_within_30d", "level")}


def choose_threshold(
    p: np.ndarray, y: np.ndarray, target: float, min_flagged: int, z: float = 1.2816
) -> tuple[float, dict[str, Any]]:
    """The lowest threshold t whose flagged set {p >= t} (at least min_flagged members) has a precision whose
    Wilson lower bound (z = 1.28: one-sided 90 %) reaches target; when none does, the t with the highest bound.
    A bound rather than the precision itself: a threshold set where the later period just reaches 75 % gave
    71 % on an unseen world (docs/warnings.md). Returns t and its precision, bound, recall and count on (p, y)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order].astype(float)
    hits = np.cumsum(ys)
    flagged = np.arange(1, len(ps) + 1)
    last_of_tie = np.r_[ps[1:] != ps[:-1], True]  # a threshold flags every tied probability at once
    precision = hits / flagged
    centre = precision + z * z / (2 * flagged)
    spread = z * np.sqrt(precision * (1 - precision) / flagged + z * z / (4 * flagged**2))
    bound = (centre - spread) / (1 + z * z / flagged)
    ok = last_of_tie & (flagged >= min_flagged)
    if not ok.any():
        return 0.5, {"target_met": False, "snapshots": int(len(p)), "positives": int(y.sum())}
    meets = ok & (bound >= target)
    k = np.flatnonzero(meets)[-1] if meets.any() else np.flatnonzero(ok)[np.argmax(bound[ok])]
    stats = {
        "target_met": bool(meets.any()),
        "precision": float(precision[k]),
        "precision_lower_bound": float(bound[k]),
        "recall": float(hits[k] / max(ys.sum(), 1)),
        "flagged": int(flagged[k]),
        "snapshots": int(len(p)),
        "positives": int(y.sum()),
    }
    return float(ps[k]), stats


def loss_labels(durations: np.ndarray, events: np.ndarray, followup: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lost within each of LOSS_DAYS, and whether that is known (the horizon fits in the follow-up: counting
    early losses of unmatured snapshots too would over-count losses)."""
    from features.labels import LOST

    d, e, f = (np.asarray(a, float) for a in (durations, events, followup))
    lost = np.stack([(e == LOST) & (d <= h) for h in LOSS_DAYS], axis=1)
    matured = np.stack([f >= h for h in LOSS_DAYS], axis=1)
    return lost, matured


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))
