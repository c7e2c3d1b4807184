"""The data contract: loading, round trips, and every validation error the contract promises."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from features.contract import ContractError, load_export, parse_timestamps, request_to_tables


def _write(directory: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.csv").write_bytes(text.encode(encoding))


LEADS = "lead_id,created_at,channel,company_size,budget_cny,form_text\n"


def test_csv_and_parquet_round_trip_keep_every_row_and_value(sim_dir: Path, tmp_path: Path) -> None:
    original = load_export(sim_dir)
    assert not original.errors
    for fmt in ("csv", "parquet"):
        out = tmp_path / fmt
        out.mkdir()
        for name, frame in original.tables.items():
            if fmt == "csv":
                frame.to_csv(out / f"{name}.csv", index=False)
            else:
                frame.to_parquet(out / f"{name}.parquet", index=False)
        again = load_export(out)
        assert not again.errors, again.problems[:3]
        for name, frame in original.tables.items():
            pd.testing.assert_frame_equal(
                frame.reset_index(drop=True), again.tables[name].reset_index(drop=True), check_dtype=False
            )


def test_timestamps_without_offset_are_shanghai_time_and_offsets_are_converted() -> None:
    parsed = parse_timestamps(pd.Series(["2026-01-02 09:00:00", "2026-01-02T01:00:00Z", "2026-01-02T10:00:00+09:00"]))
    assert str(parsed.dt.tz) == "Asia/Shanghai"
    assert (parsed == pd.Timestamp("2026-01-02 09:00", tz="Asia/Shanghai")).all()


def test_bad_date_rejects_the_row_and_names_table_row_field(tmp_path: Path) -> None:
    _write(tmp_path, "leads", LEADS + "a,2026-01-01 10:00,官网表单,,,\nb,昨天,官网表单,,,\nc,2026-01-03,展会,,,\n")
    result = load_export(tmp_path)
    assert list(result.tables["leads"]["lead_id"]) == ["a", "c"]
    [error] = result.errors
    assert (error.table, error.row, error.field) == ("leads", "b", "created_at")
    assert "ISO 8601" in error.reason


def test_duplicated_lead_id_keeps_the_first_row(tmp_path: Path) -> None:
    _write(tmp_path, "leads", LEADS + "a,2026-01-01,官网表单,10,,first\na,2026-01-02,抖音,20,,second\n")
    result = load_export(tmp_path)
    assert result.tables["leads"]["form_text"].tolist() == ["first"]
    assert [(e.table, e.row, e.field) for e in result.errors] == [("leads", "a", "lead_id")]
    assert "duplicated" in result.errors[0].reason


def test_events_for_unknown_leads_are_reported_and_skipped(tmp_path: Path) -> None:
    _write(tmp_path, "leads", LEADS + "a,2026-01-01,官网表单,,,\n")
    _write(tmp_path, "web_events", "lead_id,ts,event_type\na,2026-01-02,page_view\nghost,2026-01-02,page_view\n")
    result = load_export(tmp_path)
    assert result.tables["web_events"]["lead_id"].tolist() == ["a"]
    [error] = result.errors
    assert (error.table, error.field, error.lead_id) == ("web_events", "lead_id", "ghost")
    assert "line 3" in error.row


def test_missing_required_column_in_an_event_table_skips_that_table_only(tmp_path: Path) -> None:
    _write(tmp_path, "leads", LEADS + "a,2026-01-01,官网表单,,,\n")
    _write(tmp_path, "activities", "lead_id,note\na,打过电话\n")
    result = load_export(tmp_path)
    assert len(result.tables["leads"]) == 1 and len(result.tables["activities"]) == 0
    [error] = result.errors
    assert error.table == "activities" and error.field == "ts" and "required column missing" in error.reason


def test_missing_required_column_in_leads_is_a_clear_contract_error(tmp_path: Path) -> None:
    _write(tmp_path, "leads", "lead_id,channel\na,官网表单\n")
    with pytest.raises(ContractError, match="leads: required column missing: created_at"):
        load_export(tmp_path)


def test_gbk_file_is_read_with_a_warning_and_binary_garbage_is_a_problem(tmp_path: Path) -> None:
    _write(tmp_path, "leads", LEADS + "a,2026-01-01,官网表单,,,想询问DR设备报价\n", encoding="gbk")
    (tmp_path / "activities.csv").write_bytes(b"\xff\xfe\x00\x81\x82" * 50)
    result = load_export(tmp_path)
    assert result.tables["leads"]["form_text"].tolist() == ["想询问DR设备报价"]
    assert any(p.table == "leads" and "GB18030" in p.reason and p.severity == "warning" for p in result.problems)
    assert any(p.table == "activities" and p.severity == "error" for p in result.problems)
    assert len(result.tables["activities"]) == 0


def test_unreadable_parquet_does_not_crash(tmp_path: Path) -> None:
    _write(tmp_path, "leads", LEADS + "a,2026-01-01,官网表单,,,\n")
    (tmp_path / "web_events.parquet").write_bytes(b"PAR1 not really parquet")
    result = load_export(tmp_path)
    assert any(p.table == "web_events" and "cannot read" in p.reason for p in result.errors)


def test_bad_optional_value_is_blanked_with_a_warning_and_unknown_enums_are_kept(tmp_path: Path) -> None:
    _write(tmp_path, "leads", LEADS + "a,2026-01-01,直播带货,很多,-5,\n")
    result = load_export(tmp_path)
    lead = result.tables["leads"].iloc[0]
    assert lead["channel"] == "直播带货"  # unknown enum value kept as its own category
    assert pd.isna(lead["company_size"]) and pd.isna(lead["budget_cny"])
    assert {(p.field, p.severity) for p in result.problems} == {("company_size", "warning"), ("budget_cny", "warning")}
    assert not result.errors


def test_outcome_rows_need_a_known_status_and_a_close_date(tmp_path: Path) -> None:
    _write(tmp_path, "leads", LEADS + "a,2026-01-01,,,,\nb,2026-01-01,,,,\nc,2026-01-01,,,,\n")
    _write(tmp_path, "outcomes", "lead_id,status,closed_at\na,won,\nb,maybe,\nc,open,\n")
    result = load_export(tmp_path)
    assert result.tables["outcomes"]["lead_id"].tolist() == ["c"]
    assert {(e.row, e.field) for e in result.errors} == {("a", "closed_at"), ("b", "status")}


def test_missing_directory_or_leads_table_is_a_contract_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="not a directory"):
        load_export(tmp_path / "nowhere")
    with pytest.raises(ContractError, match="leads table is required"):
        load_export(tmp_path)


def test_simulated_export_validates_without_problems(sim_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sim_dir, copy, ignore=shutil.ignore_patterns("truth"))
    assert load_export(copy).problems == []


def test_online_request_reports_bad_leads_and_keeps_good_ones() -> None:
    as_of, result = request_to_tables(
        {
            "as_of": "2026-03-01T12:00:00",
            "leads": [
                {
                    "lead_id": "ok",
                    "created_at": "2026-02-01",
                    "web_events": [{"ts": "2026-02-03", "event_type": "page_view"}],
                },
                {"lead_id": "bad-date", "created_at": "not a date"},
                {"lead_id": "bad-events", "created_at": "2026-02-01", "activities": "打过电话"},
                "not an object",
            ],
        }
    )
    assert as_of == pd.Timestamp("2026-03-01 12:00", tz="Asia/Shanghai")
    assert result.tables["leads"]["lead_id"].tolist() == ["ok"]
    assert len(result.tables["web_events"]) == 1
    reasons = {(p.lead_id, p.field) for p in result.errors}
    assert reasons == {("bad-date", "created_at"), ("bad-events", "activities"), (None, "*")}


def test_online_request_that_is_not_an_object_or_has_bad_as_of_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="leads"):
        request_to_tables({"leads": "x"})
    with pytest.raises(ContractError, match="as_of"):
        request_to_tables({"as_of": "tomorrow", "leads": []})


def test_lone_surrogates_from_json_escapes_become_replacement_characters() -> None:
    """JSON may escape half of a UTF-16 pair (\\ud9d6): no text column or answer can hold it (found by fuzzing)."""
    import json

    request = json.loads(
        '{"leads": [{"lead_id": "a\\ud9d6", "created_at": "2026-01-01", "x\\udb72": "\\ud83c\\udffb"}]}'
    )
    as_of, result = request_to_tables(request)
    leads = result.tables["leads"]
    assert leads["lead_id"].tolist() == ["a\ufffd"] and not result.errors
    assert leads["x\ufffd"].tolist() == ["\U0001f3fb"]  # a whole pair is its character
