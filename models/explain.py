"""Explanations in health-score points: the health model's contributions to its log-odds, rescaled and folded
into factors.

The contributions c_i add up to the model's log-odds m = bias + sum(c_i) (TreeSHAP for a booster); the score
is 100 * calibrate(m), a monotone map (Platt). One multiplier k = (score - base) / sum(c_i), the secant of
that map between the base (all contributions zero) and the lead, turns each c_i into points: the points add
up to score - base exactly, and each keeps its sign because the map is increasing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.behaviour import PAGE_ZH
from features.catalogue import CATALOGUE, FEATURES
from models.health import HealthModel

_PAGE_VIEWS = re.compile(r"^(?P<page>[a-z_]+)_views_\d+d$")
_FORM_TEXT = ("form_text_chars", "form_amounts", "form_dates", "form_text_win_p")
_LABEL_TAIL = re.compile(r"(\(1=是\))?[:：]?$")
_NOTES_TEXT = ("notes_chars", "notes_dates", "notes_win_p", "notes_stage_level")


def factor_of(feature: str) -> tuple[str, str]:
    """The readable factor a feature folds into (key, Chinese label): the form text's and the notes'
    features become one factor each, a page category's 7- and 30-day views one factor."""
    if feature in _FORM_TEXT or feature.startswith("form_kw_"):
        return "form_text", "表单留言内容"
    if feature in _NOTES_TEXT or feature.startswith("notes_kw_"):
        return "notes_text", "跟进记录内容"
    if match := _PAGE_VIEWS.match(feature):
        page = match["page"]
        return f"{page}_views", f"查看{PAGE_ZH[page]}"
    label = _LABEL_TAIL.sub("", CATALOGUE[feature].template.split("{")[0])
    return feature, label or feature


FACTORS: dict[str, tuple[str, str]] = {name: factor_of(name) for name in FEATURES}


@dataclass(frozen=True)
class Explanation:
    """Per lead: the base score (every contribution zero), points per feature, and the score they add to."""

    base_score: np.ndarray
    points: pd.DataFrame  # leads x FEATURES, in health-score points
    score: np.ndarray


def explain(health: HealthModel, features: pd.DataFrame) -> Explanation:
    """The health model's contributions for each row, in points of the 0-100 health score."""
    values, bias = health.contributions(features)
    total = values.sum(axis=1)
    base, score = 100.0 * health.calibrate(bias), 100.0 * health.calibrate(bias + total)
    # Where the contributions cancel, the secant is the derivative: 100 * a * p * (1 - p).
    p = score / 100.0
    slope_at = 100.0 * health.slope_ * p * (1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(np.abs(total) > 1e-9, (score - base) / total, slope_at)
    points = pd.DataFrame(values * k[:, None], columns=list(health.feature_names_in_), index=features.index)
    return Explanation(base_score=base, points=points, score=score)


def factors(points: pd.Series, values: pd.Series) -> list[dict[str, object]]:
    """One lead's contributions folded into factors, largest effect first, each with a Chinese sentence
    naming the lead's own values (e.g. 近7天查看价格页3次), its group and signed points."""
    folded: dict[str, dict[str, object]] = {}
    for feature, pts in points.items():
        key, label = FACTORS[feature]
        entry = folded.setdefault(key, {"factor": key, "label": label, "points": 0.0, "members": []})
        entry["points"] += float(pts)
        entry["members"].append((abs(float(pts)), feature))
    out = []
    for entry in folded.values():
        members = [feature for _, feature in sorted(entry.pop("members"), reverse=True)]
        shown = [m for m in members[:2] if abs(points[m]) >= 0.05] or members[:1]
        sentence = "；".join(CATALOGUE[m].describe(_plain(values[m])) for m in shown)
        pts = round(float(entry["points"]), 2)  # the sentence shows the same number the field carries
        out.append(
            entry
            | {
                "points": pts,
                "group": CATALOGUE[members[0]].group,
                "sentence": f"{sentence}，{pts:+.1f}分",
                "features": [m for m in members if abs(points[m]) >= 0.005] or members[:1],
            }
        )
    return sorted(out, key=lambda f: -abs(f["points"]))


def top_factors(all_factors: list[dict[str, object]], n: int = 3) -> dict[str, list[dict[str, object]]]:
    """The n strongest factors raising the score and the n strongest lowering it (|points| >= 0.05)."""
    return {
        "positive": [f for f in all_factors if f["points"] >= 0.05][:n],
        "negative": [f for f in all_factors if f["points"] <= -0.05][:n],
    }


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return None if value is pd.NA else value
