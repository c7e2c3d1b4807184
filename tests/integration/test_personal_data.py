"""No phone number or e-mail leaves unmasked: not in answers (explanations, actions, errors), the
service's log, the prediction log, the MLflow store and artifacts, nor BentoML's model store.

It sends its own requests full of personal data (in fields, free text and a bad as_of) before it scans, so it
proves the masking whatever ran before it; whatever other tests left in the stores is scanned too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from features.screening import normalize_phone
from tests.integration.conftest import post

# Bounded by anything but ASCII letters and digits: a run of digits inside a hex trace id is no phone.
PHONE = re.compile(r"(?<![0-9A-Za-z.])(?:\+?86[ -]?)?(1[3-9]\d(?:[ -]?\d){8})(?![0-9A-Za-z])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
INJECTED_PHONE, INJECTED_EMAIL = "13987654321", "zhang.wei@customer-example.cn"


def _known(tables) -> tuple[set[str], set[str]]:
    """Every phone and e-mail of the test data, normalised, plus the ones this test sends in free text."""
    phones = set(normalize_phone(tables["leads"]["phone"]).dropna().str[-11:]) | {INJECTED_PHONE}
    emails = set(tables["leads"]["email"].dropna().str.lower()) | {INJECTED_EMAIL}
    return phones, emails


def _found(text: str, phones: set[str], emails: set[str], any_pattern: bool) -> list[str]:
    """Personal values in the text: the known ones, or with `any_pattern` anything shaped like one."""
    hits = []
    for match in PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group(1))
        if any_pattern or digits in phones:
            hits.append(f"phone …{digits[-4:]}")
    for match in EMAIL.finditer(text):
        if any_pattern or match.group(0).lower() in emails:
            hits.append(f"e-mail {match.group(0)[:3]}…")
    return hits


def _scan(root: Path, phones: set[str], emails: set[str]) -> dict[str, list[str]]:
    found = {}
    for path in (p for p in root.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("latin-1")  # phones and e-mails are ASCII; binary files too
        if hits := _found(text, phones, emails, any_pattern=False):
            found[str(path)] = hits[:3]
    return found


def test_personal_data_stays_masked_everywhere(server, tables) -> None:
    phones, emails = _known(tables)
    lead = {"lead_id": "PII-1", "created_at": "2026-05-01T10:00:00+08:00", "phone": INJECTED_PHONE,
            "email": INJECTED_EMAIL, "form_text": f"请尽快联系我 {INJECTED_PHONE}，或发邮件到 {INJECTED_EMAIL} 报价",
            "activities": [{"ts": "2026-05-02T10:00:00+08:00", "channel": "电话", "direction": "outbound",
                            "note": f"客户留了手机 139-8765-4321 和邮箱 {INJECTED_EMAIL}，要报价单"}]}  # fmt: skip
    bad = {"lead_id": "PII-2", "created_at": f"昨天 {INJECTED_PHONE}", "email": INJECTED_EMAIL}
    answers = {route: post(server, route, {"leads": [lead, bad]}).text for route in ("/score", "/recommend")}
    answers["/explain"] = post(server, "/explain", {"lead": lead}).text
    answers["/score bad as_of"] = post(server, "/score", {"leads": [lead], "as_of": INJECTED_PHONE}).text
    for route, text in answers.items():
        assert not _found(text, phones, emails, any_pattern=True), f"{route} answer shows personal data"

    log = server["log"].read_text(encoding="utf-8", errors="replace")
    assert not _found(log, phones, emails, any_pattern=True), "the service's log shows personal data"
    places = {"prediction log": server["log"].parent, "MLflow and BentoML stores": Path(os.environ["LEADSCORE_HOME"])}
    for name, root in places.items():
        assert not _scan(root, phones, emails), f"personal data in the {name}: {_scan(root, phones, emails)}"
