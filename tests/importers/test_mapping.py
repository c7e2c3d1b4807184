"""`--from mapping`: a 简道云 API form (widget ids), a GBK follow-up sheet with epoch ms, an .xlsx stage log;
config errors; and the three public datasets' mapping files when ../shared/data is there."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from leadscore.tools.importers import ImportConfigError, run_import
from tests.importers.conftest import FIXTURES, REPO, SHARED


def _jdy(imported):
    return imported("mapping", FIXTURES / "mapping", "mapping/jiandaoyun.yaml")


def test_gbk_excel_and_epoch_milliseconds_are_read(imported) -> None:
    run = _jdy(imported)
    assert any("GB18030" in w for w in run.report.warnings)
    follow = pd.read_csv(FIXTURES / "mapping" / "followups_gbk.csv", encoding="gbk", dtype=str)
    first = follow.iloc[0]
    acts = run.tables["activities"]
    mine = acts[acts["lead_id"] == first["线索编号"]]
    assert pd.Timestamp(int(first["跟进时间"]), unit="ms", tz="UTC") in set(mine["ts"])
    assert first["跟进内容"] in set(mine["note"])
    assert len(run.tables["stage_changes"]) > 50


def test_date_only_values_are_the_end_of_their_day(imported) -> None:
    run = _jdy(imported)
    due = run.tables["activities"]["next_action_due"].dropna().dt.tz_convert("Asia/Shanghai")
    assert ((due.dt.hour == 23) & (due.dt.minute == 59) & (due.dt.second == 59)).all()
    stages = run.tables["stage_changes"]["ts"].dt.tz_convert("Asia/Shanghai")
    assert (stages.dt.hour == 23).all()


def test_widgets_member_fields_budgets_and_the_won_only_amount(imported) -> None:
    run = _jdy(imported)
    leads = run.tables["leads"]
    assert set(leads["owner_id"].dropna()) <= {f"sales{i}" for i in range(4)}
    assert leads["budget_cny"].dropna().min() >= 1000  # "5.8万" -> 58000
    assert "_widget_1690000000010" in run.excluded() and "deal_amount" not in leads
    data = json.loads((FIXTURES / "mapping" / "jdy_leads.json").read_text())["data"]
    assert ("record 10", "createTime") in {(p["source_row"], p["source_field"]) for p in run.problems("form")}
    assert len(leads) == len(data) - 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"leads": {"from": "form", "fields": {"lead_id": "_id"}}}, "required fields not mapped: created_at"),
        ({"leads": {"from": "nope", "fields": {}}}, "no source named 'nope'"),
        ({"colour": 1}, "unknown keys colour"),
        (
            {"leads": {"from": "form", "fields": {"lead_id": "_id", "created_at": "createTime", "budget": "x"}}},
            "budget are not leads fields of the contract",
        ),
        (
            {"leads": {"from": "form", "fields": {"lead_id": "missing column", "created_at": "createTime"}}},
            "column 'missing column' not found in form",
        ),
    ],
)
def test_a_bad_mapping_file_says_what_is_wrong(tmp_path, change, message) -> None:
    import yaml

    config = {"sources": {"form": {"file": "jdy_leads.json", "records": "data"}},
              "leads": {"from": "form", "fields": {"lead_id": "_id", "created_at": "createTime"}}}  # fmt: skip
    config.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    with pytest.raises(ImportConfigError, match=message):
        run_import("mapping", FIXTURES / "mapping", tmp_path / "out", mapping=path)


needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (the public datasets) is not here")
CONFIGS = REPO / "configs" / "import"


@needs_data
def test_olist_closed_deal_fields_are_left_out_and_undated_non_wins_stay_open(tmp_path) -> None:
    result = run_import("mapping", SHARED / "olist", tmp_path / "olist", mapping=CONFIGS / "olist.yaml")
    excluded = {e["field"] for e in result.report.excluded}
    assert {"deals.business_segment", "deals.lead_type", "deals.declared_monthly_revenue"} <= excluded
    assert set(result.tables["outcomes"]["status"]) == {"won"} and len(result.tables["leads"]) == 8000


@needs_data
def test_maven_accounts_filled_at_the_close_are_left_out_and_undated_deals_refused(tmp_path) -> None:
    result = run_import("mapping", SHARED / "maven_crm", tmp_path / "maven", mapping=CONFIGS / "maven.yaml")
    excluded = {e["field"] for e in result.report.excluded}
    assert {"account", "accounts.sector", "accounts.employees"} <= excluded
    assert result.report.sources["pipeline"].rejected["leads.created_at: required value is missing"] == 500
    outcomes = result.tables["outcomes"]
    assert outcomes.loc[outcomes["status"] == "open", "closed_at"].isna().all()


@needs_data
def test_zoho_open_potentials_keep_no_close_date(tmp_path) -> None:
    result = run_import("mapping", SHARED / "zoho_demo", tmp_path / "zoho", mapping=CONFIGS / "zoho.yaml")
    outcomes = result.tables["outcomes"]
    potentials = pd.read_csv(SHARED / "zoho_demo" / "Potentials.csv", dtype=str)
    assert (outcomes["status"] == "won").sum() == (potentials["Stage"] == "Closed Won").sum()
    assert outcomes.loc[outcomes["status"] == "open", "closed_at"].isna().all()
    assert len(result.tables["activities"]) > 1000
