"""The lead's own fields as of T: age, creation time, size, budget, contact fields present, and its categories.
Reads only the leads row, so it is point-in-time by construction."""

from __future__ import annotations

import pandas as pd

from features.spec import FeatureSpec

DAY = pd.Timedelta(days=1)
CATEGORIES = ["channel", "industry", "customer_type", "province"]
SPECS = [
    FeatureSpec("days_since_created", "画像", "线索已创建{v}天"),
    FeatureSpec("created_hour", "画像", "创建于{v}点"),
    FeatureSpec("created_on_weekend", "画像", "周末创建(1=是):{v}"),
    FeatureSpec("company_size", "画像", "公司规模{v}人"),
    FeatureSpec("budget_cny", "画像", "预算{v}元"),
    FeatureSpec("has_email", "画像", "留了邮箱(1=是):{v}"),
    FeatureSpec("has_phone", "画像", "留了电话(1=是):{v}"),
    FeatureSpec("has_company_name", "画像", "填写了公司名(1=是):{v}"),
    FeatureSpec("channel", "画像", "来源渠道:{v}", True),
    FeatureSpec("industry", "画像", "行业:{v}", True),
    FeatureSpec("customer_type", "画像", "客户类型:{v}", True),
    FeatureSpec("province", "画像", "省份:{v}", True),
]


def profile_features(lead: pd.DataFrame, as_of: pd.Series) -> pd.DataFrame:
    """One row per snapshot from the snapshot's leads row (`lead`, aligned with `as_of`)."""
    created = lead["created_at"]
    profile = pd.DataFrame(
        {
            "days_since_created": ((as_of - created) / DAY).to_numpy(float),
            "created_hour": created.dt.hour.to_numpy(float),
            "created_on_weekend": (created.dt.dayofweek >= 5).to_numpy(float),
            "company_size": lead["company_size"].to_numpy(float),
            "budget_cny": lead["budget_cny"].to_numpy(float),
            "has_email": lead["email"].notna().to_numpy(float),
            "has_phone": lead["phone"].notna().to_numpy(float),
            "has_company_name": lead["company_name"].notna().to_numpy(float),
        }
    )
    for column in CATEGORIES:
        profile[column] = lead[column].to_numpy(object)
    return profile
