"""HubSpot importer on the fixture (CRM API v3 JSON: contacts in two pages, deals with dealstage history,
the pipeline definition, calls, emails, meetings and notes with their associations)."""

from __future__ import annotations

import json

import pandas as pd

from tests.importers.conftest import FIXTURES


def _records(name: str) -> list[dict]:
    document = json.loads((FIXTURES / "hubspot" / f"{name}.json").read_text())
    pages = document if isinstance(document, list) else [document]
    return [r for page in pages for r in page["results"]]


def test_the_export_passes_the_contract(imported) -> None:
    run = imported("hubspot")
    assert not run.loaded.errors
    assert (
        len(run.tables["leads"]) == len({r["id"] for r in _records("contacts")}) - 1 + 1
    )  # one unreadable, one deal-only


def test_an_open_deals_closedate_is_never_a_close_time_and_closes_come_from_the_stage_history(imported) -> None:
    run = imported("hubspot")
    outcomes = run.tables["outcomes"].set_index("lead_id")
    for deal in _records("deals"):
        contacts = [a["id"] for a in deal.get("associations", {}).get("contacts", {}).get("results", [])]
        if not contacts or contacts[0] not in outcomes.index:
            continue
        row = outcomes.loc[contacts[0]]
        props = deal["properties"]
        if props["hs_is_closed"] == "false":
            assert row["status"] == "open" and pd.isna(row["closed_at"]), deal["id"]
        elif "propertiesWithHistory" in deal:
            entered = pd.Timestamp(deal["propertiesWithHistory"]["dealstage"][0]["timestamp"])  # newest first
            assert row["closed_at"] == entered


def test_stage_history_from_property_history_or_date_entered_and_custom_stages_by_label(imported) -> None:
    run = imported("hubspot")
    fallback = next(d for d in _records("deals") if "propertiesWithHistory" not in d and "hs_date_entered_closedwon"
                    in d["properties"] or "hs_date_entered_qualifiedtobuy" in d["properties"])  # fmt: skip
    lead = fallback["associations"]["contacts"]["results"][0]["id"]
    stages = run.tables["stage_changes"]
    assert (stages["lead_id"] == lead).sum() >= 1
    assert "技术评估" in set(stages["stage"])  # a custom stage without a mapping keeps its label
    assert any("技术评估" in w for w in run.report.warnings)


def test_epoch_milliseconds_and_iso_times_agree_and_html_is_stripped(imported) -> None:
    run = imported("hubspot")
    calls = _records("calls")
    epoch = next(c for c in calls if c["properties"]["hs_timestamp"].isdigit())
    expected = pd.Timestamp(int(epoch["properties"]["hs_timestamp"]), unit="ms", tz="UTC")
    contact = epoch["associations"]["contacts"]["results"][0]["id"]
    acts = run.tables["activities"]
    assert expected in set(acts.loc[acts["lead_id"] == contact, "ts"])
    assert not acts["note"].dropna().str.contains("<|&amp;|&nbsp;").any()
    assert acts["note"].str.contains("发报价&案例", regex=False).any()


def test_canceled_and_future_meetings_are_not_activities(imported) -> None:
    run = imported("hubspot")
    skipped = run.report.sources["meetings"].skipped
    assert skipped["meeting canceled, rescheduled or no-show"] == 1
    assert skipped["after the export: not happened yet"] == 1


def test_won_only_properties_are_left_out_and_bad_rows_named(imported) -> None:
    run = imported("hubspot")
    excluded = run.excluded()
    for name in ("hs_lifecyclestage_customer_date", "closed_won_reason", "closed_lost_reason", "closedate"):
        assert name in excluded
    assert ("record 7", "createdate") in {(p["source_row"], p["source_field"]) for p in run.problems("contacts")}
    orphans = [p for p in run.problems("notes") if p["reason"] == "no such lead in the leads table"]
    assert {p["source_row"] for p in orphans} >= {f"record {len(_records('notes'))}"}
    deal_only = run.tables["leads"]["lead_id"].str.startswith("deal-")
    assert deal_only.sum() == 1  # the deal without a contact is a lead of its own


def test_a_ui_csv_export_with_labels_and_date_entered_columns(imported) -> None:
    run = imported("hubspot", FIXTURES / "hubspot_csv", "hubspot_csv.yaml")
    assert not run.loaded.errors and len(run.tables["leads"]) == 16
    deals = pd.read_csv(FIXTURES / "hubspot_csv" / "deals.csv", dtype=str, keep_default_na=False)
    won = deals[deals["Deal Stage"] == "Closed Won"].iloc[0]
    outcome = run.tables["outcomes"].set_index("lead_id").loc[won["Associated Contact IDs"]]
    entered = pd.Timestamp(won['Date entered "Closed Won (Sales Pipeline)"'], tz="Asia/Shanghai")
    assert outcome["status"] == "won" and outcome["closed_at"] == entered
    still_open = deals[~deals["Deal Stage"].isin(["Closed Won", "Closed Lost"])]["Associated Contact IDs"]
    assert run.tables["outcomes"].set_index("lead_id").loc[still_open, "closed_at"].isna().all()
    stages = run.tables["stage_changes"]
    assert len(stages) >= len(deals) and set(stages["stage"]) >= {"初步接触", "赢单"}
    assert "ORGANIC_SEARCH" in set(run.tables["leads"]["channel"])  # the label "Organic Search", read as its code
