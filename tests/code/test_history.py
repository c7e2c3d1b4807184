"""Score history: between two scorings, the factors that moved the score add up to the move."""

from __future__ import annotations

from models.history import Scoring, entries, moves
from tests.helpers import lead_answer


def answer(score: float, base: float, points: dict[str, tuple[float, str]], as_of: str):
    contributions = [{"factor": f, "label": f"标签{f}", "points": p, "value": v} for f, (p, v) in points.items()]
    return lead_answer("L1", health_score=score, win_probability=score / 100, as_of=as_of,
                       explanation={"base_score": base, "positive": [], "negative": [], "contributions": contributions})  # fmt: skip


def test_moves_add_up_to_the_change_and_read_before_and_after() -> None:
    before = answer(
        30.0,
        20.0,
        {"quote": (2.0, "报价单附件0份"), "idle": (8.0, "距上次跟进1天"), "x": (0.04, "x")},
        "2026-05-01T10:00:00+08:00",
    )
    after = answer(34.1, 20.0, {"quote": (8.2, "报价单附件1份"), "idle": (3.9, "距上次跟进8天"), "new": (2.0, "新因素")}, "2026-05-15T10:00:00+08:00")  # fmt: skip
    got = moves(before.model_copy(), after, n=10)
    assert [m.factor for m in got] == ["quote", "idle", "new"]
    assert got[0].sentence == "报价单附件0份→报价单附件1份 +6.2分"
    assert got[1].sentence == "距上次跟进1天→距上次跟进8天 −4.1分"
    assert got[2].before is None and got[2].sentence == "新因素 +2.0分"
    # every factor's change plus the base score's change is the score's change (x moved by 0.04: below the cut)
    assert abs(sum(m.points for m in got) - (after.health_score - before.health_score)) < 0.05
    history = entries(
        [Scoring(before, "2026-05-01T02:00:00+00:00", "score"), Scoring(after, "2026-05-15T02:00:00+00:00", "score")]
    )
    assert history[0].change is None and history[0].summary == "首次评分"
    assert history[1].change == 4.1 and history[1].base_change == 0.0
    assert history[1].summary == "报价单附件0份→报价单附件1份 +6.2分；距上次跟进1天→距上次跟进8天 −4.1分；新因素 +2.0分"


def test_an_answer_without_contributions_moves_nothing() -> None:
    a = lead_answer("L1")
    assert moves(a, a) == []
    assert entries([Scoring(a, "t", "score"), Scoring(a, "t2", "score")])[1].summary == "无明显变化"
