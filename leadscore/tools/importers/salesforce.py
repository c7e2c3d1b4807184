"""`--from salesforce`: CSV exports (Data Loader or a report export with API field names) of Lead,
Opportunity, OpportunityHistory, Task, Event and optionally User, in one directory.

- A lead's outcome is that of the opportunity it converted into (Lead.ConvertedOpportunityId): won or lost
  when the opportunity is closed (IsClosed / IsWon), at the moment OpportunityHistory shows it entering its
  closed stage. An open opportunity's CloseDate is the *expected* close: never a close time. An
  opportunity no lead converted into is a lead of its own (id = the opportunity Id).
- Stages come from OpportunityHistory only (one row per change of Amount, Probability, CloseDate or stage:
  a row counts when StageName changes); the current StageName is not history. The standard stage picklist
  is mapped by default (STAGES); custom names through stage_map in the mapping file.
- Task.ActivityDate is a date only: a completed task without CompletedDateTime is placed at the end of
  that day (or at LastModifiedDate if that is earlier, since completing a task modifies it), never at an
  invented earlier time of day. Open tasks are plans, not activities; events still to come are left out.
- Calls are tasks with TaskSubtype = Call (or Type = Call); CallType gives the direction.
- Data Loader writes datetimes in UTC ("2024-03-01T09:15:00.000Z"); a datetime without an offset is read in
  the mapping file's timezone (default UTC), a date in date_timezone (default Asia/Shanghai, the org's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import ContractResult
from leadscore.tools.importers.base import (
    Options,
    Staging,
    column,
    custom_lead_fields,
    each,
    finish,
    first_present,
    map_values,
    numbers,
    times,
)
from leadscore.tools.importers.files import SourceError, SourceTable, find_source, read_source
from leadscore.tools.importers.report import ImportReport
from leadscore.tools.importers.values import TimeSpec, is_true, parse_times

STAGES = {
    "Prospecting": "初步接触",
    "Qualification": "需求确认",
    "Needs Analysis": "需求确认",
    "Value Proposition": "方案沟通",
    "Id. Decision Makers": "方案沟通",
    "Perception Analysis": "方案沟通",
    "Proposal/Price Quote": "报价",
    "Negotiation/Review": "合同谈判",
    "Closed Won": "赢单",
    "Closed Lost": "丢单",
}
CHANNELS = {
    "Web": "官网表单",
    "Phone Inquiry": "400电话",
    "Partner Referral": "转介绍",
    "Employee Referral": "转介绍",
    "External Referral": "转介绍",
    "Partner": "转介绍",
    "Trade Show": "展会",
    "Purchased List": "其他",
    "Other": "其他",
}
LOST_LEAD_STATUSES = {"Closed - Not Converted", "Unqualified", "Disqualified"}
LEAD_LEAKS = {
    "Status": "the lead's current status (used only to see undated losses, which stay open)",
    "Rating": "the rep's current rating (Hot/Warm/Cold), updated as the deal goes",
    "IsConverted": "known only once the lead converted (used to find its opportunity)",
    "ConvertedDate": "the conversion date: exists only for converted leads",
    "ConvertedOpportunityId": "exists only for converted leads (used to link the opportunity)",
    "ConvertedAccountId": "exists only for converted leads",
    "ConvertedContactId": "exists only for converted leads (used to link its activities)",
    "LastActivityDate": "stamped at the export, after the outcome",
    "LastModifiedDate": "stamped at the export, after the outcome",
    "SystemModstamp": "stamped at the export, after the outcome",
    "LastViewedDate": "stamped at the export, after the outcome",
    "LastReferencedDate": "stamped at the export, after the outcome",
    "EmailBouncedDate": "stamped when a mail bounced, possibly after the outcome",
    "EmailBouncedReason": "set when a mail bounced, possibly after the outcome",
    "IsUnreadByOwner": "the current state at the export",
}
OPPORTUNITY_LEAKS = {
    "StageName": "the current stage, not the stage history (OpportunityHistory is)",
    "IsClosed": "the outcome itself (used for the outcome only)",
    "IsWon": "the outcome itself (used for the outcome only)",
    "CloseDate": "the expected close date of an open opportunity; used only as a fallback close time of a "
    "closed one without history",
    "Probability": "set by the current stage: 100 once won, 0 once lost",
    "ExpectedRevenue": "Amount x the current Probability",
    "ForecastCategory": "the current forecast category (Closed once won)",
    "ForecastCategoryName": "the current forecast category (Closed once won)",
    "Amount": "the current amount, revised up to the close (kept as the won deal's value only)",
    "FiscalQuarter": "derived from CloseDate",
    "FiscalYear": "derived from CloseDate",
    "Fiscal": "derived from CloseDate",
    "LastStageChangeDate": "stamped at the last stage change (the close, for closed ones)",
    "LastActivityDate": "stamped at the export, after the outcome",
    "LastModifiedDate": "stamped at the export, after the outcome",
    "NextStep": "the current next step, edited up to the close",
    "HasOpenActivity": "the current state at the export",
    "HasOverdueTask": "the current state at the export",
}


def _read(root: Path, name: str, report: ImportReport, required: bool = False) -> SourceTable | None:
    path = find_source(root, name, name + "s")
    if path is None:
        if required:
            raise SourceError(f"salesforce: no {name}.csv in {root} (an export of the {name} object)")
        report.warn(f"no {name} export in the source: its part of the contract stays empty")
        return None
    table = read_source(path, name)
    for note in table.notes:
        report.warn(note)
    report.read(name, len(table))
    deleted = is_true(column(table, "IsDeleted")).to_numpy()
    if deleted.any():
        report.skip(name, int(deleted.sum()), "deleted in Salesforce (IsDeleted = true)")
        table = SourceTable(table.name, table.path, table.frame[~deleted].reset_index(drop=True),
                            [r for r, d in zip(table.row_labels, deleted, strict=True) if not d])  # fmt: skip
    return table


class _Salesforce:
    def __init__(self, root: Path, options: Options) -> None:
        self.report = ImportReport("salesforce", str(root))
        self.staging = Staging(self.report)
        self.options = options
        self.datetime = TimeSpec(options.timezone or "UTC")
        self.date = TimeSpec(options.date_timezone or options.timezone or "Asia/Shanghai", date_only=True)
        self.report.assume(
            f"datetimes without an offset are read as {self.datetime.tz} (Data Loader writes UTC with 'Z'); "
            f"date-only fields (ActivityDate, CloseDate) are days of the org's calendar in {self.date.tz} and "
            "are placed at the last second of the day, never at an invented earlier time"
        )
        self.stage_map = {**STAGES, **options.stage_map}
        self.lead = _read(root, "Lead", self.report)
        self.opportunity = _read(root, "Opportunity", self.report)
        if self.lead is None and self.opportunity is None:
            raise SourceError(f"salesforce: {root} has neither Lead.csv nor Opportunity.csv")
        self.history = _read(root, "OpportunityHistory", self.report)
        self.task = _read(root, "Task", self.report)
        self.event = _read(root, "Event", self.report)
        self.user = _read(root, "User", self.report) if find_source(root, "User", "Users") else None
        if self.user is not None:
            self.report.stats("User").joined_into = "Task, Event (actor_role, with role_map)"
        self.exported_at = self._export_time()
        self.opp_lead: dict[str, str] = {}  # opportunity Id -> lead_id
        self.contact_lead: dict[str, str] = {}  # converted contact Id -> lead_id

    def _export_time(self) -> pd.Timestamp:
        if self.options.exported_at:
            return pd.Timestamp(self.options.exported_at, tz=self.datetime.tz).tz_convert("UTC")
        latest = []
        for table in (self.lead, self.opportunity, self.history, self.task, self.event):
            for name in ("SystemModstamp", "LastModifiedDate", "CreatedDate"):
                if table is not None and name in table.frame:
                    latest.append(parse_times(table.frame[name], self.datetime)[0].max())
        stamps = [t for t in latest if pd.notna(t)]
        exported = max(stamps) if stamps else pd.Timestamp.now(tz="UTC")
        self.report.assume(f"the export was taken at {exported.isoformat()} (its latest system timestamp)")
        return exported

    def run(self) -> tuple[ContractResult, ImportReport]:
        self._leads()
        self._opportunities()
        self._stage_history()
        self._tasks()
        self._events()
        for name, reason in LEAD_LEAKS.items():
            if self.lead is not None and name in self.lead.frame:
                self.report.exclude("Lead", name, reason)
        for name, reason in OPPORTUNITY_LEAKS.items():
            if self.opportunity is not None and name in self.opportunity.frame:
                self.report.exclude("Opportunity", name, reason)
        return finish(self.staging, self.options.keep_despite_guard), self.report

    # -- leads and outcomes
    def _leads(self) -> None:
        lead = self.lead
        if lead is None:
            return
        ids = column(lead, "Id")
        frame = pd.DataFrame(
            {
                "lead_id": ids,
                "created_at": times(lead, "CreatedDate", self.datetime, self.report),
                "channel": map_values(column(lead, "LeadSource"), {**CHANNELS, **self.options.channel_map}),
                "company_name": column(lead, "Company"),
                "industry": column(lead, "Industry"),
                "company_size": numbers(column(lead, "NumberOfEmployees")),
                "province": first_present(lead, "State", "StateCode"),
                "city": column(lead, "City"),
                "phone": first_present(lead, "MobilePhone", "Phone"),
                "email": column(lead, "Email"),
                "owner_id": column(lead, "OwnerId"),
                "form_text": column(lead, "Description"),
                "country": first_present(lead, "Country", "CountryCode"),
                "title": column(lead, "Title"),
                "annual_revenue": numbers(column(lead, "AnnualRevenue")),
            }
        )
        fields = {"lead_id": "Id", "created_at": "CreatedDate", "channel": "LeadSource", "company_name": "Company",
                  "industry": "Industry", "company_size": "NumberOfEmployees", "province": "State / StateCode",
                  "city": "City", "phone": "MobilePhone / Phone", "email": "Email", "owner_id": "OwnerId",
                  "form_text": "Description", "country": "Country / CountryCode", "title": "Title",
                  "annual_revenue": "AnnualRevenue"}  # fmt: skip
        custom, custom_fields = custom_lead_fields(lead, self.options, self.datetime)
        frame = pd.concat([frame.drop(columns=[c for c in custom if c in frame]), custom], axis=1)
        self.staging.add("leads", frame, "Lead", lead.row_labels, {**fields, **custom_fields})
        self.report.warn("Lead.Description is read as the form text: it is the lead's current description; if reps "
                         "edit it after the first contact, leave it out (keep it empty in the export)")  # fmt: skip
        converted = column(lead, "ConvertedOpportunityId").astype("string").str.strip()
        for lead_id, opp in zip(ids, converted, strict=True):
            if isinstance(opp, str) and opp and opp not in self.opp_lead:
                self.opp_lead[opp] = lead_id
        contact = column(lead, "ConvertedContactId").astype("string").str.strip()
        self.contact_lead = {c: i for i, c in zip(ids, contact, strict=True) if isinstance(c, str) and c}
        # Leads not converted into an opportunity: open, unless a lost status says otherwise (undated: open).
        status = column(lead, "Status").astype("string").str.strip()
        lost = {**{s: "lost" for s in LOST_LEAD_STATUSES}, **self.options.status_map}
        outcome = each(status, lambda s: lost.get(s, "open") if isinstance(s, str) else "open")
        no_opp = ~(converted.fillna("") != "").to_numpy()
        rows = [label for label, keep in zip(lead.row_labels, no_opp, strict=True) if keep]
        frame = pd.DataFrame({"lead_id": ids[no_opp].to_numpy(), "status": outcome[no_opp].to_numpy(),
                              "closed_at": None})  # fmt: skip
        self.staging.add("outcomes", frame, "Lead", rows, {"lead_id": "Id", "status": "Status"})
        converted_no_opp = is_true(column(lead, "IsConverted")).to_numpy() & no_opp
        if converted_no_opp.any():
            self.report.warn(f"Lead: {int(converted_no_opp.sum())} leads converted without an opportunity: open")

    def _opportunities(self) -> None:
        opp = self.opportunity
        if opp is None:
            return
        ids = column(opp, "Id").astype("string").str.strip()
        own = ~ids.isin(list(self.opp_lead)).to_numpy()
        # Opportunities no lead converted into are leads of their own.
        for opp_id in ids[own]:
            if isinstance(opp_id, str):
                self.opp_lead.setdefault(opp_id, opp_id)
        lead_ids = each(ids, lambda i: self.opp_lead.get(i, i) if isinstance(i, str) else None)
        if own.any():
            sub = SourceTable("Opportunity", opp.path, opp.frame[own].reset_index(drop=True),
                              [r for r, k in zip(opp.row_labels, own, strict=True) if k])  # fmt: skip
            frame = pd.DataFrame(
                {
                    "lead_id": ids[own].to_numpy(),
                    "created_at": times(sub, "CreatedDate", self.datetime, self.report),
                    "channel": map_values(column(sub, "LeadSource"), {**CHANNELS, **self.options.channel_map}),
                    "campaign": column(sub, "CampaignId"),
                    "owner_id": column(sub, "OwnerId"),
                    "opportunity_type": column(sub, "Type"),
                }
            )
            fields = {"lead_id": "Id", "created_at": "CreatedDate", "channel": "LeadSource", "campaign": "CampaignId",
                      "owner_id": "OwnerId", "opportunity_type": "Type"}  # fmt: skip
            self.staging.add("leads", frame, "Opportunity", sub.row_labels, fields)
            self.report.assume(f"{int(own.sum())} opportunities no lead converted into are leads of their own "
                               "(lead_id = the opportunity Id, created when the opportunity was)")  # fmt: skip
        stage = column(opp, "StageName").astype("string").str.strip()
        closed = (
            is_true(column(opp, "IsClosed"))
            if "IsClosed" in opp.frame
            else stage.map(self.stage_map).isin(["赢单", "丢单"])
        )
        won = is_true(column(opp, "IsWon")) if "IsWon" in opp.frame else stage.map(self.stage_map).eq("赢单")
        status = np.where(closed, np.where(won, "won", "lost"), "open")
        closed_at = self._close_times(ids, status, opp)
        amount = self._amounts(opp, status)
        frame = pd.DataFrame({"lead_id": lead_ids, "status": status, "closed_at": closed_at, "amount_cny": amount})
        fields = {
            "lead_id": "Id (via Lead.ConvertedOpportunityId)",
            "status": "IsClosed / IsWon",
            "closed_at": "OpportunityHistory.CreatedDate of the close (else CloseDate)",
            "amount_cny": "Amount",
        }
        self.staging.add("outcomes", frame, "Opportunity", opp.row_labels, fields)

    def _close_times(self, ids: pd.Series, status: np.ndarray, opp: SourceTable) -> list[str | None]:
        """When each closed opportunity entered its final closed stage, from OpportunityHistory; CloseDate
        (a day, placed at its end) only for a closed one without history. Open ones: none, ever."""
        history_close: dict[str, pd.Timestamp] = {}
        if self.history is not None:
            history = self._history_frame()
            history = history[history["ts"].notna()]  # an unreadable row is reported with the stage changes
            closed_names = {n for n, s in self.stage_map.items() if s in ("赢单", "丢单")}
            for opp_id, rows in history.groupby("opp"):
                is_closed = rows["stage"].isin(closed_names).to_numpy()
                if is_closed.any() and is_closed[-1]:
                    open_before = np.flatnonzero(~is_closed)
                    first_of_last_run = open_before[-1] + 1 if len(open_before) else 0
                    history_close[opp_id] = rows["ts"].iloc[first_of_last_run]
        close_date, _ = parse_times(column(opp, "CloseDate"), self.date)
        out: list[str | None] = []
        fallback = 0
        for opp_id, state, day in zip(ids, status, close_date, strict=True):
            if state == "open":
                out.append(None)
            elif opp_id in history_close:
                out.append(history_close[opp_id].isoformat())
            else:
                fallback += 1
                out.append(day.isoformat() if pd.notna(day) else None)
        if fallback:
            self.report.warn(f"Opportunity: {fallback} closed opportunities have no closing row in "
                             "OpportunityHistory: their CloseDate (a day, placed at its end) is the close time")  # fmt: skip
        return out

    def _amounts(self, opp: SourceTable, status: np.ndarray) -> list[object]:
        rate = self.options.currency_rate
        currency = self.options.currency or "USD"
        if rate is None and currency.upper() != "CNY":
            self.report.assume(f"Opportunity.Amount is in {currency}: amount_cny left empty (set currency_rate)")
            return [None] * len(opp)
        values = numbers(column(opp, "Amount"))
        factor = rate if rate is not None else 1.0
        return [
            v * factor if s == "won" and isinstance(v, float) else None for v, s in zip(values, status, strict=True)
        ]

    def _history_frame(self) -> pd.DataFrame:
        history = self.history
        ts, bad = parse_times(column(history, "CreatedDate"), self.datetime)
        frame = pd.DataFrame(
            {
                "opp": column(history, "OpportunityId").astype("string").str.strip(),
                "stage": column(history, "StageName").astype("string").str.strip(),
                "ts": ts,
                "row": history.row_labels,
                "bad_ts": bad,
            }
        )
        return frame.sort_values(["opp", "ts"], kind="stable")

    def _stage_history(self) -> None:
        if self.history is None:
            if self.opportunity is not None:
                self.report.warn("no OpportunityHistory: no stage history (the current StageName is not history)")
            return
        frame = self._history_frame()
        previous = frame.groupby("opp")["stage"].shift()
        changed = (frame["stage"] != previous) | previous.isna()
        changed &= frame["stage"].notna()
        self.report.skip("OpportunityHistory", int((~changed).sum()), "no stage change (amount, probability or "
                         "close-date edit)")  # fmt: skip
        rows = frame[changed]
        unknown = sorted(set(rows["stage"]) - set(self.stage_map))
        if unknown:
            self.report.warn(f"stage names not in the stage map, kept as they are: {', '.join(unknown)} "
                             "(map them with stage_map in the mapping file)")  # fmt: skip
        ts = [("unparseable" if bad else t.isoformat()) if (bad or pd.notna(t)) else None
              for t, bad in zip(rows["ts"], rows["bad_ts"], strict=True)]  # fmt: skip
        staged = pd.DataFrame(
            {
                "lead_id": each(rows["opp"], lambda o: self.opp_lead.get(o, o) if isinstance(o, str) else None),
                "ts": ts,
                "stage": each(rows["stage"], lambda s: self.stage_map.get(s, s) if isinstance(s, str) else None),
            }
        )
        fields = {"lead_id": "OpportunityId (via Lead.ConvertedOpportunityId)", "ts": "CreatedDate",
                  "stage": "StageName (stage map)"}  # fmt: skip
        self.staging.add("stage_changes", staged, "OpportunityHistory", rows["row"].tolist(), fields)

    # -- activities
    def _link(self, table: SourceTable) -> pd.Series:
        """The lead of each activity: WhoId (a lead, or a contact a lead converted into), else WhatId (an
        opportunity). An id that leads nowhere is kept, so the contract reports it as an orphan."""
        who = column(table, "WhoId").astype("string").str.strip()
        what = column(table, "WhatId").astype("string").str.strip()
        leads = set(column(self.lead, "Id")) if self.lead is not None else set()

        def one(w, x):
            if isinstance(w, str) and w:
                if w in leads:
                    return w
                if w in self.contact_lead:
                    return self.contact_lead[w]
            if isinstance(x, str) and x and x in self.opp_lead:
                return self.opp_lead[x]
            return w if isinstance(w, str) and w else x if isinstance(x, str) and x else None

        return pd.Series([one(w, x) for w, x in zip(who, what, strict=True)], dtype=object)

    def _actor_roles(self, owners: pd.Series) -> pd.Series:
        if self.user is None or not self.options.role_map:
            return pd.Series([None] * len(owners), dtype=object)
        users = self.user.frame.set_index("Id") if "Id" in self.user.frame else pd.DataFrame()
        role = pd.Series([None] * len(users), index=users.index, dtype=object)
        for name in ("Department", "Title"):
            if name in users:
                role = role.where(role.notna(), users[name].map(self.options.role_map))
        return owners.map(role).astype(object)

    def _activity_frame(self, sub: SourceTable, ts: pd.Series, bad: np.ndarray, **columns: object) -> pd.DataFrame:
        """A Task's or an Event's activities: what both share (lead, time, actor, note) and their own columns."""
        owners = column(sub, "OwnerId")
        times = [
            ("unparseable" if b else (t.isoformat() if pd.notna(t) else None)) for t, b in zip(ts, bad, strict=True)
        ]
        shared = {"lead_id": self._link(sub), "ts": times, "actor_id": owners, "actor_role": self._actor_roles(owners)}
        return pd.DataFrame({**shared, **columns, "note": first_present(sub, "Description", "Subject")})

    def _tasks(self) -> None:
        task = self.task
        if task is None:
            return
        status = column(task, "Status").astype("string").str.strip()
        done = is_true(column(task, "IsClosed")) if "IsClosed" in task.frame else status.eq("Completed").fillna(False)
        done = done.to_numpy()
        self.report.skip("Task", int((~done).sum()), "open task: a plan, not an activity that happened")
        sub = _rows(task, done)
        completed, bad_completed = parse_times(column(sub, "CompletedDateTime"), self.datetime)
        due_end, bad_due = parse_times(column(sub, "ActivityDate"), self.date)
        modified, _ = parse_times(column(sub, "LastModifiedDate"), self.datetime)
        # No time of day is invented: the day's end, or the last modification if it came earlier (completing
        # a task modifies it, so the task was done by then).
        by_day = due_end.where(~(modified < due_end), modified)
        ts = completed.where(completed.notna(), by_day).where(lambda s: s.notna(), modified)
        bad = (bad_completed & completed.isna().to_numpy()) | (bad_due & ts.isna().to_numpy())
        self.report.assume("Task: the time is CompletedDateTime; without it, ActivityDate (a date) at the end of "
                           "that day, or LastModifiedDate when earlier; without both, LastModifiedDate")  # fmt: skip
        subtype = first_present(sub, "TaskSubtype", "Type").astype("string").str.strip()
        channel = subtype.map({"Call": "电话", "Email": "邮件", "ListEmail": "邮件", "Meeting": "会议",
                               "LinkedIn": "LinkedIn", "Cadence": None, "Task": None, "Other": None})  # fmt: skip
        direction = (
            column(sub, "CallType").astype("string").str.strip().map({"Inbound": "inbound", "Outbound": "outbound"})
        )
        frame = self._activity_frame(
            sub,
            ts,
            bad,
            channel=channel.astype(object).where(channel.notna(), None),
            direction=direction.astype(object).where(direction.notna(), None),
            duration_seconds=numbers(column(sub, "CallDurationInSeconds")),
        )
        fields = {
            "lead_id": "WhoId / WhatId",
            "ts": "CompletedDateTime / ActivityDate / LastModifiedDate",
            "actor_id": "OwnerId",
            "actor_role": "OwnerId -> User (role_map)",
            "channel": "TaskSubtype / Type",
            "direction": "CallType",
            "duration_seconds": "CallDurationInSeconds",
            "note": "Description / Subject",
        }
        self.staging.add("activities", frame, "Task", sub.row_labels, fields)

    def _events(self) -> None:
        event = self.event
        if event is None:
            return
        start, bad_start = parse_times(first_present(event, "StartDateTime", "ActivityDateTime"), self.datetime)
        end, _ = parse_times(column(event, "EndDateTime"), self.datetime)
        minutes = each(pd.Series(numbers(column(event, "DurationInMinutes")), dtype=object),
            lambda v: v if isinstance(v, float) else np.nan).astype(float)  # fmt: skip
        all_day = is_true(column(event, "IsAllDayEvent")).to_numpy()
        day_end, _ = parse_times(first_present(event, "EndDateTime", "ActivityDate"), self.date)
        # A meeting is known once it is over: its end (start + duration), the day's end for all-day events.
        ts = end.where(end.notna(), start + pd.to_timedelta(minutes.fillna(0), unit="min"))
        ts = ts.where(~all_day, day_end)
        future = (ts > self.exported_at).to_numpy()
        self.report.skip("Event", int(future.sum()), "scheduled after the export: not held yet")
        keep = ~future
        sub = _rows(event, keep)
        ts, bad = ts[keep].reset_index(drop=True), bad_start[keep]
        kind = column(sub, "Type").astype("string").str.strip().map({"Call": "电话", "Email": "邮件", "Demo": "演示",
                                                                   "Visit": "拜访"})  # fmt: skip
        frame = self._activity_frame(
            sub,
            ts,
            bad,
            channel=kind.astype(object).where(kind.notna(), "会议"),
            duration_seconds=(minutes[keep].reset_index(drop=True) * 60)
            .where(lambda s: s.notna(), None)
            .astype(object),
        )
        fields = {"lead_id": "WhoId / WhatId", "ts": "EndDateTime (else StartDateTime + DurationInMinutes)",
                  "actor_id": "OwnerId", "actor_role": "OwnerId -> User (role_map)", "channel": "Type (default 会议)",
                  "duration_seconds": "DurationInMinutes", "note": "Description / Subject"}  # fmt: skip
        self.staging.add("activities", frame, "Event", sub.row_labels, fields)


def _rows(table: SourceTable, keep: np.ndarray) -> SourceTable:
    """The rows of `table` that `keep` marks, with their source row labels (for the import report)."""
    labels = [r for r, k in zip(table.row_labels, keep, strict=True) if k]
    return SourceTable(table.name, table.path, table.frame[keep].reset_index(drop=True), labels)


def import_export(source: Path, mapping: Path | None) -> tuple[ContractResult, ImportReport]:
    if not source.is_dir():
        raise SourceError(f"salesforce: --source must be the directory of the CSV exports, not {source}")
    return _Salesforce(source, Options.load(mapping)).run()
