"""Explanations in health-score points: the health model's contributions to its log-odds, rescaled and folded
into factors.

The contributions c_i add up to the model's log-odds m = bias + sum(c_i) (TreeSHAP for a booster); the score
is 100 * calibrate(m), a monotone map (Platt). One multiplier k = (score - base) / sum(c_i), the secant of
that map between the base (all contributions zero) and the lead, turns each c_i into points: the points add
up to score - base exactly, and each keeps its sign because the map is increasing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

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


def fold(points: pd.DataFrame, values: pd.DataFrame) -> list[list[dict[str, object]]]:
    """Each lead's contributions folded into factors, largest effect first, each with a Chinese sentence
    naming the lead's own values (e.g. 近7天查看价格页3次), its group and signed points. `points`: rows of
    `Explanation.points`; `values`: the same leads' features. The sums and orderings are done for the whole
    batch at once (a per-lead pass over pandas rows cost more than the rest of the answer, bench/results)."""
    names = list(points.columns)
    folding = _folding(tuple(names))
    signed = points.to_numpy(float)
    magnitude = np.abs(signed)
    cells = values[names].to_numpy(object)
    per_factor = []
    for key, label, members in folding:
        # Members by |points| descending, ties by name descending (`members` is name-descending already).
        order = members[np.argsort(-magnitude[:, members], axis=1, kind="stable")]
        per_factor.append((key, label, signed[:, members].sum(axis=1), order.tolist()))
    magnitudes = magnitude.tolist()
    out = []
    for i in range(len(points)):
        size = magnitudes[i]
        lead = []
        for key, label, total, order in per_factor:
            ordered = order[i]
            shown = [j for j in ordered[:2] if size[j] >= 0.05] or ordered[:1]
            sentence = "；".join(CATALOGUE[names[j]].describe(_plain(cells[i, j])) for j in shown)
            pts = round(float(total[i]), 2)  # the sentence shows the same number the field carries
            lead.append(
                {
                    "factor": key,
                    "label": label,
                    "points": pts,
                    "group": CATALOGUE[names[ordered[0]]].group,
                    "sentence": f"{sentence}，{pts:+.1f}分",
                    "features": [names[j] for j in ordered if size[j] >= 0.005] or [names[ordered[0]]],
                }
            )
        out.append(sorted(lead, key=lambda f: -abs(f["points"])))
    return out


def factors(points: Mapping[str, float], values: Mapping[str, object]) -> list[dict[str, object]]:
    """One lead's factors (`fold` of one row): `points` and `values` keyed by feature, as Series or dicts."""
    return fold(pd.DataFrame([dict(points.items())]), pd.DataFrame([dict(values.items())]))[0]


@lru_cache(maxsize=8)
def _folding(names: tuple[str, ...]) -> list[tuple[str, str, np.ndarray]]:
    """(factor, label, positions of its features in `names`, by name descending), in first-seen order."""
    members: dict[tuple[str, str], list[int]] = {}
    for j, name in enumerate(names):
        members.setdefault(FACTORS[name], []).append(j)
    return [
        (key, label, np.array(sorted(js, key=lambda j: names[j], reverse=True))) for (key, label), js in members.items()
    ]


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
