"""Score history that explains itself: between two scorings of a lead, the factors that moved its score and by
how many points, from the factor contributions each answer carries (`Explanation.contributions`).

A scoring's points add up from its base score, so score(now) - score(before) = base change + the sum of the
factors' changes: the moves shown are the largest terms of that sum. Where one answer lacks a factor (its
points were below 0.05), its points there count as 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.schema import FactorMove, HistoryEntry, LeadAnswer

MIN_MOVE = 0.1  # health points: smaller moves are noise in a summary


@dataclass(frozen=True)
class Scoring:
    """One logged scoring of a lead: its answer and when and where it was made."""

    answer: LeadAnswer
    scored_at: str
    endpoint: str


def moves(before: LeadAnswer, after: LeadAnswer, n: int = 5) -> list[FactorMove]:
    """The n factors whose points changed most from `before` to `after` (|change| >= MIN_MOVE)."""
    old = {c.factor: c for c in before.explanation.contributions or []}
    new = {c.factor: c for c in after.explanation.contributions or []}
    out = []
    for factor in old.keys() | new.keys():
        a, b = old.get(factor), new.get(factor)
        change = (b.points if b else 0.0) - (a.points if a else 0.0)
        if abs(change) < MIN_MOVE:
            continue
        label = (b or a).label
        was, now = (a.value if a else None), (b.value if b else None)
        what = f"{_short(was)}→{_short(now)}" if was and now and was != now else _short(now or was or label)
        sentence = f"{what} {_signed(change)}分"
        out.append(FactorMove(factor=factor, label=label, points=round(change, 2), before=was, after=now,
                              sentence=sentence))  # fmt: skip
    return sorted(out, key=lambda m: -abs(m.points))[:n]


def entries(scorings: Iterable[Scoring]) -> list[HistoryEntry]:
    """Every scoring, oldest first, each with what moved the score since the previous one."""
    out, previous = [], None
    for s in scorings:
        a = s.answer
        risk = getattr(a, "risk", None)
        stage = getattr(a, "stage", None)
        moved = moves(previous, a) if previous is not None else []
        out.append(
            HistoryEntry(
                as_of=a.as_of,
                scored_at=s.scored_at,
                endpoint=s.endpoint,
                model_version=a.model_version,
                health_score=a.health_score,
                tier=a.tier,
                stage=stage.inferred if stage is not None else None,
                risk_level=risk.level if risk is not None else None,
                warnings=list(risk.reasons) if risk is not None else [],
                change=None if previous is None else round(a.health_score - previous.health_score, 1),
                base_change=None
                if previous is None
                else round(a.explanation.base_score - previous.explanation.base_score, 2),
                moved=moved,
                summary="；".join(m.sentence for m in moved)
                if moved
                else ("首次评分" if previous is None else "无明显变化"),
            )
        )
        previous = a
    return out


def _signed(points: float) -> str:
    return f"+{points:.1f}" if points >= 0 else f"−{abs(points):.1f}"  # a real minus sign, as the page shows


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
