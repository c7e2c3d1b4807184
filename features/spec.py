"""A feature's declaration: stable name, group and the Chinese sentence explanations fill with the lead's value.

Each feature group declares its specs next to the code that computes them (as Feast's feature views carry
their schema); features/catalogue.py assembles the catalogue from the groups.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUPS = ("画像", "行为", "跟进", "文本", "规则")


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    group: str
    template: str  # e.g. 近7天查看价格页{v}次
    categorical: bool = False

    def describe(self, value: object) -> str:
        """The template filled with a value: numbers rounded for reading, missing said as 未知."""
        if value is None or (isinstance(value, float) and value != value):
            shown = "未知"
        elif isinstance(value, float):
            shown = f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"
        else:
            shown = str(value)
        return self.template.format(v=shown)
