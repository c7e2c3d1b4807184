"""`--from odoo`: crm.lead, crm.stage, mail.tracking.value and mail.message, as `search_read` returns them
over XML-RPC / JSON-RPC (JSON lists of records, many2one fields as [id, "name"]) or as import-compatible
CSV exports (many2one as `field/id` external ids, `field/.id` database ids or `field` display names).

- Odoo stores datetimes in UTC without an offset (search_read and exports alike): read as UTC unless the
  mapping file says otherwise. date_deadline ("Expected Closing") is an expected date: never a close time.
- Outcome: won = the lead's stage is_won (crm.stage), at date_closed; lost = archived (active = False) with
  a lost reason (or probability 0, Odoo 16+), at date_closed; lost without date_closed is open (censored);
  archived without being lost is neither: left out.
- Stage history = mail.tracking.value rows on the stage field (field `stage_id` up to Odoo 16, field_id
  "Stage" from 17) joined to their mail.message (model crm.lead, res_id = the lead, date = when). The
  current stage_id alone is not history.
- Notes and e-mails = mail.message rows of type comment / email with a body (HTML stripped); system
  notifications are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
)
from leadscore.tools.importers.files import SourceError, SourceTable, find_source, read_source
from leadscore.tools.importers.report import ImportReport
from leadscore.tools.importers.values import TimeSpec, is_true, iso_or_marker, parse_times, strip_html

STAGES = {"New": "新线索", "Qualified": "需求确认", "Proposition": "报价", "Negotiation": "合同谈判", "Won": "赢单",
          "新": "新线索", "新建": "新线索", "已合格": "需求确认", "合格": "需求确认", "提案": "报价", "方案": "方案沟通",
          "谈判": "合同谈判", "赢得": "赢单", "已赢得": "赢单"}  # fmt: skip
STAGE_FIELD_LABELS = {"stage", "阶段", "stage (crm.lead)", "stage_id"}
LEAD_LEAKS = {
    "stage_id": "the current stage, not the stage history (mail.tracking.value is)",
    "probability": "the current probability (100 once won, 0 once lost)",
    "automated_probability": "Odoo's own score on the current state (100 / 0 once closed)",
    "active": "archived once lost (used for the outcome only)",
    "lost_reason_id": "exists only for lost leads (used for the outcome only)",
    "date_closed": "the close time itself (used for the outcome only)",
    "won_status": "the outcome itself",
    "date_deadline": "the expected closing date of an open lead; never a close time",
    "expected_revenue": "the current expected revenue, revised up to the close",
    "prorated_revenue": "expected revenue x the current probability",
    "date_last_stage_update": "stamped at the last stage change (the close, for closed leads)",
    "day_close": "days to close: exists only for closed leads",
    "date_conversion": "stamped when the lead became an opportunity, during the deal",
    "date_action_last": "stamped at the last action, up to the export",
    "priority": "the current priority (stars), raised as the deal goes",
    "kanban_state": "the current state at the export",
    "tag_ids": "the current tags, edited as the deal goes",
}


def _m2o(value: Any) -> tuple[Any, Any]:
    """A many2one as (id, display name): [7, "Won"] from search_read; False / None when empty."""
    if isinstance(value, list | tuple):
        return (value[0] if value else None), (value[1] if len(value) > 1 else None)
    if value is None or value is False or (isinstance(value, float) and value != value) or value == "":
        return None, None
    return None, value


def _ids(table: SourceTable, name: str) -> pd.Series:
    """The database id of a many2one column: `name` ([id, label]) or `name/.id` (CSV)."""
    if f"{name}/.id" in table.frame:
        return pd.to_numeric(table.frame[f"{name}/.id"], errors="coerce").reset_index(drop=True)
    return each(column(table, name), lambda v: _m2o(v)[0])


def _labels(table: SourceTable, name: str) -> pd.Series:
    """The display name of a many2one column: `name` ([id, label] or its label) or `name/id` (CSV)."""
    if name in table.frame:
        return each(column(table, name), lambda v: _m2o(v)[1])
    return column(table, f"{name}/id")


def _ref(table: SourceTable, name: str) -> pd.Series:
    """A many2one to people (user_id, author_id) as its id when the export has it, else its display name."""
    ids, labels = _ids(table, name), _labels(table, name)
    return pd.Series(
        [str(int(i)) if pd.notna(i) else label for i, label in zip(ids, labels, strict=True)], dtype=object
    )


def _key(value: Any) -> str | None:
    """A record's id as text: 7, 7.0 and "7" alike; an external id ("crm.stage_lead4") as it is."""
    if value is None or value is False or value == "" or (isinstance(value, float) and value != value):
        return None
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return str(value).strip()


def _keys(table: SourceTable, name: str) -> pd.Series:
    """The id of a many2one as text, from `name` ([id, label]), `name/.id` or `name/id` (external id)."""
    for suffix in ("/.id", "/id"):
        if f"{name}{suffix}" in table.frame:
            return each(column(table, f"{name}{suffix}"), _key)
    return each(column(table, name), lambda v: _key(_m2o(v)[0]))


def _text_of(value: Any) -> Any:
    """Odoo writes an empty char / html field as False in JSON."""
    return None if value is False else value


class _Odoo:
    def __init__(self, root: Path, options: Options) -> None:
        self.report = ImportReport("odoo", str(root))
        self.staging = Staging(self.report)
        self.options = options
        self.spec = TimeSpec(options.timezone or "UTC")
        self.report.assume(f"Odoo datetimes are stored and exported in UTC without an offset: read as {self.spec.tz}")
        self.lead = self._read(root, "crm.lead", required=True)
        self.stage = self._read(root, "crm.stage")
        self.message = self._read(root, "mail.message")
        self.tracking = self._read(root, "mail.tracking.value")
        self.stages = self._stage_table()

    def _read(self, root: Path, name: str, required: bool = False) -> SourceTable | None:
        path = find_source(root, name, name.replace(".", "_"))
        if path is None:
            if required:
                raise SourceError(f"odoo: no {name}.json|csv in {root} (search_read of {name}, or its export)")
            self.report.warn(f"no {name} export in the source: its part of the contract stays empty")
            return None
        table = read_source(path, name)
        for note in table.notes:
            self.report.warn(note)
        self.report.read(name, len(table))
        return table

    def _stage_table(self) -> pd.DataFrame:
        """id, name, sequence, is_won and the contract stage of each crm.stage."""
        if self.stage is None:
            self.report.warn("no crm.stage: won is read from probability = 100 and stages by their names")
            return pd.DataFrame(columns=["id", "key", "name", "sequence", "is_won", "stage"])
        self.report.stats("crm.stage").joined_into = "crm.lead, mail.tracking.value"
        frame = pd.DataFrame({"id": pd.to_numeric(column(self.stage, "id"), errors="coerce"),
                              "key": each(column(self.stage, "id"), _key),
                              "name": each(column(self.stage, "name"), _text_of),
                              "sequence": pd.to_numeric(column(self.stage, "sequence"), errors="coerce"),
                              "is_won": is_true(column(self.stage, "is_won"))})  # fmt: skip
        stage_map = {**STAGES, **self.options.stage_map}
        frame["stage"] = [("赢单" if won else stage_map.get(str(name), stage_map.get(str(i), name)))
                          for i, name, won in zip(frame["id"], frame["name"], frame["is_won"], strict=True)]  # fmt: skip
        unknown = [n for n, s in zip(frame["name"], frame["stage"], strict=True) if n == s]
        if unknown:
            self.report.warn(f"stages kept by their name: {', '.join(map(str, unknown))} (map them with stage_map)")
        return frame

    def run(self) -> tuple[ContractResult, ImportReport]:
        self._leads()
        self._history()
        self._messages()
        for name, reason in LEAD_LEAKS.items():
            if name in self.lead.frame or f"{name}/id" in self.lead.frame:
                self.report.exclude("crm.lead", name, reason)
        return finish(self.staging, self.options.keep_despite_guard), self.report

    def _leads(self) -> None:
        lead = self.lead
        active = is_true(column(lead, "active")) if "active" in lead.frame else pd.Series(True, index=range(len(lead)))
        stage_key, stage_name = _keys(lead, "stage_id"), _labels(lead, "stage_id")
        won_keys = set(self.stages.loc[self.stages["is_won"].astype(bool), "key"])
        won_names = set(self.stages.loc[self.stages["is_won"].astype(bool), "name"]) or {"Won"}
        probability = pd.to_numeric(column(lead, "probability"), errors="coerce")
        won = stage_key.isin(won_keys) | stage_name.isin(won_names) | (self.stage is None and probability.eq(100))
        lost_reason = _labels(lead, "lost_reason_id").notna()
        lost = ~active & ~won & (lost_reason | probability.eq(0))
        archived = (~active & ~won & ~lost).to_numpy()
        self.report.skip("crm.lead", int(archived.sum()), "archived without being won or lost")
        keep = ~archived
        sub = SourceTable("crm.lead", lead.path, lead.frame[keep].reset_index(drop=True),
                          [r for r, k in zip(lead.row_labels, keep, strict=True) if k])  # fmt: skip
        ids = each(column(sub, "id"), lambda v: None if v is None else str(v))
        created, bad = parse_times(column(sub, "create_date"), self.spec)
        description = each(column(sub, "description"), lambda v: strip_html(_text_of(v)))
        phone = first_present(SourceTable("crm.lead", sub.path, sub.frame.replace({False: None}), sub.row_labels),
                              "mobile", "phone")  # fmt: skip
        leads = pd.DataFrame({
            "lead_id": ids,
            "created_at": iso_or_marker(created, bad),
            "channel": map_values(_labels(sub, "source_id"), self.options.channel_map),
            "campaign": _labels(sub, "campaign_id"),
            "province": each(_labels(sub, "state_id"), lambda s: s.rsplit(" (", 1)[0] if isinstance(s, str) else s),
            "city": column(sub, "city").map(_text_of),
            "company_name": column(sub, "partner_name").map(_text_of),
            "email": column(sub, "email_from").map(_text_of),
            "phone": phone,
            "owner_id": _ref(sub, "user_id"),
            "assigned_at": iso_or_marker(*parse_times(column(sub, "date_open").map(_text_of), self.spec)),
            "form_text": description,
            "team": _labels(sub, "team_id"),
            "country": _labels(sub, "country_id"),
            "medium": _labels(sub, "medium_id"),
            "lead_type": column(sub, "type").map(_text_of),
        })  # fmt: skip
        fields = {"lead_id": "id", "created_at": "create_date", "channel": "source_id", "campaign": "campaign_id",
                  "province": "state_id", "city": "city", "company_name": "partner_name", "email": "email_from",
                  "phone": "mobile / phone", "owner_id": "user_id", "assigned_at": "date_open",
                  "form_text": "description (HTML stripped)", "team": "team_id", "country": "country_id",
                  "medium": "medium_id", "lead_type": "type"}  # fmt: skip
        custom, custom_fields = custom_lead_fields(SourceTable("crm.lead", sub.path, sub.frame.replace({False: None}),
                                                               sub.row_labels), self.options, self.spec)  # fmt: skip
        leads = pd.concat([leads.drop(columns=[c for c in custom if c in leads]), custom], axis=1)
        self.staging.add("leads", leads, "crm.lead", sub.row_labels, {**fields, **custom_fields})
        self.report.warn("crm.lead.description (Notes) is read as the form text: it is the lead's current notes; if "
                         "reps write in it during the deal, leave it out")  # fmt: skip
        status = np.where(won[keep], "won", np.where(lost[keep], "lost", "open"))
        closed_at = iso_or_marker(*parse_times(each(column(sub, "date_closed"), _text_of), self.spec))
        revenue = numbers(each(column(sub, "expected_revenue"), _text_of))
        rate = self.options.currency_rate or (1.0 if (self.options.currency or "CNY").upper() == "CNY" else None)
        outcomes = pd.DataFrame({
            "lead_id": ids, "status": status, "closed_at": closed_at,
            "amount_cny": [v * rate if rate and s == "won" and isinstance(v, float) else None
                           for v, s in zip(revenue, status, strict=True)],
        })  # fmt: skip
        self.staging.add("outcomes", outcomes, "crm.lead", sub.row_labels,
                         {"lead_id": "id", "status": "stage_id.is_won / active + lost_reason_id",
                          "closed_at": "date_closed", "amount_cny": "expected_revenue (won)"})  # fmt: skip

    def _message_index(self) -> pd.DataFrame:
        message = self.message
        frame = pd.DataFrame({
            "id": pd.to_numeric(column(message, "id"), errors="coerce"),
            "model": each(column(message, "model"), _text_of),
            "res_id": each(column(message, "res_id"), lambda v: None if v in (None, False, "") else str(v)),
            "raw_date": each(column(message, "date"), _text_of),
            "row": message.row_labels,
        })  # fmt: skip
        frame["ts"], frame["bad"] = parse_times(frame["raw_date"], self.spec)
        return frame

    def _history(self) -> None:
        if self.tracking is None or self.message is None:
            if self.tracking is not None:
                self.report.warn("mail.tracking.value without mail.message: stage changes cannot be tied to leads")
            return
        tracking = self.tracking
        field_name = (
            each(column(tracking, "field"), _text_of) if "field" in tracking.frame else _labels(tracking, "field_id")
        )
        if "field_id/name" in tracking.frame:
            field_name = column(tracking, "field_id/name")
        is_stage = field_name.astype("string").str.strip().str.lower().isin(STAGE_FIELD_LABELS).fillna(False).to_numpy()
        labels = {str(k).lower() for k in self.options.extra.get("stage_field_labels", [])}
        if labels:
            is_stage |= field_name.astype("string").str.lower().isin(labels).fillna(False).to_numpy()
        self.report.skip("mail.tracking.value", int((~is_stage).sum()), "tracks another field than the stage")
        sub = SourceTable("mail.tracking.value", tracking.path, tracking.frame[is_stage].reset_index(drop=True),
                          [r for r, s in zip(tracking.row_labels, is_stage, strict=True) if s])  # fmt: skip
        messages = self._message_index().set_index("id")
        message_id = _ids(sub, "mail_message_id")
        on_lead = message_id.map(messages["model"]).eq("crm.lead")
        self.report.skip("mail.tracking.value", int((~on_lead).sum()), "not on a crm.lead")
        new_id = each(column(sub, "new_value_integer"), _key)
        new_name = each(column(sub, "new_value_char"), _text_of)
        by_id = dict(zip(self.stages["key"], self.stages["stage"], strict=True))
        by_name = {
            **STAGES,
            **self.options.stage_map,
            **dict(zip(self.stages["name"], self.stages["stage"], strict=True)),
        }
        stage = each(
            pd.Series(list(zip(new_id, new_name, strict=True))),
            lambda pair: by_id.get(pair[0]) or (by_name.get(pair[1], pair[1]) if pair[1] else None),
        )
        ts = message_id.map(messages["ts"])
        bad = message_id.map(messages["bad"]).fillna(False).astype(bool).to_numpy()
        staged = pd.DataFrame(
            {"lead_id": message_id.map(messages["res_id"]), "ts": iso_or_marker(ts, bad), "stage": stage}
        )
        keep = on_lead.to_numpy()
        self.staging.add("stage_changes", staged[keep].reset_index(drop=True), "mail.tracking.value",
                         [r for r, k in zip(sub.row_labels, keep, strict=True) if k],
                         {"lead_id": "mail_message_id -> mail.message.res_id",
                          "ts": "mail_message_id -> mail.message.date",
                          "stage": "new_value_integer (crm.stage) / new_value_char"})  # fmt: skip

    def _messages(self) -> None:
        if self.message is None:
            return
        message = self.message
        kind = each(column(message, "message_type"), _text_of).astype("string")
        body = each(column(message, "body"), lambda b: strip_html(_text_of(b)))
        model = each(column(message, "model"), _text_of)
        note = (kind.isin(["comment", "email"]).fillna(False) & body.notna() & model.eq("crm.lead")).to_numpy()
        self.report.skip("mail.message", int((~note).sum()), "a system notification, an empty body or not on a "
                         "crm.lead (stage changes come through mail.tracking.value)")  # fmt: skip
        sub = SourceTable("mail.message", message.path, message.frame[note].reset_index(drop=True),
                          [r for r, n in zip(message.row_labels, note, strict=True) if n])  # fmt: skip
        email = column(sub, "message_type").eq("email")
        staged = pd.DataFrame({
            "lead_id": each(column(sub, "res_id"), lambda v: None if v in (None, False, "") else str(v)),
            "ts": iso_or_marker(*parse_times(each(column(sub, "date"), _text_of), self.spec)),
            "actor_id": _ref(sub, "author_id"),
            "channel": np.where(email, "邮件", None),
            "note": body[note].reset_index(drop=True),
        })  # fmt: skip
        self.staging.add("activities", staged, "mail.message", sub.row_labels,
                         {"lead_id": "res_id", "ts": "date", "actor_id": "author_id",
                          "channel": "message_type (email -> 邮件)", "note": "body (HTML stripped)"})  # fmt: skip
        self.report.assume("mail.message of type email are e-mails (邮件); comments are the reps' internal notes "
                           "(their channel is not recorded)")  # fmt: skip


def import_export(source: Path, mapping: Path | None) -> tuple[ContractResult, ImportReport]:
    if not source.is_dir():
        raise SourceError(f"odoo: --source must be the directory of the exports, not {source}")
    return _Odoo(source, Options.load(mapping)).run()
