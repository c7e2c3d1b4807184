"""`--from hubspot`: contacts, deals, the deal pipelines and the engagements (calls, emails, meetings,
notes) as the CRM API v3 returns them (JSON: a page `{"results": [...]}`, a list of pages, or a list of
records) or as CSV exports with the properties' internal names as headers.

- A contact is a lead; its outcome and stage history are those of its first deal (the earliest created of
  its associated deals). A deal with no contact is a lead of its own (lead_id = "deal-<id>").
- Stage history comes from `propertiesWithHistory.dealstage` (request it with
  `?propertiesWithHistory=dealstage`), else from the `hs_date_entered_<stage id>` properties; the current
  `dealstage` alone is not history. Stage ids are read through the pipeline definition
  (`GET /crm/v3/pipelines/deals` saved as pipelines.json): its `metadata.isClosed` and `probability` say
  which stage is won (1.0) and lost (0.0); the default pipeline's stage ids map to the contract's stages,
  custom stages through stage_map (by id or label).
- A closed deal's close time is when it entered its closed stage; `closedate` of an open deal is an
  expected date and is never used.
- Engagements are linked to leads through their associations (to contacts, else to deals). hs_timestamp is
  ISO 8601 or epoch milliseconds; meetings count at their end; canceled, no-show and future meetings and
  calls that never connected are left out. Notes are HTML: stripped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contract import ContractResult
from leadscore.tools.importers.base import (
    Options,
    Staging,
    custom_lead_fields,
    each,
    finish,
    map_values,
    numbers,
)
from leadscore.tools.importers.files import SourceError, SourceTable, find_source, read_source
from leadscore.tools.importers.report import ImportReport
from leadscore.tools.importers.values import TimeSpec, is_true, iso_or_marker, parse_times, strip_html

DEFAULT_STAGES = {
    "appointmentscheduled": "初步接触",
    "qualifiedtobuy": "需求确认",
    "presentationscheduled": "方案沟通",
    "decisionmakerboughtin": "报价",
    "contractsent": "合同谈判",
    "closedwon": "赢单",
    "closedlost": "丢单",
}
CHANNELS = {"REFERRALS": "转介绍", "OFFLINE": "其他", "OTHER_CAMPAIGNS": "其他"}
CONTACT_LEAKS = {
    "lifecyclestage": "the current lifecycle stage (customer once won)",
    "hs_lead_status": "the current lead status (used only to see undated losses, which stay open)",
    "hs_lifecyclestage_customer_date": "stamped when the contact became a customer: exists only for won leads",
    "hs_lifecyclestage_opportunity_date": "stamped when a deal was opened, during the deal",
    "closedate": "the contact's close date: exists only for customers",
    "days_to_close": "exists only for customers",
    "recent_deal_close_date": "stamped at a deal's close",
    "recent_deal_amount": "the value of a closed deal",
    "total_revenue": "revenue from closed deals",
    "num_associated_deals": "counted at the export",
    "first_deal_created_date": "stamped when a deal was opened, during the deal",
    "hs_analytics_num_page_views": "counted up to the export (use web events, which are stamped)",
    "hs_analytics_num_visits": "counted up to the export (use web events, which are stamped)",
    "notes_last_contacted": "stamped at the export, after the outcome",
    "notes_last_updated": "stamped at the export, after the outcome",
    "num_contacted_notes": "counted up to the export",
    "lastmodifieddate": "stamped at the export, after the outcome",
}
DEAL_LEAKS = {
    "dealstage": "the current stage, not the stage history",
    "hs_is_closed": "the outcome itself (used for the outcome only)",
    "hs_is_closed_won": "the outcome itself (used for the outcome only)",
    "closedate": "the expected close date of an open deal; never a close time",
    "hs_deal_stage_probability": "set by the current stage (1 once won, 0 once lost)",
    "closed_won_reason": "exists only for won deals",
    "closed_lost_reason": "exists only for lost deals",
    "hs_closed_amount": "the value of a closed deal",
    "amount": "the current amount, revised up to the close (kept as the won deal's value only)",
}
# HubSpot's CSV exports head their columns with property labels; the usual ones, to internal names.
CSV_LABELS = {
    "record id": "hs_object_id", "create date": "createdate", "email": "email", "phone number": "phone",
    "mobile phone number": "mobilephone", "company name": "company", "industry": "industry",
    "number of employees": "numemployees", "city": "city", "state/region": "state", "country/region": "country",
    "original source": "hs_analytics_source", "original source drill-down 1": "hs_analytics_source_data_1",
    "contact owner": "hubspot_owner_id", "deal owner": "hubspot_owner_id", "lead status": "hs_lead_status",
    "lifecycle stage": "lifecyclestage", "message": "message", "job title": "jobtitle", "deal name": "dealname",
    "deal stage": "dealstage", "pipeline": "pipeline", "amount": "amount", "close date": "closedate",
    "associated contact ids": "Associated Contact IDs", "last modified date": "lastmodifieddate",
}  # fmt: skip
SOURCE_LABELS = {"Organic Search": "ORGANIC_SEARCH", "Paid Search": "PAID_SEARCH", "Email Marketing": "EMAIL_MARKETING",
                 "Social Media": "SOCIAL_MEDIA", "Referrals": "REFERRALS", "Other Campaigns": "OTHER_CAMPAIGNS",
                 "Direct Traffic": "DIRECT_TRAFFIC", "Offline Sources": "OFFLINE", "Paid Social": "PAID_SOCIAL"}  # fmt: skip
CALL_SKIP = {"CANCELED", "FAILED", "QUEUED", "CALLING_CRM_USER", "RINGING", "IN_PROGRESS"}
MEETING_SKIP = {"CANCELED", "NO_SHOW", "RESCHEDULED"}


def _flatten(table: SourceTable) -> pd.DataFrame:
    """API records {id, properties: {...}, propertiesWithHistory, associations} -> one column per property
    (and `_history`, `_assoc_<type>` columns); a CSV export is already flat."""
    frame = table.frame
    if "properties" not in frame:  # a CSV export: property labels (the UI's default) or internal names
        frame = frame.rename(columns=lambda c: CSV_LABELS.get(str(c).strip().lower(), c)).copy()
        frame["id"] = frame["hs_object_id"] if "hs_object_id" in frame else frame.get("id")
        if frame["id"] is None:
            raise SourceError(f"{table.name}: a CSV export needs the Record ID (hs_object_id) column")
        return frame.reset_index(drop=True)
    props = pd.DataFrame([p if isinstance(p, dict) else {} for p in frame["properties"]])
    props["id"] = frame["id"].astype(str).to_numpy()
    if "propertiesWithHistory" in frame:
        props["_history"] = each(
            frame["propertiesWithHistory"], lambda h: h.get("dealstage") if isinstance(h, dict) else None
        )
    if "associations" in frame:
        for kind in ("contacts", "deals"):
            props[f"_assoc_{kind}"] = each(frame["associations"], lambda a, k=kind: _assoc_ids(a, k))
    return props.reset_index(drop=True)


def _assoc_ids(associations: Any, kind: str) -> list[str]:
    if not isinstance(associations, dict):
        return []
    block = associations.get(kind) or {}
    results = block.get("results", []) if isinstance(block, dict) else block
    return [str(r.get("id", r.get("toObjectId"))) for r in results if isinstance(r, dict)]


def _csv_ids(value: Any) -> list[str]:
    """ "Associated Contact IDs" in a CSV export: ids separated by ';'."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(";") if v.strip()] if isinstance(value, str) else []


class _HubSpot:
    def __init__(self, root: Path, options: Options) -> None:
        self.report = ImportReport("hubspot", str(root))
        self.staging = Staging(self.report)
        self.options = options
        self.spec = TimeSpec(options.timezone or "UTC", epoch_ms=True)
        self.report.assume(f"hs_timestamp and other times: ISO 8601 (UTC in the API) or epoch milliseconds; CSV "
                           f"times without an offset are read as {self.spec.tz}")  # fmt: skip
        self.tables = {name: self._read(root, name) for name in ("contacts", "deals", "pipelines", "calls", "emails",
                                                                  "meetings", "notes")}  # fmt: skip
        if self.tables["contacts"] is None and self.tables["deals"] is None:
            raise SourceError(f"hubspot: {root} has neither contacts.json|csv nor deals.json|csv")
        self.frames = {n: _flatten(t) for n, t in self.tables.items() if t is not None and n != "pipelines"}
        self.stages = self._pipeline_stages()
        self.stage_ids = {str(s["label"]): i for i, s in self.stages.items()} | {i: i for i in self.stages}
        labels = {label: CHANNELS.get(code, code) for label, code in SOURCE_LABELS.items()}
        self.channels = {**labels, **CHANNELS, **options.channel_map}
        self.exported_at = self._export_time()
        self.deal_lead: dict[str, str] = {}
        self.contact_ids: set[str] = set()

    def _export_time(self) -> pd.Timestamp:
        if self.options.exported_at:
            return pd.Timestamp(self.options.exported_at, tz=self.spec.tz).tz_convert("UTC")
        stamps = []
        for name, table in self.tables.items():
            frame = self.frames.get(name)
            candidates = [table.frame.get("updatedAt")] if table is not None else []
            candidates += (
                [frame.get(c) for c in ("hs_lastmodifieddate", "lastmodifieddate")] if frame is not None else []
            )
            stamps += [parse_times(c, self.spec)[0].max() for c in candidates if c is not None]
        stamps = [t for t in stamps if pd.notna(t)]
        exported = max(stamps) if stamps else pd.Timestamp.now(tz="UTC")
        self.report.assume(f"the export was taken at {exported.isoformat()} (its latest updatedAt / lastmodifieddate)")
        return exported

    def _read(self, root: Path, name: str) -> SourceTable | None:
        path = find_source(root, name, name.rstrip("s"), f"{name}_export", f"hubspot-crm-exports-{name}")
        if path is None:
            if name != "pipelines":
                self.report.warn(f"no {name} export in the source: its part of the contract stays empty")
            return None
        table = read_source(path, name)
        for note in table.notes:
            self.report.warn(note)
        self.report.read(name, len(table))
        if "archived" in table.frame:
            archived = is_true(table.frame["archived"]).to_numpy()
            self.report.skip(name, int(archived.sum()), "archived in HubSpot")
            table = SourceTable(name, table.path, table.frame[~archived].reset_index(drop=True),
                                [r for r, a in zip(table.row_labels, archived, strict=True) if not a])  # fmt: skip
        return table

    def _pipeline_stages(self) -> dict[str, dict]:
        """stage id -> {label, order, won, lost, stage} from the pipelines definition (or the defaults)."""
        stages: dict[str, dict] = {}
        table = self.tables["pipelines"]
        if table is not None:
            self.report.stats("pipelines").joined_into = "deals (stage ids)"
            for pipeline in table.frame.to_dict("records"):
                for stage in pipeline.get("stages") or []:
                    meta = stage.get("metadata") or {}
                    stage_id = str(stage.get("id", stage.get("stageId")))
                    closed = str(meta.get("isClosed", "")).lower() == "true"
                    probability = float(meta.get("probability", np.nan) or np.nan)
                    stages[stage_id] = {"label": stage.get("label", stage_id), "order": stage.get("displayOrder", 0),
                                        "won": probability == 1.0 and (closed or "isClosed" not in meta),
                                        "lost": probability == 0.0 and (closed or "isClosed" not in meta)}  # fmt: skip
        else:
            self.report.warn("no pipelines.json: only the default pipeline's stage ids are known")
            for stage_id in DEFAULT_STAGES:
                stages[stage_id] = {"label": stage_id, "order": 0, "won": stage_id == "closedwon",
                                    "lost": stage_id == "closedlost"}  # fmt: skip
        for stage_id, stage in stages.items():
            mapped = self.options.stage_map.get(stage_id) or self.options.stage_map.get(stage["label"])
            stage["stage"] = mapped or ("赢单" if stage["won"] else "丢单" if stage["lost"] else
                                        DEFAULT_STAGES.get(stage_id, stage["label"]))  # fmt: skip
        unknown = [s["label"] for i, s in stages.items() if s["stage"] == s["label"] and i not in DEFAULT_STAGES]
        if unknown:
            self.report.warn(f"custom deal stages kept by their label: {', '.join(map(str, unknown))} (map them "
                             "with stage_map in the mapping file)")  # fmt: skip
        return stages

    def run(self) -> tuple[ContractResult, ImportReport]:
        self._contacts()
        self._deals()
        for name in ("calls", "emails", "meetings", "notes"):
            if name in self.frames:
                self._engagements(name)
        for name, reason in CONTACT_LEAKS.items():
            if "contacts" in self.frames and name in self.frames["contacts"]:
                self.report.exclude("contacts", name, reason)
        for name, reason in DEAL_LEAKS.items():
            if "deals" in self.frames and name in self.frames["deals"]:
                self.report.exclude("deals", name, reason)
        return finish(self.staging, self.options.keep_despite_guard), self.report

    def _times(self, values: pd.Series, table: str, column: str) -> list[str | None]:
        parsed, bad = parse_times(values, self.spec)
        self.report.assume(f"{table}.{column}: {self.spec.describe()}")
        return iso_or_marker(parsed, bad)

    def _contacts(self) -> None:
        if "contacts" not in self.frames:
            return
        frame, table = self.frames["contacts"], self.tables["contacts"]
        get = lambda name: frame[name].reset_index(drop=True) if name in frame else pd.Series([None] * len(frame))  # noqa: E731
        self.contact_ids = set(frame["id"].astype(str))
        leads = pd.DataFrame(
            {
                "lead_id": frame["id"].astype(str),
                "created_at": self._times(get("createdate"), "contacts", "createdate"),
                "channel": map_values(get("hs_analytics_source"), self.channels),
                "campaign": get("hs_analytics_source_data_1"),
                "company_name": get("company"),
                "industry": get("industry"),
                "company_size": numbers(get("numemployees")),
                "province": get("state"),
                "city": get("city"),
                "phone": get("mobilephone").where(
                    get("mobilephone").notna() & (get("mobilephone") != ""), get("phone")
                ),
                "email": get("email"),
                "owner_id": get("hubspot_owner_id"),
                "assigned_at": self._times(get("hubspot_owner_assigneddate"), "contacts", "hubspot_owner_assigneddate"),
                "form_text": get("message"),
                "country": get("country"),
                "job_title": get("jobtitle"),
            }
        )
        fields = {"lead_id": "id", "created_at": "createdate", "channel": "hs_analytics_source",
                  "campaign": "hs_analytics_source_data_1", "company_name": "company", "industry": "industry",
                  "company_size": "numemployees", "province": "state", "city": "city", "phone": "mobilephone / phone",
                  "email": "email", "owner_id": "hubspot_owner_id", "assigned_at": "hubspot_owner_assigneddate",
                  "form_text": "message", "country": "country", "job_title": "jobtitle"}  # fmt: skip
        flat = SourceTable("contacts", table.path, frame, table.row_labels)
        custom, custom_fields = custom_lead_fields(flat, self.options, self.spec)
        leads = pd.concat([leads.drop(columns=[c for c in custom if c in leads]), custom], axis=1)
        self.staging.add("leads", leads, "contacts", table.row_labels, {**fields, **custom_fields})
        # The contact's first deal carries its outcome; without a deal, an unqualified status is an undated loss.
        lost = {"UNQUALIFIED": "lost", **self.options.status_map}
        status = each(
            get("hs_lead_status").astype("string"), lambda s: lost.get(s, "open") if isinstance(s, str) else "open"
        )
        outcomes = pd.DataFrame({"lead_id": frame["id"].astype(str), "status": status, "closed_at": None})
        self._contact_outcomes = (outcomes, table.row_labels)

    def _deal_contacts(self, deals: pd.DataFrame) -> pd.Series:
        contacts = self.frames.get("contacts")
        by_deal: dict[str, list[str]] = {}
        if "_assoc_contacts" in deals:
            for deal_id, ids in zip(deals["id"], deals["_assoc_contacts"], strict=True):
                by_deal.setdefault(str(deal_id), []).extend(ids)
        elif "Associated Contact IDs" in deals:
            for deal_id, ids in zip(deals["id"], deals["Associated Contact IDs"], strict=True):
                by_deal.setdefault(str(deal_id), []).extend(_csv_ids(ids))
        if contacts is not None and "_assoc_deals" in contacts:
            for contact_id, ids in zip(contacts["id"], contacts["_assoc_deals"], strict=True):
                for deal_id in ids:
                    by_deal.setdefault(str(deal_id), []).append(str(contact_id))
        return each(
            deals["id"].astype(str), lambda d: next((c for c in by_deal.get(d, []) if c in self.contact_ids), None)
        )

    def _deals(self) -> None:
        contact_outcomes, contact_rows = getattr(self, "_contact_outcomes", (None, None))
        if "deals" not in self.frames:
            if contact_outcomes is not None:
                self.staging.add("outcomes", contact_outcomes, "contacts", contact_rows,
                                 {"lead_id": "id", "status": "hs_lead_status"})  # fmt: skip
            return
        deals, table = self.frames["deals"], self.tables["deals"]
        deals = self._csv_stage_columns(deals)
        deals = deals.assign(
            _row=table.row_labels, _created=parse_times(deals.get("createdate", pd.Series(dtype=object)), self.spec)[0]
        )
        deals["_contact"] = self._deal_contacts(deals)
        # A contact's first deal is its outcome; the others are reported, not merged.
        first = deals.sort_values("_created", kind="stable").drop_duplicates("_contact")
        first = pd.concat([first[first["_contact"].notna()], deals[deals["_contact"].isna()]])
        later = int(deals["_contact"].notna().sum() - first["_contact"].notna().sum())
        self.report.skip("deals", later, "a later deal of a contact (its first deal gives the outcome)")
        first = first.reset_index(drop=True)
        lead_ids = first["_contact"].where(first["_contact"].notna(), "deal-" + first["id"].astype(str))
        for deal_id, lead_id in zip(first["id"].astype(str), lead_ids, strict=True):
            self.deal_lead[deal_id] = lead_id
        own = first["_contact"].isna().to_numpy()
        if own.any():
            own_deals = first[own].reset_index(drop=True)
            get = lambda name: own_deals[name] if name in own_deals else pd.Series([None] * len(own_deals))  # noqa: E731
            leads = pd.DataFrame({"lead_id": lead_ids[own].to_numpy(),
                                  "created_at": self._times(get("createdate"), "deals", "createdate"),
                                  "owner_id": get("hubspot_owner_id"),
                                  "channel": map_values(get("hs_analytics_source"), self.channels)})  # fmt: skip
            self.staging.add("leads", leads, "deals", own_deals["_row"].tolist(),
                             {"lead_id": "id", "created_at": "createdate", "owner_id": "hubspot_owner_id",
                              "channel": "hs_analytics_source"})  # fmt: skip
            self.report.assume(f"{int(own.sum())} deals with no contact are leads of their own (lead_id deal-<id>)")
        if contact_outcomes is not None:  # contacts without a deal
            with_deal = contact_outcomes["lead_id"].isin(set(lead_ids)).to_numpy()
            self.staging.add("outcomes", contact_outcomes[~with_deal].reset_index(drop=True), "contacts",
                             [r for r, w in zip(contact_rows, with_deal, strict=True) if not w],
                             {"lead_id": "id", "status": "hs_lead_status"})  # fmt: skip
        history = self._stage_history(first, lead_ids)
        status, closed_at = [], []
        for i, deal in first.iterrows():
            stage = self.stages.get(str(deal.get("dealstage")), {})
            state = "won" if stage.get("won") else "lost" if stage.get("lost") else "open"
            if "hs_is_closed_won" in deal and str(deal["hs_is_closed_won"]).lower() == "true":
                state = "won"
            status.append(state)
            closed_at.append(self._close_time(history, lead_ids[i], deal, state))
        amount = numbers(first["amount"]) if "amount" in first else [None] * len(first)
        rate = self.options.currency_rate or (1.0 if (self.options.currency or "").upper() == "CNY" else None)
        if rate is None:
            self.report.assume("deal amounts are not in CNY: amount_cny left empty (set currency and currency_rate)")
        outcomes = pd.DataFrame({
            "lead_id": lead_ids, "status": status, "closed_at": closed_at,
            "amount_cny": [a * rate if rate and s == "won" and isinstance(a, float) else None
                           for a, s in zip(amount, status, strict=True)],
        })  # fmt: skip
        self.staging.add("outcomes", outcomes, "deals", first["_row"].tolist(),
                         {"lead_id": "id (via associations)", "status": "dealstage (pipeline metadata)",
                          "closed_at": "dealstage history: entry into the closed stage", "amount_cny": "amount"})  # fmt: skip

    def _csv_stage_columns(self, deals: pd.DataFrame) -> pd.DataFrame:
        """A CSV export's stage labels to stage ids, and its 'Date entered "Stage (Pipeline)"' columns to
        hs_date_entered_<stage id>."""
        deals = deals.copy()
        if "dealstage" in deals:
            deals["dealstage"] = each(deals["dealstage"], lambda v: self.stage_ids.get(str(v).strip(), v) if v else v)
        renamed = {}
        for column_name in deals.columns:
            match = re.match(r'^Date entered "(.+) \((.+)\)"$', str(column_name))
            if match and match.group(1) in self.stage_ids:
                renamed[column_name] = f"hs_date_entered_{self.stage_ids[match.group(1)]}"
        return deals.rename(columns=renamed)

    def _stage_history(self, deals: pd.DataFrame, lead_ids: pd.Series) -> pd.DataFrame:
        """(lead_id, ts, stage id) per stage entry, from propertiesWithHistory, else hs_date_entered_*."""
        rows, labels = [], []
        entered = [c for c in deals.columns if str(c).startswith("hs_date_entered_")]
        for i, deal in deals.iterrows():
            versions = deal.get("_history") if "_history" in deals else None
            if isinstance(versions, list) and versions:
                for v in versions:
                    rows.append((lead_ids[i], v.get("timestamp"), str(v.get("value"))))
                    labels.append(deal["_row"])
            else:
                for column in entered:
                    value = deal.get(column)
                    if isinstance(value, str) and value.strip():
                        rows.append((lead_ids[i], value, column.removeprefix("hs_date_entered_")))
                        labels.append(deal["_row"])
        history = pd.DataFrame(rows, columns=["lead_id", "raw_ts", "stage_id"])
        history["ts"], history["row"] = parse_times(history["raw_ts"], self.spec)[0], labels
        history = history.sort_values(["lead_id", "ts"], kind="stable").reset_index(drop=True)
        previous = history.groupby("lead_id")["stage_id"].shift()
        history = history[(history["stage_id"] != previous) | previous.isna()].reset_index(drop=True)
        staged = pd.DataFrame({
            "lead_id": history["lead_id"],
            "ts": iso_or_marker(history["ts"], history["ts"].isna().to_numpy() & history["raw_ts"].notna().to_numpy()),
            "stage": each(history["stage_id"], lambda s: self.stages.get(s, {}).get("stage", s)),
        })  # fmt: skip
        self.staging.add("stage_changes", staged, "deals", history["row"].tolist(),
                         {"lead_id": "id (via associations)", "ts": "propertiesWithHistory.dealstage[].timestamp "
                          "(else hs_date_entered_<stage>)", "stage": "dealstage value (pipeline stage)"})  # fmt: skip
        missing = len(deals) - len(set(history["lead_id"]))
        if missing:
            self.report.warn(f"deals: {missing} deals have no stage history (neither propertiesWithHistory nor "
                             "hs_date_entered_*): no stage changes for them")  # fmt: skip
        return history

    def _close_time(self, history: pd.DataFrame, lead_id: str, deal: pd.Series, state: str) -> str | None:
        if state == "open":
            return None
        mine = history[(history["lead_id"] == lead_id) & history["ts"].notna()]
        closed = each(
            mine["stage_id"], lambda s: bool(self.stages.get(s, {}).get("won") or self.stages.get(s, {}).get("lost"))
        )
        if len(mine) and bool(closed.iloc[-1]):
            run = np.flatnonzero(~closed.to_numpy(bool))
            return mine["ts"].iloc[run[-1] + 1 if len(run) else 0].isoformat()
        return None  # an undated close: the base rules make a loss open and leave a win out

    def _engagements(self, name: str) -> None:
        frame, table = self.frames[name], self.tables[name]
        get = lambda col: frame[col].reset_index(drop=True) if col in frame else pd.Series([None] * len(frame))  # noqa: E731
        keep = np.ones(len(frame), dtype=bool)
        if name == "calls":
            skip = get("hs_call_status").astype("string").isin(CALL_SKIP).fillna(False).to_numpy()
            self.report.skip(name, int(skip.sum()), "call not connected (canceled, failed, queued)")
            keep &= ~skip
        stamp = get("hs_timestamp")
        if name == "meetings":
            skip = get("hs_meeting_outcome").astype("string").isin(MEETING_SKIP).fillna(False).to_numpy()
            self.report.skip(name, int((skip & keep).sum()), "meeting canceled, rescheduled or no-show")
            keep &= ~skip
            end = get("hs_meeting_end_time")
            stamp = end.where(end.notna() & (end.astype("string") != ""), stamp)
        ts, bad = parse_times(stamp, self.spec)
        future = (ts > self.exported_at).to_numpy()
        self.report.skip(name, int((future & keep).sum()), "after the export: not happened yet")
        keep &= ~future
        links = []
        for contacts, deals in zip(get("_assoc_contacts"), get("_assoc_deals"), strict=True):
            contacts = contacts if isinstance(contacts, list) else _csv_ids(contacts)
            deals = deals if isinstance(deals, list) else _csv_ids(deals)
            lead = next((c for c in contacts if c in self.contact_ids), None)
            lead = lead or next((self.deal_lead[d] for d in deals if d in self.deal_lead), None)
            links.append(lead or (contacts[0] if contacts else deals[0] if deals else None))
        body = {
            "calls": "hs_call_body",
            "emails": "hs_email_text",
            "meetings": "hs_meeting_body",
            "notes": "hs_note_body",
        }[name]
        title = {"calls": "hs_call_title", "emails": "hs_email_subject", "meetings": "hs_meeting_title", "notes": ""}[
            name
        ]
        notes = [strip_html(b) or strip_html(t) for b, t in zip(get(body), get(title), strict=True)]
        direction = {"calls": get("hs_call_direction").map({"INBOUND": "inbound", "OUTBOUND": "outbound"}),
                     "emails": get("hs_email_direction").map({"INCOMING_EMAIL": "inbound", "EMAIL": "outbound",
                                                              "FORWARDED_EMAIL": "outbound"})}.get(name)  # fmt: skip
        duration = pd.to_numeric(get("hs_call_duration"), errors="coerce") / 1000 if name == "calls" else None
        if name == "meetings":
            start, _ = parse_times(get("hs_meeting_start_time"), self.spec)
            duration = (ts - start).dt.total_seconds()
        staged = pd.DataFrame({
            "lead_id": links, "ts": iso_or_marker(ts, bad), "actor_id": get("hubspot_owner_id"),
            "channel": {"calls": "电话", "emails": "邮件", "meetings": "会议", "notes": None}[name],
            "direction": direction.astype(object).where(direction.notna(), None) if direction is not None else None,
            "duration_seconds": duration.astype(object).where(duration.notna(), None) if duration is not None else None,
            "note": notes,
        })[keep].reset_index(drop=True)  # fmt: skip
        rows = [r for r, k in zip(table.row_labels, keep, strict=True) if k]
        fields = {"lead_id": "associations (contacts, else deals)", "ts": "hs_timestamp" + (" / hs_meeting_end_time" if name == "meetings" else ""),
                  "actor_id": "hubspot_owner_id", "note": f"{body} (HTML stripped)" + (f" / {title}" if title else "")}  # fmt: skip
        if direction is not None:
            fields["direction"] = "hs_call_direction" if name == "calls" else "hs_email_direction"
        self.staging.add("activities", staged, name, rows, fields)


def import_export(source: Path, mapping: Path | None) -> tuple[ContractResult, ImportReport]:
    if not source.is_dir():
        raise SourceError(f"hubspot: --source must be the directory of the exports, not {source}")
    return _HubSpot(source, Options.load(mapping)).run()
