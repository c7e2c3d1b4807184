"""Odoo importer on the fixture (search_read JSON of crm.lead, crm.stage, mail.message, mail.tracking.value)."""

from __future__ import annotations

import json

import pandas as pd

from tests.importers.conftest import FIXTURES


def _json(name: str) -> list[dict]:
    return json.loads((FIXTURES / "odoo" / f"{name}.json").read_text())


def test_utc_without_offset_is_read_as_utc(imported) -> None:
    run = imported("odoo")
    lead = _json("crm.lead")[0]
    created = run.tables["leads"].set_index("lead_id").at[str(lead["id"]), "created_at"]
    assert created == pd.Timestamp(lead["create_date"], tz="UTC")


def test_outcomes_follow_odoo_semantics(imported) -> None:
    run = imported("odoo")
    outcomes = run.tables["outcomes"].set_index("lead_id")
    rows = {str(r["id"]): r for r in _json("crm.lead")}
    for lead_id, row in rows.items():
        if lead_id not in outcomes.index:
            continue
        got = outcomes.loc[lead_id]
        if row["stage_id"][1] == "Won":
            assert got["status"] == "won" and got["closed_at"] == pd.Timestamp(row["date_closed"], tz="UTC")
        elif not row["active"] and row["lost_reason_id"] and row["date_closed"]:
            assert got["status"] == "lost"
        else:  # open, or lost without date_closed: censored; date_deadline is never a close time
            assert got["status"] == "open" and pd.isna(got["closed_at"])
    assert "900" not in set(run.tables["leads"]["lead_id"])  # archived, neither won nor lost
    assert run.report.sources["crm.lead"].skipped["archived without being won or lost"] == 1


def test_stage_changes_come_from_tracking_values_on_the_stage(imported) -> None:
    run = imported("odoo")
    tracking = [t for t in _json("mail.tracking.value") if t["field_id"][1] == "Stage"]
    assert len(run.tables["stage_changes"]) == len(tracking)
    messages = {m["id"]: m for m in _json("mail.message")}
    first = tracking[0]
    message = messages[first["mail_message_id"][0]]
    stages = run.tables["stage_changes"]
    row = stages[
        (stages["lead_id"] == str(message["res_id"])) & (stages["ts"] == pd.Timestamp(message["date"], tz="UTC"))
    ]
    assert row["stage"].tolist() == [{"Qualified": "需求确认", "Proposition": "报价", "Negotiation": "合同谈判",
                                      "Won": "赢单", "New": "新线索"}[first["new_value_char"]]]  # fmt: skip


def test_notes_are_text_and_bad_messages_named(imported) -> None:
    run = imported("odoo")
    notes = run.tables["activities"]["note"].dropna()
    assert len(notes) and not notes.str.contains("<|&nbsp;").any()
    problems = {(p["source_row"], p["source_field"], p["reason"]) for p in run.problems("mail.message")}
    assert any(f == "date" for _, f, _ in problems) and any(
        r == "no such lead in the leads table" for *_, r in problems
    )


def test_a_custom_won_only_field_is_left_out(imported, tmp_path) -> None:
    from leadscore.tools.importers import run_import

    mapping = tmp_path / "odoo.yaml"
    mapping.write_text("lead_fields: {x_studio_contract_no: contract_no}\n")
    result = run_import("odoo", FIXTURES / "odoo", tmp_path / "out", mapping=mapping)
    reasons = {e["field"]: e["reason"] for e in result.report.excluded}
    assert "only for won" in reasons["x_studio_contract_no"]
    assert "date_deadline" in reasons and "lost_reason_id" in reasons


def test_an_import_compatible_csv_export_with_external_ids(tmp_path) -> None:
    from leadscore.tools.importers import import_tables

    (tmp_path / "crm.stage.csv").write_text(
        "id,name,sequence,is_won\ncrm.stage_lead1,New,1,False\ncrm.stage_lead4,Won,70,True\n"
    )
    (tmp_path / "crm.lead.csv").write_text(
        "id,name,create_date,stage_id/id,active,probability,date_closed,lost_reason_id,date_deadline\n"
        "__export__.crm_lead_1,A,2024-01-02 03:04:05,crm.stage_lead4,True,100,2024-02-01 10:00:00,,\n"
        "__export__.crm_lead_2,B,2024-01-03 03:04:05,crm.stage_lead1,False,0,2024-02-02 10:00:00,Too expensive,\n"
        "__export__.crm_lead_3,C,2024-01-04 03:04:05,crm.stage_lead1,True,20,,,2024-09-01\n"
    )
    tables, _ = import_tables("odoo", tmp_path)
    outcomes = tables["outcomes"].set_index("lead_id")
    assert outcomes["status"].to_dict() == {"__export__.crm_lead_1": "won", "__export__.crm_lead_2": "lost",
                                            "__export__.crm_lead_3": "open"}  # fmt: skip
    assert outcomes.at["__export__.crm_lead_1", "closed_at"] == pd.Timestamp("2024-02-01 10:00:00", tz="UTC")
    assert pd.isna(outcomes.at["__export__.crm_lead_3", "closed_at"])
