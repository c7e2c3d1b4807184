"""Rule indices and screening on hand-made leads whose answers are known."""

from __future__ import annotations

import pandas as pd
import pytest

from features.pipeline import raw_features
from features.screening import ScreeningConfig, find_duplicates, phone_is_invalid
from tests.helpers import at, make_tables

AS_OF = at("2026-03-20 12:00")


def _features(tables, lead_ids, as_of=AS_OF):
    snapshots = pd.DataFrame({"lead_id": lead_ids, "as_of": as_of})
    features = raw_features(tables, snapshots, screening=ScreeningConfig(("rival-med.cn",)))
    return features.set_index(pd.Index(lead_ids)), features[["duplicate_of"]].set_index(pd.Index(lead_ids))


def _act(lead, ts, **extra):
    return {"lead_id": lead, "ts": ts, **extra}


def test_lead_activity_index_weights_freshness_density_and_roles() -> None:
    tables = make_tables(
        leads=[{"lead_id": x, "created_at": "2026-03-01 09:00"} for x in "ABC"],
        activities=[
            _act("A", "2026-03-05 10:00", channel="电话", contact_role="采购经理"),
            _act("A", "2026-03-10 10:00", channel="微信", contact_role="财务处长"),
            _act("A", "2026-03-18 10:00", channel="拜访", contact_role="技术负责人"),
            _act("B", "2026-03-02 10:00", channel="电话", contact_role="采购经理"),
            _act("C", "2026-03-05 10:00", channel="电话", contact_role="采购经理"),
            _act("C", "2026-03-10 10:00", channel="微信", contact_role="财务处长"),
            _act("C", "2026-03-25 10:00", channel="拜访", contact_role="总经理"),  # after as_of: unseen
        ],
    )
    f, _ = _features(tables, ["A", "B", "C"])
    assert f["lai"].to_dict() == {"A": 100.0, "B": 0.0, "C": 25.0}
    assert f.loc["A", "roles_reached"] == 3 and f.loc["C", "roles_reached"] == 2
    assert f.loc["C", "role_decision_reached"] == 0


def test_response_timeliness_axis() -> None:
    created = at("2026-03-20 06:00")
    leads = [
        {"lead_id": x, "created_at": created.isoformat()} for x in ["h1", "h5", "h20", "h30", "wait_long", "wait_short"]
    ]
    acts = [
        _act(x, (created + pd.Timedelta(hours=h)).isoformat(), channel="电话", direction="outbound")
        for x, h in [("h1", 1), ("h5", 5), ("h20", 20), ("h30", 30)]
    ]
    tables = make_tables(leads=leads, activities=acts)
    as_of = {"h1": 40, "h5": 40, "h20": 40, "h30": 40, "wait_long": 3, "wait_short": 1}
    ids = list(as_of)
    snapshots = pd.DataFrame({"lead_id": ids, "as_of": [created + pd.Timedelta(hours=as_of[x]) for x in ids]})
    features = raw_features(tables, snapshots)
    got = dict(zip(ids, features["radar_timeliness"], strict=True))
    assert got == {"h1": 100, "h5": 70, "h20": 40, "h30": 10, "wait_long": 0, "wait_short": 100}
    assert features["first_touch_hours"].tolist()[:4] == [1, 5, 20, 30]


def test_information_need_clarity_and_interaction_axes() -> None:
    tables = make_tables(
        leads=[
            {
                "lead_id": "full",
                "created_at": "2026-03-01",
                "industry": "医疗器械",
                "customer_type": "终端用户",
                "company_size": 300,
                "budget_cny": 800000,
                "company_name": "杭州华康医疗",
                "province": "浙江",
                "phone": "13812345678",
                "form_text": "需要DR设备，预算80万，3月份采购，数量2台",
            },
            {
                "lead_id": "thin",
                "created_at": "2026-03-01",
                "industry": "美妆",
                "phone": "13812345679",
                "form_text": "你好",
            },
        ],
        web_events=[
            {"lead_id": "full", "ts": "2026-03-15", "event_type": "page_view", "page_category": "pricing"},
            {"lead_id": "full", "ts": "2026-03-16", "event_type": "download", "page_category": "download"},
            {"lead_id": "thin", "ts": "2026-02-01", "event_type": "page_view", "page_category": "product"},
        ],
    )
    f, _ = _features(tables, ["full", "thin"])
    assert (
        f.loc["full", "radar_information"] == 100 and f.loc["thin", "radar_information"] == 37.5
    )  # industry, contact, text: 3 of 8
    assert f.loc["full", "radar_need_clarity"] == 100 and f.loc["thin", "radar_need_clarity"] == 0
    assert f.loc["full", "radar_interaction"] == 100 and f.loc["thin", "radar_interaction"] == 0
    assert f.loc["full", "pricing_views_7d"] == 1 and f.loc["full", "download_30d"] == 1


def test_industry_match_counts_only_wins_closed_before_as_of() -> None:
    leads = [
        {"lead_id": f"w{i}", "created_at": "2026-01-01", "owner_id": "rep1", "industry": "医疗器械"} for i in range(3)
    ]
    leads += [{"lead_id": "new", "created_at": "2026-03-10", "owner_id": "rep1", "industry": "医疗器械"}]
    leads += [{"lead_id": "other", "created_at": "2026-03-10", "owner_id": "rep2", "industry": "医疗器械"}]
    outcomes = [
        {"lead_id": "w0", "status": "won", "closed_at": "2026-02-01"},
        {"lead_id": "w1", "status": "won", "closed_at": "2026-02-15"},
        {"lead_id": "w2", "status": "won", "closed_at": "2026-04-01"},  # after as_of
    ]
    tables = make_tables(leads=leads, outcomes=outcomes)
    f, _ = _features(tables, ["new", "other"])
    assert f.loc["new", "owner_industry_wins"] == 2 and f.loc["new", "radar_industry_match"] == 100
    assert f.loc["other", "radar_industry_match"] == 0
    assert f.loc["new", "owner_open_load"] == 2  # w2 (still open at as_of) and the new lead itself
    assert f.loc["new", "owner_win_rate"] == pytest.approx((2 + 1.5) / (2 + 10))


def test_golden_response_checklist() -> None:
    tables = make_tables(
        leads=[{"lead_id": x, "created_at": "2026-03-10 09:00"} for x in ["golden", "late"]],
        activities=[
            _act("golden", "2026-03-10 09:30", channel="电话", direction="outbound", note="首次电话沟通"),
            _act("golden", "2026-03-10 10:00", channel="微信", direction="outbound", note="已加微信"),
            _act("golden", "2026-03-10 10:30", channel="微信", direction="outbound", note="确认需求：数量和预算"),
            _act("late", "2026-03-10 12:00", channel="电话", direction="outbound", note="确认需求：数量和预算"),
        ],
    )
    f, _ = _features(tables, ["golden", "late"])
    assert f.loc[
        "golden", ["checklist_first_call", "checklist_wechat", "checklist_need_tagged", "checklist_complete"]
    ].tolist() == [1, 1, 1, 1]
    assert f.loc["late", ["checklist_first_call", "checklist_complete"]].tolist() == [0, 0]


def test_stage_evidence_check_reads_attachments_point_in_time() -> None:
    tables = make_tables(
        leads=[{"lead_id": x, "created_at": "2026-03-01"} for x in ["no_contract", "contract", "contract_later"]],
        stage_changes=[
            {"lead_id": x, "ts": "2026-03-15", "stage": "合同谈判"}
            for x in ["no_contract", "contract", "contract_later"]
        ],
        activities=[
            _act("contract", "2026-03-16", attachment_type="合同"),
            _act("contract_later", "2026-03-25", attachment_type="合同"),
        ],
    )
    f, _ = _features(tables, ["no_contract", "contract", "contract_later"])
    assert f["stage_evidence_missing"].tolist() == [1, 0, 1]
    assert f["days_in_recorded_stage"].round(1).tolist() == [5.5, 5.5, 5.5]


def test_duplicates_point_at_the_earlier_lead_within_30_days() -> None:
    tables = make_tables(
        leads=[
            {"lead_id": "first", "created_at": "2026-01-01", "phone": "13812345678", "company_name": "杭州华康"},
            {"lead_id": "again", "created_at": "2026-01-11", "phone": "+86 138-1234-5678", "company_name": "杭州华康"},
            {"lead_id": "much_later", "created_at": "2026-02-20", "phone": "13812345678", "company_name": "杭州华康"},
            {"lead_id": "other_company", "created_at": "2026-01-05", "phone": "13912345678", "company_name": "A公司"},
            {"lead_id": "other_company2", "created_at": "2026-01-06", "phone": "13912345678", "company_name": "B公司"},
        ]
    )
    duplicate_of = find_duplicates(tables["leads"]).tolist()
    assert duplicate_of == [None, "first", None, None, None]
    _, details = _features(tables, ["again"])
    assert details.loc["again", "duplicate_of"] == "first"


@pytest.mark.parametrize(
    ("phone", "invalid"),
    [
        ("13812345678", False),
        ("+86 138-1234-5678", False),
        ("0571-88889999", False),
        ("010-12345678", False),
        ("1380013", True),
        ("12345678901", True),
        ("138abc12345", True),
        ("+1 415 555 0100", True),
        (None, False),
    ],
)
def test_phone_validation(phone, invalid) -> None:
    assert phone_is_invalid(pd.Series([phone], dtype=object))[0] == invalid


def test_spam_job_seeker_and_competitor_flags() -> None:
    tables = make_tables(
        leads=[
            {"lead_id": "ad", "created_at": "2026-03-01", "form_text": "加微信wx12345领取优惠，代开发票"},
            {"lead_id": "junk", "created_at": "2026-03-01", "form_text": "aaaaaa"},
            {"lead_id": "job", "created_at": "2026-03-01", "form_text": "请问贵公司还招销售吗，我想投简历"},
            {"lead_id": "rival", "created_at": "2026-03-01", "form_text": "想了解报价", "email": "li@Rival-Med.cn"},
            {"lead_id": "real", "created_at": "2026-03-01", "form_text": "询问DR设备报价", "email": "li@qq.com"},
        ]
    )
    f, _ = _features(tables, ["ad", "junk", "job", "rival", "real"])
    assert f["screen_spam_text"].tolist() == [1, 1, 0, 0, 0]
    assert f["screen_job_seeker_text"].tolist() == [0, 0, 1, 0, 0]
    assert f["screen_competitor_email"].tolist() == [0, 0, 0, 1, 0]


def test_shipped_screening_config_lists_competitor_domains() -> None:
    assert "rival-med.cn" in ScreeningConfig.default().competitor_domains
