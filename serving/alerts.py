"""Alerts out: early warnings of scored leads to the group robots Chinese sales teams use.

企业微信 (WeCom: msgtype markdown or text), 钉钉 (DingTalk: msgtype markdown or text, optional 加签: HmacSHA256 of
"timestamp\\nsecret" keyed by the secret, base64, as URL parameters timestamp and sign) and 飞书 (Feishu/Lark:
msg_type text or post, optional 签名校验: HmacSHA256 keyed by "timestamp\\nsecret" over an empty message, base64,
as body fields timestamp and sign), as their custom-robot documents define them.

Configured per team in a YAML or JSON file (LEADSCORE_ALERTS_FILE): which robot, which reps' leads, which
warning levels. A message that cannot be delivered is retried with exponential backoff (network errors,
HTTP 429 / 5xx, or the robot's own error code), then written to the dead-letter file (JSON Lines, one per
message, without the robot's secret) with the reason. Personal data never leaves: lead and owner ids pass
through `mask_personal`, the text carries only scores, levels and the warning's reasons, and the whole
message is masked once more before it is sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx
import yaml
from pydantic import BaseModel, Field, ValidationError

from features.text import mask_personal

logger = logging.getLogger("leadscore.alerts")
Kind = Literal["wecom", "dingtalk", "feishu"]
KIND_ZH = {"wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书"}


class TeamAlerts(BaseModel):
    """One team's robot."""

    name: str
    kind: Kind
    url: str = Field(description="the robot's webhook address")
    secret: str | None = Field(None, description="钉钉 加签 / 飞书 签名校验 secret")
    format: Literal["markdown", "text", "post"] = "markdown"
    owners: list[str] = Field(default_factory=list, description="owner_id of the team's reps; empty: every lead")
    levels: list[str] = Field(default_factory=lambda: ["高危", "预警"], description="warning levels sent")
    manager_url: str | None = Field(None, description="escalations go here as well (the manager's group)")


class AlertsConfig(BaseModel):
    teams: list[TeamAlerts]
    retries: int = Field(3, ge=0, description="attempts after the first")
    backoff_seconds: float = Field(0.5, ge=0, description="first wait; doubles each retry")
    timeout_seconds: float = Field(5.0, gt=0)
    dead_letter: str | None = Field(None, description="JSON Lines file of undeliverable messages")
    page_url: str | None = Field(None, description="the manager page's address, linked from each message")

    @classmethod
    def load(cls, path: str | Path) -> AlertsConfig:
        """From YAML or JSON; a bad file is a ValueError naming the file and the field."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            return cls.model_validate(raw)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            detail = _validation_detail(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ValueError(f"alerts configuration {path}: {detail}") from None

    @classmethod
    def from_env(cls) -> AlertsConfig | None:
        path = os.environ.get("LEADSCORE_ALERTS_FILE")
        return cls.load(path) if path else None


def _validation_detail(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())


@dataclass(frozen=True)
class Alert:
    """What a message says about one lead: no phone, e-mail or name, ids masked."""

    lead: str  # masked lead id
    owner: str  # masked owner id, or 未分配
    level: str
    score: float
    lost_7d: float
    reasons: tuple[str, ...]
    escalate_to: str | None
    as_of: str

    @classmethod
    def from_answer(cls, answer: dict[str, Any], owner: str | None) -> Alert | None:
        risk = answer.get("risk")
        if not risk or risk.get("level") in (None, "正常"):
            return None
        return cls(
            lead=mask_personal(str(answer["lead_id"])),
            owner=mask_personal(owner) if owner else "未分配",
            level=risk["level"],
            score=float(answer["health_score"]),
            lost_7d=float(risk["lost_within_7d"]),
            reasons=tuple(mask_personal(r) for r in risk.get("reasons", [])),
            escalate_to=risk.get("escalate_to"),
            as_of=str(answer.get("as_of", ""))[:16].replace("T", " "),
        )


def title(alerts: list[Alert]) -> str:
    worst = "高危" if any(a.level == "高危" for a in alerts) else alerts[0].level
    return f"leadscore 线索预警：{len(alerts)}条（最高 {worst}）"


def lines(alert: Alert) -> list[str]:
    head = f"【{alert.level}】线索 {alert.lead} · 负责人 {alert.owner} · 健康分 {alert.score:.0f} · 7天丢单概率 {alert.lost_7d:.0%}"
    if alert.escalate_to == "manager":
        head += " · 已升级主管"
    return [head, *(f"- {r}" for r in alert.reasons)]


def message(team: TeamAlerts, alerts: list[Alert], page_url: str | None = None) -> dict[str, Any]:
    """The robot's request body for these alerts, in its own format (without a signature)."""
    header = title(alerts)
    blocks = [lines(a) for a in alerts]
    link = f"\n\n[打开经理驾驶舱]({page_url})" if page_url else ""
    plain = header + "\n\n" + "\n\n".join("\n".join(b) for b in blocks) + (f"\n\n{page_url}" if page_url else "")
    markdown = f"### {header}\n\n" + "\n\n".join(f"**{b[0]}**\n" + "\n".join(b[1:]) for b in blocks) + link
    if team.kind == "wecom":
        if team.format == "text":
            return {"msgtype": "text", "text": {"content": plain}}
        return {"msgtype": "markdown", "markdown": {"content": markdown}}
    if team.kind == "dingtalk":
        if team.format == "text":
            return {"msgtype": "text", "text": {"content": plain}}
        return {"msgtype": "markdown", "markdown": {"title": header, "text": markdown}}
    if team.format == "post":
        rows = [[{"tag": "text", "text": line}] for b in blocks for line in b]
        if page_url:
            rows.append([{"tag": "a", "text": "打开经理驾驶舱", "href": page_url}])
        return {"msg_type": "post", "content": {"post": {"zh_cn": {"title": header, "content": rows}}}}
    return {"msg_type": "text", "content": {"text": plain}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """钉钉 加签: base64(HmacSHA256(key=secret, "timestamp\\nsecret")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """飞书 签名校验: base64(HmacSHA256(key="timestamp\\nsecret", empty message))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed(team: TeamAlerts, url: str, body: dict[str, Any], now: float) -> tuple[str, dict[str, Any]]:
    """The address and body as sent, signed if the team has a secret."""
    if not team.secret:
        return url, body
    if team.kind == "dingtalk":
        ms = int(now * 1000)
        joiner = "&" if "?" in url else "?"
        return f"{url}{joiner}timestamp={ms}&sign={dingtalk_sign(team.secret, ms)}", body
    if team.kind == "feishu":
        seconds = int(now)
        return url, {"timestamp": str(seconds), "sign": feishu_sign(team.secret, seconds), **body}
    return url, body  # 企业微信's robot has no signature: its key is in the address


def delivered(kind: Kind, response: httpx.Response) -> str | None:
    """None when the robot accepted the message, else why not."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        answer = response.json()
    except ValueError:
        return "the robot's answer is not JSON"
    code = answer.get("code", answer.get("StatusCode")) if kind == "feishu" else answer.get("errcode")
    if code != 0:
        return f"robot error {code}: {answer.get('msg') or answer.get('errmsg') or answer.get('StatusMessage')}"
    return None


def _retryable(reason: str) -> bool:
    return not reason.startswith("HTTP 4") or reason == "HTTP 429"


class AlertSender:
    """Sends each team its leads' warnings; `sleep` and `clock` are for tests."""

    def __init__(
        self,
        config: AlertsConfig,
        dead_letter: str | Path | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        path = dead_letter or config.dead_letter
        home = Path(os.environ.get("LEADSCORE_HOME", ".leadscore"))
        self.dead_letter = Path(path) if path else home / "alerts-dead-letter.jsonl"
        self.client = client or httpx.Client(timeout=config.timeout_seconds)
        self.sleep, self.clock = sleep, clock
        self._sent: set[tuple[str, str, str, str, str]] = set()  # this process's sent warnings, by day
        self._lock = threading.Lock()

    def alerts_for(self, team: TeamAlerts, answers: list[dict[str, Any]], owners: dict[str, str | None]) -> list[Alert]:
        """The team's leads whose warning is at one of its levels, not already sent today by this process."""
        out = []
        for answer in answers:
            owner = owners.get(answer["lead_id"])
            if team.owners and owner not in team.owners:
                continue
            alert = Alert.from_answer(answer, owner)
            if alert is None or alert.level not in team.levels:
                continue
            key = (team.name, str(answer["lead_id"]), alert.level, str(alert.escalate_to), alert.as_of[:10])
            with self._lock:
                if key in self._sent:
                    continue
                self._sent.add(key)
            out.append(alert)
        return out

    def send_answers(self, answers: list[dict[str, Any]], owners: dict[str, str | None]) -> list[dict[str, Any]]:
        """Every team's message for these scored answers (model_dump of LeadAnswer); returns one outcome per
        message sent: team, address kind, delivered or the dead-letter reason, attempts."""
        outcomes = []
        for team in self.config.teams:
            alerts = self.alerts_for(team, answers, owners)
            if not alerts:
                continue
            outcomes.append(self.send(team, team.url, alerts))
            escalated = [a for a in alerts if a.escalate_to == "manager"]
            if escalated and team.manager_url:
                outcomes.append(self.send(team, team.manager_url, escalated))
        return outcomes

    def send(self, team: TeamAlerts, url: str, alerts: list[Alert]) -> dict[str, Any]:
        body = _masked(message(team, alerts, self.config.page_url))
        reason = "not sent"
        attempts = 0
        for attempt in range(self.config.retries + 1):
            attempts = attempt + 1
            address, payload = signed(team, url, body, self.clock())
            try:
                reason = delivered(team.kind, self.client.post(address, json=payload))
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}"
            if reason is None:
                logger.info("alert to team %s (%s): %d leads delivered", team.name, KIND_ZH[team.kind], len(alerts))
                return {"team": team.name, "delivered": True, "attempts": attempts, "leads": len(alerts)}
            if not _retryable(reason) or attempt == self.config.retries:
                break
            self.sleep(self.config.backoff_seconds * 2**attempt)
        self._dead(team, body, reason, attempts)
        return {"team": team.name, "delivered": False, "attempts": attempts, "reason": reason, "leads": len(alerts)}

    def _dead(self, team: TeamAlerts, body: dict[str, Any], reason: str, attempts: int) -> None:
        logger.error(
            "alert to team %s undeliverable after %d attempts (%s): dead-lettered", team.name, attempts, reason
        )
        self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
        record = {"at": datetime.now(UTC).isoformat(), "team": team.name, "kind": team.kind, "reason": reason,
                  "attempts": attempts, "body": body}  # fmt: skip
        with self._lock, open(self.dead_letter, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _masked(value: Any) -> Any:
    """Every string of the message through mask_personal: the last guard against personal data."""
    if isinstance(value, str):
        return mask_personal(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value
