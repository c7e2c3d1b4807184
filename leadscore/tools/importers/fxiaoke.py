"""`--from fxiaoke` (纷享销客): LeadsObj (销售线索), NewOpportunityObj (商机2.0) and ActiveRecordObj (销售记录)
as the OpenAPI returns them (`POST /cgi/crm/v2/data/query`: `{"errorCode": 0, "data": {"dataList": [...]}}`,
one file per object, a page or a list of pages), or as CSV with the same field API names.

- Times are epoch milliseconds (create_time, stg_changed_time, close_date ...); absolute, no zone needed.
- A lead's outcome is its opportunity's (LeadsObj.new_opportunity_id, or NewOpportunityObj.leads_id):
  sales_status 赢单 / 输单 (codes 2 / 3; 4 无效 counts as lost) at stg_changed_time, when the opportunity
  entered its final stage. close_date (预计结单日期) is an expected date: never a close time.
- The opportunity keeps only its current stage and when it entered it (stg_changed_time): that one stage
  change is imported; earlier stages are not in these objects (export the stage-change log to get them).
- A lead without an opportunity whose status is 无效 / 已关闭 is an undated loss: open (censored).
- Sales records are tied to leads through related_object_data (LeadsObj, else NewOpportunityObj).
- Voided records (life_status invalid, is_deleted) are left out. Select fields may come as option codes:
  the `__r` label is used when present, else the value through the mapping file's maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
)
from leadscore.tools.importers.files import SourceError, SourceTable, find_source, read_source
from leadscore.tools.importers.report import ImportReport
from leadscore.tools.importers.values import TimeSpec, is_true, iso_or_marker, parse_times, strip_html

STAGES = {"验证客户": "初步接触", "需求确定": "需求确认", "方案/报价": "报价", "谈判审核": "合同谈判", "赢单": "赢单",
          "输单": "丢单", "初步接洽": "初步接触", "需求确认": "需求确认", "方案制定": "方案沟通", "商务谈判": "合同谈判"}  # fmt: skip
SALES_STATUS = {"1": "open", "2": "won", "3": "lost", "4": "lost", "进行中": "open", "赢单": "won", "输单": "lost",
                "无效": "lost"}  # fmt: skip
LEAD_LOST = {"无效": "lost", "已关闭": "lost", "关闭": "lost", "closed": "lost", "invalid": "lost"}
CHANNELS = {"官网": "官网表单", "官网表单": "官网表单", "网站": "官网表单", "百度": "百度", "百度推广": "百度", "抖音": "抖音",
            "小红书": "小红书", "企业微信": "企业微信", "展会": "展会", "400电话": "400电话", "电话咨询": "400电话",
            "转介绍": "转介绍", "客户介绍": "转介绍", "短信": "短信", "其他": "其他"}  # fmt: skip
INTERACTIONS = {"电话": "电话", "微信": "微信", "邮件": "邮件", "拜访": "拜访", "上门拜访": "拜访", "演示": "演示",
                "会议": "会议", "在线会议": "会议", "短信": "短信"}  # fmt: skip
LEAD_LEAKS = {
    "leads_status": "the current status (used only to see undated losses, which stay open)",
    "biz_status": "the current processing status",
    "close_reason": "why the lead was closed: exists only for lost leads",
    "back_reason": "set when the lead was returned to the pool, during the deal",
    "completed_result": "the current processing result",
    "transform_time": "the conversion time: exists only for converted leads",
    "new_opportunity_id": "exists only for converted leads (used to link the opportunity)",
    "opportunity_id": "exists only for converted leads",
    "account_id": "exists only for converted leads",
    "contact_id": "exists only for converted leads",
    "last_follow_time": "stamped at the last follow-up, up to the export",
    "last_follower": "the last follower, up to the export",
    "owner_change_time": "stamped when the owner changed, possibly after the outcome",
    "is_overtime": "the current state at the export",
    "last_modified_time": "stamped at the export, after the outcome",
}
OPPORTUNITY_LEAKS = {
    "sales_status": "the outcome itself (used for the outcome only)",
    "sales_stage": "the current stage, not the stage history",
    "close_date": "the expected close date (预计结单日期); never a close time",
    "probability": "the current win probability, set by the stage",
    "cost_time": "the deal's duration: exists only for won deals",
    "amount": "the current amount, revised up to the close (kept as the won deal's value only)",
    "last_followed_time": "stamped at the last follow-up, up to the export",
}


def _first(value: Any) -> Any:
    """owner / created_by come as a list of employee ids (["1000"])."""
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None or (isinstance(value, float) and value != value) or value == "" else str(value)


def _label(table: SourceTable, name: str) -> pd.Series:
    """A select or lookup field: its `__r` label when the export has it, else the value itself."""
    raw = column(table, name)
    if f"{name}__r" in table.frame:
        label = each(column(table, f"{name}__r"), lambda v: v.get("name") if isinstance(v, dict) else v)
        return label.where(label.notna() & (label.astype("string") != ""), raw)
    return raw


def _related(value: Any) -> list[tuple[str, str]]:
    """related_object_data [{describe_api_name, id}] or related_object {api name: [ids]} -> (api, id) pairs."""
    if isinstance(value, list):
        return [
            (str(v.get("describe_api_name") or v.get("api_name")), str(v.get("id")))
            for v in value
            if isinstance(v, dict)
        ]
    if isinstance(value, dict):
        return [(str(k), str(i)) for k, ids in value.items() for i in (ids if isinstance(ids, list) else [ids])]
    return []


class _Fxiaoke:
    def __init__(self, root: Path, options: Options) -> None:
        self.report = ImportReport("fxiaoke", str(root))
        self.staging = Staging(self.report)
        self.options = options
        self.spec = TimeSpec(options.timezone or "Asia/Shanghai", epoch_ms=True)
        self.report.assume("times are epoch milliseconds (absolute); any written as text without an offset are read "
                           f"as {self.spec.tz}")  # fmt: skip
        self.leads = self._read(root, "LeadsObj", required=True)
        self.opps = self._read(root, "NewOpportunityObj")
        self.records = self._read(root, "ActiveRecordObj")
        self.opp_lead: dict[str, str] = {}

    def _read(self, root: Path, name: str, required: bool = False) -> SourceTable | None:
        path = find_source(root, name)
        if path is None:
            if required:
                raise SourceError(f"fxiaoke: no {name}.json|csv in {root} (the data/query answers for {name})")
            self.report.warn(f"no {name} export in the source: its part of the contract stays empty")
            return None
        table = read_source(path, name)
        self.report.read(name, len(table))
        void = (column(table, "life_status").astype("string").eq("invalid").fillna(False)
                | is_true(column(table, "is_deleted"))).to_numpy()  # fmt: skip
        self.report.skip(name, int(void.sum()), "voided (life_status invalid) or deleted")
        return SourceTable(name, table.path, table.frame[~void].reset_index(drop=True),
                           [r for r, v in zip(table.row_labels, void, strict=True) if not v])  # fmt: skip

    def run(self) -> tuple[ContractResult, ImportReport]:
        self._leads()
        self._opportunities()
        self._records()
        for table, leaks in (("LeadsObj", LEAD_LEAKS), ("NewOpportunityObj", OPPORTUNITY_LEAKS)):
            source = self.leads if table == "LeadsObj" else self.opps
            for name, reason in leaks.items():
                if source is not None and name in source.frame:
                    self.report.exclude(table, name, reason)
        return finish(self.staging, self.options.keep_despite_guard), self.report

    def _times(self, table: SourceTable, name: str) -> list[str | None]:
        parsed, bad = parse_times(column(table, name), self.spec)
        self.report.assume(f"{table.name}.{name}: {self.spec.describe()}")
        return iso_or_marker(parsed, bad)

    def _leads(self) -> None:
        leads = self.leads
        ids = each(column(leads, "_id"), _first)
        frame = pd.DataFrame({
            "lead_id": ids,
            "created_at": self._times(leads, "create_time"),
            "channel": map_values(_label(leads, "source"), {**CHANNELS, **self.options.channel_map}),
            "campaign": _label(leads, "marketing_event_id"),
            "company_name": column(leads, "company"),
            "industry": _label(leads, "industry"),
            "province": _label(leads, "province"),
            "city": _label(leads, "city"),
            "phone": first_present(leads, "mobile", "tel"),
            "email": column(leads, "email"),
            "owner_id": each(column(leads, "owner"), _first),
            "assigned_at": self._times(leads, "assigned_time"),
            "form_text": each(column(leads, "remark"), strip_html),
            "job_title": column(leads, "job_title"),
            "record_type": column(leads, "record_type"),
        })  # fmt: skip
        fields = {"lead_id": "_id", "created_at": "create_time", "channel": "source", "campaign": "marketing_event_id",
                  "company_name": "company", "industry": "industry", "province": "province", "city": "city",
                  "phone": "mobile / tel", "email": "email", "owner_id": "owner", "assigned_at": "assigned_time",
                  "form_text": "remark", "job_title": "job_title", "record_type": "record_type"}  # fmt: skip
        custom, custom_fields = custom_lead_fields(leads, self.options, self.spec)
        frame = pd.concat([frame.drop(columns=[c for c in custom if c in frame]), custom], axis=1)
        self.staging.add("leads", frame, "LeadsObj", leads.row_labels, {**fields, **custom_fields})
        for lead_id, opp in zip(ids, each(column(leads, "new_opportunity_id"), _first), strict=True):
            if opp and lead_id:
                self.opp_lead.setdefault(opp, lead_id)
        if self.opps is not None and "leads_id" in self.opps.frame:
            for opp, lead_id in zip(each(column(self.opps, "_id"), _first), each(column(self.opps, "leads_id"), _first),
                                    strict=True):  # fmt: skip
                if opp and lead_id:
                    self.opp_lead.setdefault(opp, lead_id)
        status_map = {**LEAD_LOST, **self.options.status_map}
        status = each(
            _label(leads, "leads_status"), lambda s: status_map.get(str(s), "open") if s is not None else "open"
        )
        no_opp = ~ids.isin(set(self.opp_lead.values())).to_numpy()
        outcomes = pd.DataFrame({"lead_id": ids, "status": status, "closed_at": None})[no_opp].reset_index(drop=True)
        self.staging.add("outcomes", outcomes, "LeadsObj", [r for r, k in zip(leads.row_labels, no_opp, strict=True) if k],
                         {"lead_id": "_id", "status": "leads_status"})  # fmt: skip

    def _opportunities(self) -> None:
        opps = self.opps
        if opps is None:
            return
        ids = each(column(opps, "_id"), _first)
        orphan = ~ids.isin(list(self.opp_lead)).to_numpy()
        if orphan.any():  # an opportunity no lead converted into is a lead of its own
            sub = SourceTable("NewOpportunityObj", opps.path, opps.frame[orphan].reset_index(drop=True),
                              [r for r, o in zip(opps.row_labels, orphan, strict=True) if o])  # fmt: skip
            frame = pd.DataFrame({"lead_id": ids[orphan].to_numpy(), "created_at": self._times(sub, "create_time"),
                                  "owner_id": each(column(sub, "owner"), _first)})  # fmt: skip
            self.staging.add("leads", frame, "NewOpportunityObj", sub.row_labels,
                             {"lead_id": "_id", "created_at": "create_time", "owner_id": "owner"})  # fmt: skip
            for opp in ids[orphan]:
                self.opp_lead[opp] = opp
        lead_ids = each(ids, lambda o: self.opp_lead.get(o, o))
        status_map = {**SALES_STATUS, **self.options.status_map}
        status = each(column(opps, "sales_status"), lambda s: status_map.get(str(s).strip()) if s is not None else None)
        status = status.where(
            status.notna(), each(_label(opps, "sales_status"), lambda s: status_map.get(str(s), "open"))
        )
        stage_time, bad = parse_times(column(opps, "stg_changed_time"), self.spec)
        closed_at = [t.isoformat() if s in ("won", "lost") and pd.notna(t) else None
                     for t, s in zip(stage_time, status, strict=True)]  # fmt: skip
        amount = numbers(column(opps, "amount"))
        rate = self.options.currency_rate or (1.0 if (self.options.currency or "CNY").upper() == "CNY" else None)
        outcomes = pd.DataFrame({"lead_id": lead_ids, "status": status, "closed_at": closed_at,
                                 "amount_cny": [a * rate if rate and s == "won" and isinstance(a, float) else None
                                                for a, s in zip(amount, status, strict=True)]})  # fmt: skip
        self.staging.add("outcomes", outcomes, "NewOpportunityObj", opps.row_labels,
                         {"lead_id": "_id (via LeadsObj.new_opportunity_id / leads_id)", "status": "sales_status",
                          "closed_at": "stg_changed_time (of the final stage)", "amount_cny": "amount (won)"})  # fmt: skip
        stage_map = {**STAGES, **self.options.stage_map}
        stage = each(_label(opps, "sales_stage"), lambda s: stage_map.get(str(s), s) if s is not None else None)
        unknown = sorted({str(s) for s in stage.dropna() if s not in set(stage_map.values())})
        if unknown:
            self.report.warn(f"sales stages kept by their name: {', '.join(unknown)} (map them with stage_map)")
        stages = pd.DataFrame({"lead_id": lead_ids, "ts": iso_or_marker(stage_time, bad), "stage": stage})
        self.staging.add(
            "stage_changes",
            stages,
            "NewOpportunityObj",
            opps.row_labels,
            {"lead_id": "_id (via the lead)", "ts": "stg_changed_time", "stage": "sales_stage (__r label)"},
        )
        self.report.assume("NewOpportunityObj keeps its current stage and when it was entered (stg_changed_time): "
                           "one stage change per opportunity; earlier stages are not in the export")  # fmt: skip

    def _records(self) -> None:
        records = self.records
        if records is None:
            return
        related = (
            column(records, "related_object_data")
            if "related_object_data" in records.frame
            else column(records, "related_object")
        )
        leads = set(each(column(self.leads, "_id"), _first))

        def link(value: Any) -> str | None:
            pairs = _related(value)
            for api, ident in pairs:
                if api == "LeadsObj":
                    return ident
            for api, ident in pairs:
                if api == "NewOpportunityObj" and ident in self.opp_lead:
                    return self.opp_lead[ident]
            return pairs[0][1] if pairs else None

        lead_ids = each(related, link)
        on_account = each(lead_ids, lambda i: i is not None and i not in leads and i not in self.opp_lead).to_numpy()
        kind = each(_label(records, "interactive_types"), lambda v: v[0] if isinstance(v, list) and v else v)
        frame = pd.DataFrame({
            "lead_id": lead_ids,
            "ts": self._times(records, "create_time"),
            "actor_id": each(first_present(records, "owner", "created_by"), _first),
            "channel": map_values(kind, INTERACTIONS),
            "note": each(column(records, "active_record_content"), strip_html),
        })  # fmt: skip
        self.staging.add("activities", frame, "ActiveRecordObj", records.row_labels,
                         {"lead_id": "related_object_data (LeadsObj, else NewOpportunityObj)", "ts": "create_time",
                          "actor_id": "owner / created_by", "channel": "interactive_types",
                          "note": "active_record_content"})  # fmt: skip
        if on_account.any():
            self.report.warn(f"ActiveRecordObj: {int(on_account.sum())} records are tied to no lead or opportunity "
                             "of the export (e.g. only to an account): refused as orphans")  # fmt: skip


def import_export(source: Path, mapping: Path | None) -> tuple[ContractResult, ImportReport]:
    if not source.is_dir():
        raise SourceError(f"fxiaoke: --source must be the directory of the object exports, not {source}")
    return _Fxiaoke(source, Options.load(mapping)).run()
