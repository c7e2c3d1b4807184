"""Alerts out against a local HTTP receiver started by the test: the three robots' formats and signatures,
retries with backoff, the dead-letter file, per-team configuration, and no personal data in any message."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from serving.alerts import AlertsConfig, AlertSender, TeamAlerts
from tests.helpers import Receiver, lead_answer

PHONE, EMAIL = "13800138000", "zhang.san@example.com"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def risky(
    lead_id: str, level: str = "高危", escalate: str | None = "rep", reasons=("已6个工作日未跟进（阈值5个工作日）",)
):
    risk = {"lost_within_7d": 0.81, "lost_within_14d": 0.86, "lost_within_30d": 0.9, "level": level,
            "reasons": list(reasons), "stalls": [], "escalate_to": escalate, "threshold_7d": 0.6}  # fmt: skip
    return lead_answer(lead_id, risk=risk).model_dump(mode="json")


def sender(receiver, teams, tmp_path, **config) -> AlertSender:
    waits: list[float] = []
    cfg = AlertsConfig(teams=[TeamAlerts(**t) for t in teams], **config)
    s = AlertSender(cfg, dead_letter=tmp_path / "dead.jsonl", sleep=waits.append, clock=lambda: 1_700_000_000.5)
    s.waits = waits
    return s


def test_each_robot_gets_its_own_format_and_no_personal_data(receiver, tmp_path) -> None:
    teams = [
        {"name": "华东", "kind": "wecom", "url": f"{receiver.url}/wecom"},
        {"name": "华南", "kind": "dingtalk", "url": f"{receiver.url}/ding?access_token=t", "secret": "SECabc"},
        {"name": "华北", "kind": "feishu", "url": f"{receiver.url}/feishu", "format": "post", "secret": "fs"},
    ]
    s = sender(receiver, teams, tmp_path)
    answers = [risky(PHONE), risky("L2", reasons=(f"客户说打{PHONE}或发{EMAIL}",)), risky("L3", level="正常")]
    outcomes = s.send_answers(answers, {PHONE: EMAIL, "L2": "rep-1", "L3": "rep-1"})
    assert [o["delivered"] for o in outcomes] == [True, True, True]
    by_path = {r["path"]: r for r in receiver.requests}
    wecom = by_path["/wecom"]["body"]
    assert wecom["msgtype"] == "markdown" and "【高危】" in wecom["markdown"]["content"]
    ding = by_path["/ding"]
    assert ding["body"]["msgtype"] == "markdown" and set(ding["body"]["markdown"]) == {"title", "text"}
    ms = ding["query"]["timestamp"][0]
    expected = base64.b64encode(hmac.new(b"SECabc", f"{ms}\nSECabc".encode(), hashlib.sha256).digest()).decode()
    assert ms == "1700000000500" and ding["query"]["sign"][0] == expected  # decoded once, as the robot does
    feishu = by_path["/feishu"]["body"]
    assert feishu["msg_type"] == "post" and feishu["content"]["post"]["zh_cn"]["title"].startswith("leadscore")
    key = f"{feishu['timestamp']}\nfs".encode()
    assert feishu["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    everything = json.dumps(receiver.requests, ensure_ascii=False)
    assert PHONE not in everything and EMAIL not in everything and "[PHONE]" in everything
    assert "L3" not in everything, "a lead at 正常 is never sent"


def test_retries_with_backoff_then_dead_letter(receiver, tmp_path) -> None:
    receiver.script["/flaky"] = [(500, {}), (200, {"errcode": 45009, "errmsg": "limit"}), (200, {"errcode": 0})]
    receiver.script["/down"] = [(503, {})]
    teams = [{"name": "a", "kind": "wecom", "url": f"{receiver.url}/flaky"},
             {"name": "b", "kind": "dingtalk", "url": f"{receiver.url}/down"}]  # fmt: skip
    s = sender(receiver, teams, tmp_path, retries=3, backoff_seconds=0.5)
    outcomes = s.send_answers([risky("L1")], {"L1": None})
    assert outcomes[0] == {"team": "a", "delivered": True, "attempts": 3, "leads": 1}
    assert outcomes[1]["delivered"] is False and outcomes[1]["attempts"] == 4 and outcomes[1]["reason"] == "HTTP 503"
    assert s.waits == [0.5, 1.0, 0.5, 1.0, 2.0]  # doubling, per message
    [dead] = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert dead["team"] == "b" and dead["reason"] == "HTTP 503" and dead["body"]["msgtype"] == "markdown"
    # a client error other than 429 is not retried: the message itself is wrong
    receiver.script["/bad"] = [(400, {})]
    s2 = sender(receiver, [{"name": "c", "kind": "feishu", "url": f"{receiver.url}/bad"}], tmp_path)
    assert s2.send_answers([risky("L9")], {})[0]["attempts"] == 1


def test_teams_get_their_reps_levels_and_escalations_once(receiver, tmp_path) -> None:
    teams = [{"name": "a", "kind": "wecom", "url": f"{receiver.url}/a", "owners": ["rep-1"], "levels": ["高危"],
              "manager_url": f"{receiver.url}/boss"},
             {"name": "b", "kind": "feishu", "url": f"{receiver.url}/b", "format": "text", "owners": ["rep-2"]}]  # fmt: skip
    s = sender(receiver, teams, tmp_path)
    answers = [risky("L1", escalate="manager"), risky("L2", level="预警"), risky("L3")]
    owners = {"L1": "rep-1", "L2": "rep-1", "L3": "rep-2"}
    s.send_answers(answers, owners)
    paths = [r["path"] for r in receiver.requests]
    assert paths == ["/a", "/boss", "/b"]
    assert "L2" not in json.dumps(receiver.requests[0]), "team a takes 高危 only"
    assert "已升级主管" in receiver.requests[1]["body"]["markdown"]["content"]
    assert (
        receiver.requests[2]["body"]["msg_type"] == "text" and "L3" in receiver.requests[2]["body"]["content"]["text"]
    )
    s.send_answers(answers, owners)
    assert len(receiver.requests) == 3, "the same warning is not sent twice on one day"


def test_a_bad_configuration_names_the_field(tmp_path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("teams:\n  - name: a\n    kind: slack\n    url: http://127.0.0.1:9/x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"alerts.yaml: teams\.0\.kind"):
        AlertsConfig.load(path)
    path.write_text("teams:\n  - name: a\n    kind: dingtalk\n    url: http://127.0.0.1:9/x\n", encoding="utf-8")
    assert AlertsConfig.load(path).teams[0].levels == ["高危", "预警"]
