"""The seeds' rule indices, as the sales teams in our market track them by hand; returned to users and
used as features. Each is a pure function of catalogue features, so it is point-in-time by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.spec import FeatureSpec

SPECS = [
    FeatureSpec("lai", "规则", "线索活跃指数LAI {v}"),
    FeatureSpec("radar_information", "规则", "信息完整度{v}分"),
    FeatureSpec("radar_timeliness", "规则", "响应及时性{v}分"),
    FeatureSpec("radar_need_clarity", "规则", "需求明确度{v}分"),
    FeatureSpec("radar_industry_match", "规则", "行业匹配度{v}分"),
    FeatureSpec("radar_interaction", "规则", "历史互动{v}分"),
]
RADAR = [spec.name for spec in SPECS[1:]]

# Fields whose presence makes a lead's information complete (radar axis 1).
PROFILE_FIELDS = [
    "industry",
    "customer_type",
    "company_size",
    "budget_cny",
    "company_name",
    "province",
    "contact",
    "form_text",
]


def lead_activity_index(f: pd.DataFrame) -> np.ndarray:
    """LAI 0-100: last update within 7 days (40%), at least 3 follow-ups in 30 days (35%), at least 2
    decision-chain roles reached (25%)."""
    last_update = np.fmin(f["days_since_last_activity"].to_numpy(float), f["days_in_recorded_stage"].to_numpy(float))
    fresh = np.nan_to_num(last_update, nan=np.inf) <= 7
    dense = f["activities_30d"].to_numpy(float) >= 3
    roles = f["roles_reached"].to_numpy(float) >= 2
    return 40.0 * fresh + 35.0 * dense + 25.0 * roles


def health_radar(f: pd.DataFrame, profile_present: pd.DataFrame) -> pd.DataFrame:
    """Five axes, each 0-100."""
    first = f["first_touch_hours"].to_numpy(float)
    waiting = f["untouched_hours"].to_numpy(float)
    timeliness = np.select(
        [first <= 2, first <= 8, first <= 24, np.isfinite(first), waiting <= 2],
        [100.0, 70.0, 40.0, 10.0, 100.0],  # an untouched lead still inside its 2 hours is on time
        default=0.0,
    )
    clarity_signals = (
        (f["form_kw_need_detail"].to_numpy(float) + f["notes_kw_need_detail"].to_numpy(float) > 0).astype(int)
        + (f["budget_cny"].notna().to_numpy() | (f["form_amounts"].to_numpy(float) > 0)).astype(int)
        + (f["form_dates"].to_numpy(float) + f["notes_dates"].to_numpy(float) > 0).astype(int)
    )
    industry_wins = f["owner_industry_wins"].to_numpy(float)
    web = f["web_events_30d"].to_numpy(float)
    return pd.DataFrame(
        {
            "radar_information": 100.0 * profile_present[PROFILE_FIELDS].mean(axis=1).to_numpy(),
            "radar_timeliness": timeliness,
            "radar_need_clarity": np.select([clarity_signals >= 2, clarity_signals == 1], [100.0, 50.0], 0.0),
            "radar_industry_match": np.select([industry_wins >= 2, industry_wins >= 1], [100.0, 50.0], 0.0),
            "radar_interaction": np.select([web >= 2, web >= 1], [100.0, 50.0], 0.0),
        }
    )
