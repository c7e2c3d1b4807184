"""fxiaoke importer on the fixture (data/query answers for LeadsObj, NewOpportunityObj, ActiveRecordObj)."""

from __future__ import annotations

import json

import pandas as pd

from tests.importers.conftest import FIXTURES


def _records(name: str) -> list[dict]:
    pages = json.loads((FIXTURES / "fxiaoke" / f"{name}.json").read_text())
    return [r for page in pages for r in page["data"]["dataList"]]


def test_epoch_milliseconds_become_the_same_instant(imported) -> None:
    run = imported("fxiaoke")
    lead = _records("LeadsObj")[0]
    created = run.tables["leads"].set_index("lead_id").at[lead["_id"], "created_at"]
    assert created == pd.Timestamp(lead["create_time"], unit="ms", tz="UTC")


def test_close_date_is_expected_and_the_final_stage_time_closes(imported) -> None:
    run = imported("fxiaoke")
    outcomes = run.tables["outcomes"].set_index("lead_id")
    for opp in _records("NewOpportunityObj"):
        got = outcomes.loc[opp["leads_id"]]
        if opp["sales_status"] == "1":
            assert got["status"] == "open" and pd.isna(got["closed_at"])
        else:
            assert got["status"] == {"2": "won", "3": "lost"}[opp["sales_status"]]
            assert got["closed_at"] == pd.Timestamp(opp["stg_changed_time"], unit="ms", tz="UTC")
    assert "close_date" in run.excluded() and "close_reason" in run.excluded()


def test_voided_orphan_and_unreadable_records(imported) -> None:
    run = imported("fxiaoke")
    assert run.report.sources["LeadsObj"].skipped["voided (life_status invalid) or deleted"] == 1
    problems = run.problems("ActiveRecordObj")
    assert ("record 4", "create_time") in {(p["source_row"], p["source_field"]) for p in problems}
    assert sum(p["reason"] == "no such lead in the leads table" for p in problems) == 2
    # a sales record on the opportunity reaches its lead; interaction types map to contract channels
    assert set(run.tables["activities"]["channel"].dropna()) <= {"电话", "邮件", "拜访", "微信"}
    assert not run.loaded.errors
