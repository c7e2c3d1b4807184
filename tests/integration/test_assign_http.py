"""Assignment and the lead store over HTTP (issue 18): POST /assign and /assign/overdue against the real server,
the decision log read back and shown on the manager page, duplicates across requests, partial updates."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.integration.conftest import AUTH, post

pytestmark = pytest.mark.slow
CST = timezone(timedelta(hours=8))


def _now(minutes: float = 0) -> str:
    return (datetime.now(CST) + timedelta(minutes=minutes)).isoformat(timespec="seconds")


@pytest.fixture(scope="module")
def reps(trained) -> list[dict]:
    known = trained["result"].artifact.models["rep_segments"].reps_.index[:5].tolist()
    return [{"rep_id": r, "open_leads": 2 * i, "capacity": 20, "industries": ["医疗器械", "教育"]}
            for i, r in enumerate(known)] + [{"rep_id": "rep-new", "open_leads": 0}]  # fmt: skip


def _lead(lead_id: str, **fields) -> dict:
    return {"lead_id": lead_id, "created_at": _now(-1), "channel": "官网表单", "industry": "医疗器械",
            "province": "浙江", "city": "杭州", "form_text": "想询问DR设备报价，预算80万左右", **fields}  # fmt: skip


def test_assign_ranks_the_reps_and_logs_the_decision(server, reps) -> None:
    answer = post(server, "/assign", {"lead": _lead("A-1"), "reps": reps, "as_of": _now()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "assigned" and body["chosen_rep"] == body["ranking"][0]["rep_id"]
    assert len(body["ranking"]) == len(reps) and all(r["reasons"] for r in body["ranking"])
    assert "故分配" in body["reason"] and body["model_version"].startswith("leadscore-health/")
    newcomer = next(r for r in body["ranking"] if r["rep_id"] == "rep-new")
    assert any("按团队先验" in s for s in newcomer["reasons"])
    [logged] = server["store"].decisions(lead_id="A-1")
    assert logged["decision_id"] == body["decision_id"] and logged["chosen_rep"] == body["chosen_rep"]
    assert logged["inputs"]["reps"][0]["rep_id"] == reps[0]["rep_id"] and logged["ranking"][0]["reasons"]
    [entry] = httpx.get(f"{server['url']}/assign/log", params={"lead_id": "A-1"}, headers=AUTH, timeout=30).json()
    assert (
        entry["decision_id"] == body["decision_id"] and entry["ranking"][0]["reasons"] == body["ranking"][0]["reasons"]
    )
    stored = server["store"].lead("A-1")
    assert stored["owner_id"] == body["chosen_rep"] and stored["assigned_at"]


def test_bad_assign_input_gets_its_own_errors_and_is_still_logged(server, reps) -> None:
    broken = post(server, "/assign", {"lead": {"lead_id": "A-bad", "created_at": "昨天"}, "reps": reps})
    assert broken.status_code == 200, broken.text
    assert broken.json()["status"] == "rejected" and broken.json()["errors"][0]["problems"][0]["field"] == "created_at"
    odd = post(server, "/assign", {"lead": _lead("A-odd"), "reps": [{"rep_id": 7}, "x", {"rep_id": "ok"}]}).json()
    assert odd["status"] == "assigned" and odd["chosen_rep"] == "ok" and len(odd["rep_errors"]) == 2
    away = [{**r, "available": False} for r in reps]
    none = post(server, "/assign", {"lead": _lead("A-none"), "reps": away}).json()
    assert none["status"] == "unassigned" and none["chosen_rep"] is None and none["errors"]
    logged = {d["lead_id"]: d["status"] for d in server["store"].decisions()}
    assert logged["A-bad"] == "rejected" and logged["A-none"] == "unassigned"
    assert 400 <= post(server, "/assign", {"lead": _lead("A-x")}).status_code < 500  # reps are required


def test_overdue_leads_are_rerouted_to_a_rep_not_yet_tried(server, reps) -> None:
    first = post(server, "/assign", {"lead": _lead("O-1"), "reps": reps}).json()
    touched = post(server, "/assign", {"lead": _lead("O-2"), "reps": reps}).json()
    call = {"lead_id": "O-2", "activities": [{"ts": _now(1), "channel": "电话", "direction": "outbound"}]}
    assert post(server, "/score", {"leads": [call], "as_of": _now(2)}).status_code == 200
    answer = post(server, "/assign/overdue", {"reps": reps, "hours": 0})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    overdue = {o["lead_id"] for o in body["overdue"]}
    assert "O-1" in overdue and "O-2" not in overdue and touched["chosen_rep"]
    [moved] = [a for a in body["rerouted"] if a["lead_id"] == "O-1"]
    assert moved["kind"] == "reroute" and moved["chosen_rep"] not in (None, first["chosen_rep"])
    first_rank = next(r for r in moved["ranking"] if r["rep_id"] == first["chosen_rep"])
    assert not first_rank["eligible"] and "未跟进" in first_rank["reasons"][0]
    logged = server["store"].decisions(lead_id="O-1")
    assert [d["kind"] for d in logged] == ["reroute", "assign"] and logged[0]["previous_decision_id"] == first[
        "decision_id"
    ]
    assert server["store"].lead("O-1")["owner_id"] == moved["chosen_rep"]


def test_a_duplicate_is_caught_across_requests_and_names_its_owner(server) -> None:
    original = _lead("D-1", phone="13700001111", company_name="瑞达医疗科技有限公司", owner_id="rep0004")
    first = post(server, "/score", {"leads": [original], "as_of": _now()}).json()["results"][0]
    assert not first["screening"]["duplicate"]
    repeat = _lead("D-2", phone="137-0000-1111", company_name="瑞达医疗科技有限公司", created_at=_now())
    second = post(server, "/score", {"leads": [repeat], "as_of": _now(1)}).json()["results"][0]
    assert second["screening"]["duplicate"] and second["screening"]["duplicate_of"] == "D-1"
    assert second["screening"]["duplicate_owner"] == "rep0004"


def test_a_crm_may_send_only_what_changed(server) -> None:
    full = _lead("P-1", activities=[{"ts": _now(), "channel": "电话", "direction": "outbound", "note": "首次电话"}])
    assert post(server, "/score", {"leads": [full], "as_of": _now(1)}).status_code == 200
    change = {"lead_id": "P-1", "activities": [{"ts": _now(2), "channel": "微信", "direction": "outbound"}]}
    answer = post(server, "/score", {"leads": [change], "as_of": _now(3)}).json()
    assert answer["errors"] == [], answer["errors"]
    checklist = answer["results"][0]["golden_checklist"]  # the call came in the first request, WeChat now
    assert checklist["first_call"] and checklist["wechat"]


def test_the_manager_page_shows_the_assignment_log_and_the_overdue_list(server, reps) -> None:
    post(server, "/assign", {"lead": _lead("M-1"), "reps": reps})
    html = httpx.get(f"{server['url']}/manager/assign", headers=AUTH, timeout=30).text
    assert "分配日志" in html and "M-1" in html and "故分配" in html and "待首次跟进超时" in html
    logged = json.dumps(server["store"].decisions(), ensure_ascii=False, default=str)
    assert "13700001111" not in logged and "137-0000-1111" not in logged


def test_openapi_types_the_assign_routes(server) -> None:
    spec = httpx.get(f"{server['url']}/docs.json", timeout=10).json()
    assert {"/assign", "/assign/overdue"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]

    def resolved(node: dict) -> dict:
        while "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[1]]
        return node

    for route, keys in (("/assign", {"decision_id", "chosen_rep", "ranking", "reason"}),
                        ("/assign/overdue", {"overdue", "rerouted"})):  # fmt: skip
        answer = resolved(spec["paths"][route]["post"]["responses"]["200"]["content"]["application/json"]["schema"])
        assert keys <= set(answer["properties"]), route
    assert {"expected_win_probability", "reasons", "segments"} <= set(resolved(schemas["RepRanking"])["properties"])
    assert {"rep_id", "open_leads", "capacity", "available"} <= set(resolved(schemas["RepIn"])["properties"])
