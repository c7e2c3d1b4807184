"""Salesforce importer on the fixture (tests/importers/fixtures/salesforce, Data Loader CSV with API names)."""

from __future__ import annotations

import pandas as pd

from tests.importers.conftest import FIXTURES

SHANGHAI = "Asia/Shanghai"


def _sf(imported):
    return imported("salesforce", mapping="salesforce.yaml")


def _lead_of(run) -> dict[str, str]:
    """Opportunity Id -> the lead that converted into it (live rows, first occurrence)."""
    leads = run.source("salesforce/Lead.csv")
    leads = leads[(leads["IsDeleted"] == "false") & (leads["ConvertedOpportunityId"] != "")]
    return dict(zip(leads["ConvertedOpportunityId"], leads["Id"], strict=True)) | {
        o: i for o, i in zip(leads["ConvertedOpportunityId"][::-1], leads["Id"][::-1], strict=True)
    }


def test_the_export_passes_the_contract_and_keeps_the_good_rows(imported) -> None:
    run = _sf(imported)
    assert not run.loaded.errors, run.loaded.errors[:3]
    leads = run.source("salesforce/Lead.csv")
    good = leads[(leads["IsDeleted"] == "false") & ~leads["CreatedDate"].str.contains("2023-02-30")]
    assert set(run.tables["leads"]["lead_id"]) >= set(good["Id"])  # every readable, undeleted lead is kept


def test_an_open_opportunitys_close_date_never_becomes_a_close_time(imported) -> None:
    run = _sf(imported)
    opps = run.source("salesforce/Opportunity.csv")
    open_opps = opps[opps["IsClosed"] == "false"]
    assert len(open_opps) and (pd.to_datetime(open_opps["CloseDate"]) > pd.Timestamp("2024-06-28")).any()
    lead_of = _lead_of(run)
    ids = [lead_of.get(o, o) for o in open_opps["Id"]]
    outcomes = run.tables["outcomes"].set_index("lead_id").reindex(ids)
    assert outcomes["status"].eq("open").all() and outcomes["closed_at"].isna().all()
    exported = pd.Timestamp("2024-06-28T10:00:00Z")
    assert (run.tables["outcomes"]["closed_at"].dropna() <= exported).all()


def test_a_close_time_is_when_the_history_shows_the_closed_stage(imported) -> None:
    run = _sf(imported)
    history = run.source("salesforce/OpportunityHistory.csv")
    won = history[(history["StageName"] == "Closed Won") & (history["CreatedDate"] != "not a date")].iloc[0]
    lead_id = _lead_of(run).get(won["OpportunityId"], won["OpportunityId"])
    closed_at = run.tables["outcomes"].set_index("lead_id").at[lead_id, "closed_at"]
    assert closed_at == pd.Timestamp(won["CreatedDate"])


def test_stages_come_from_the_history_only(imported) -> None:
    run = _sf(imported)
    history = run.source("salesforce/OpportunityHistory.csv").sort_values(["OpportunityId", "CreatedDate"])
    readable = history[history["CreatedDate"] != "not a date"]
    changes = readable[readable["StageName"] != readable.groupby("OpportunityId")["StageName"].shift()]
    known = set(run.tables["leads"]["lead_id"]) | set(run.source("salesforce/Opportunity.csv")["Id"])
    expected = changes[changes["OpportunityId"].isin(known)]
    # Amount-only rows are not stage changes; the opportunity without history gets none from its StageName.
    assert len(run.tables["stage_changes"]) <= len(expected)
    assert (
        run.report.sources["OpportunityHistory"].skipped["no stage change (amount, probability or close-date edit)"] > 0
    )
    leads = run.source("salesforce/Lead.csv")
    no_history = leads.loc[leads["Id"].str.contains("0000011"), "Id"].iloc[0]
    assert no_history not in set(run.tables["stage_changes"]["lead_id"])
    assert set(run.tables["stage_changes"]["stage"]) <= {
        "初步接触",
        "需求确认",
        "方案沟通",
        "报价",
        "合同谈判",
        "赢单",
        "丢单",
    }


def test_a_won_only_custom_field_is_left_out_and_a_creation_field_kept(imported) -> None:
    run = _sf(imported)
    assert "Contract_Number__c" in run.excluded() and "only for won" in run.excluded()["Contract_Number__c"]
    assert "contract_number" not in run.tables["leads"] or run.tables["leads"]["contract_number"].isna().all()
    assert run.tables["leads"]["budget_cny"].notna().sum() > 10


def test_activity_times_never_lie_later_than_the_source_says(imported) -> None:
    run = _sf(imported)
    tasks = run.source("salesforce/Task.csv")
    done = tasks[(tasks["IsClosed"] == "true") & tasks["WhoId"].isin(run.tables["leads"]["lead_id"])]
    acts = run.tables["activities"]
    checked_dates = 0
    for _, task in done.iterrows():
        times = set(acts.loc[acts["lead_id"] == task["WhoId"], "ts"])
        if task["CompletedDateTime"]:
            assert pd.Timestamp(task["CompletedDateTime"]) in times
            continue
        # A date only: the last second of that day in the org's zone, or the last modification if earlier;
        # never an invented earlier hour, never the next day.
        day_end = pd.Timestamp(task["ActivityDate"], tz=SHANGHAI) + pd.Timedelta(hours=23, minutes=59, seconds=59)
        expected = min(day_end, pd.Timestamp(task["LastModifiedDate"]))
        assert expected in times and expected <= day_end
        checked_dates += 1
    assert checked_dates >= 5


def test_plans_and_meetings_to_come_are_not_activities(imported) -> None:
    run = _sf(imported)
    stats = run.report.sources
    assert stats["Task"].skipped["open task: a plan, not an activity that happened"] == 3
    assert stats["Event"].skipped["scheduled after the export: not held yet"] == 1
    assert run.tables["activities"]["ts"].max() <= pd.Timestamp("2024-06-28T10:00:00Z")
    assert set(run.tables["activities"]["actor_role"].dropna()) <= {"销售", "售前", "管理层"}


def test_bad_rows_are_named_by_source_table_row_and_field(imported) -> None:
    run = _sf(imported)
    lead_problems = {(p["source_row"], p["source_field"], p["reason"]) for p in run.problems("Lead")}
    assert ("line 7", "CreatedDate", "not an ISO 8601 timestamp") in lead_problems
    assert any(f == "Id" and "duplicated" in r for _, f, r in lead_problems)
    orphan = [p for p in run.problems("Task") if p["reason"] == "no such lead in the leads table"]
    tasks = run.source("salesforce/Task.csv")
    planted = tasks.index[tasks["WhoId"].str.startswith("0035g0000000099")][0] + 2
    assert f"line {planted}" in {p["source_row"] for p in orphan}
    assert run.report.sources["Lead"].skipped["deleted in Salesforce (IsDeleted = true)"] == 1


def test_a_lead_lost_without_a_date_stays_open(imported) -> None:
    run = _sf(imported)
    leads = run.source("salesforce/Lead.csv")
    lost = leads.loc[
        (leads["Status"] == "Closed - Not Converted") & leads["Id"].isin(run.tables["leads"]["lead_id"]), "Id"
    ]
    outcomes = run.tables["outcomes"].set_index("lead_id")
    assert len(lost) >= 3 and outcomes.reindex(lost)["status"].eq("open").all()
    assert any("lost without a date" in w for w in run.report.warnings)


def test_the_report_names_fields_but_never_personal_values(imported) -> None:
    run = _sf(imported)
    text = (run.out / "import_report.md").read_text() + (run.out / "import_report.json").read_text()
    leads = pd.read_csv(FIXTURES / "salesforce" / "Lead.csv", dtype=str)
    assert not any(p in text for p in leads["MobilePhone"].dropna()) and not any(e in text for e in leads["Email"])
    assert "Amount" in run.excluded() and "CloseDate" in run.excluded()
