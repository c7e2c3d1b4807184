"""Features of (lead, as_of) snapshots: one function for training, batch scoring and the online service.

`build_features(tables, snapshots)` reads the lead's own fields and, through `EventIndex`, only event
rows stamped at or before each snapshot's as_of.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from features.contract import TABLES
from features.pointintime import EventIndex, lead_codes

FEATURE_SET_VERSION = "skeleton-1"
STAGE_ORDER = list(TABLES["stage_changes"].fields[2].choices)
CATEGORICAL = ["channel", "industry", "customer_type", "province", "recorded_stage"]
NUMERIC = [
    "days_since_created",
    "company_size",
    "budget_cny",
    "form_text_chars",
    "has_email",
    "has_company_name",
    "web_events_7d",
    "web_events_30d",
    "pricing_views_30d",
    "web_events_total",
    "activities_30d",
    "activities_total",
    "inbound_30d",
    "days_since_last_activity",
    "days_in_recorded_stage",
]
FEATURES = NUMERIC + CATEGORICAL
DAY = pd.Timedelta(days=1)


def build_features(tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> pd.DataFrame:
    """One row of features per snapshot (columns lead_id, as_of), in the snapshots' order."""
    leads = tables["leads"].set_index("lead_id")
    known = pd.Index(leads.index)
    code = lead_codes(snapshots["lead_id"], known)
    if (code < 0).any():
        missing = snapshots["lead_id"][code < 0].iloc[0]
        raise KeyError(f"snapshot lead_id {missing!r} is not in the leads table")
    as_of = pd.to_datetime(snapshots["as_of"]).reset_index(drop=True)
    lead = leads.iloc[code].reset_index(drop=True)
    out = pd.DataFrame(index=pd.RangeIndex(len(snapshots)))
    out["days_since_created"] = (as_of - lead["created_at"]) / DAY
    out["company_size"] = lead["company_size"].to_numpy(float)
    out["budget_cny"] = lead["budget_cny"].to_numpy(float)
    out["form_text_chars"] = lead["form_text"].fillna("").str.len().to_numpy(float)
    out["has_email"] = lead["email"].notna().to_numpy(float)
    out["has_company_name"] = lead["company_name"].notna().to_numpy(float)
    for column in ["channel", "industry", "customer_type", "province"]:
        out[column] = lead[column].to_numpy(object)

    web = tables["web_events"]
    web_codes = lead_codes(web["lead_id"], known)
    all_web = EventIndex(web_codes, web["ts"])
    pricing = EventIndex(web_codes, web["ts"], (web["page_category"] == "pricing").to_numpy())
    out["web_events_7d"] = all_web.count_between(code, as_of - 7 * DAY, as_of)
    out["web_events_30d"] = all_web.count_between(code, as_of - 30 * DAY, as_of)
    out["pricing_views_30d"] = pricing.count_between(code, as_of - 30 * DAY, as_of)
    out["web_events_total"] = all_web.count_until(code, as_of)

    acts = tables["activities"]
    act_codes = lead_codes(acts["lead_id"], known)
    all_acts = EventIndex(act_codes, acts["ts"])
    inbound = EventIndex(act_codes, acts["ts"], (acts["direction"] == "inbound").to_numpy())
    out["activities_30d"] = all_acts.count_between(code, as_of - 30 * DAY, as_of)
    out["activities_total"] = all_acts.count_until(code, as_of)
    out["inbound_30d"] = inbound.count_between(code, as_of - 30 * DAY, as_of)
    last = all_acts.last_row(code, as_of)
    last_ts = acts["ts"].reset_index(drop=True).reindex(last).reset_index(drop=True)
    out["days_since_last_activity"] = ((as_of - last_ts) / DAY).to_numpy(float)

    stages = tables["stage_changes"]
    stage_index = EventIndex(lead_codes(stages["lead_id"], known), stages["ts"])
    last_stage = stage_index.last_row(code, as_of)
    row = stages.reset_index(drop=True).reindex(last_stage).reset_index(drop=True)
    out["recorded_stage"] = row["stage"].to_numpy(object)
    out["days_in_recorded_stage"] = ((as_of - row["ts"]) / DAY).to_numpy(float)
    return out[FEATURES]


@dataclass
class CategoryVocabulary:
    """Category levels fixed at training time and re-applied at scoring time (unseen -> missing)."""

    levels: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame, columns: list[str] = CATEGORICAL, min_count: int = 5) -> CategoryVocabulary:
        for column in columns:
            counts = frame[column].dropna().astype(str).value_counts()
            self.levels[column] = sorted(counts[counts >= min_count].index.tolist())
        return self

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for column, levels in self.levels.items():
            values = out[column].astype(object).where(out[column].notna(), None)
            out[column] = pd.Categorical(values, categories=levels)
        for column in out.columns.difference(list(self.levels)):
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
        return out
