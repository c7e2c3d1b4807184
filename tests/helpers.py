"""Hand-made CRM tables for tests, typed by the contract's own validation."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd

from features.contract import TABLES, validate_table


def make_tables(**rows: list[dict]) -> dict[str, pd.DataFrame]:
    """Contract tables from lists of row dicts, e.g. make_tables(leads=[...], activities=[...])."""
    known = pd.Index([r["lead_id"] for r in rows.get("leads", [])])
    tables = {}
    for name in TABLES:
        frame = (
            pd.DataFrame(rows[name]) if rows.get(name) else pd.DataFrame(columns=[f.name for f in TABLES[name].fields])
        )
        result = validate_table(name, frame, known if name != "leads" else None)
        assert not result.errors, result.errors
        tables.update(result.tables)
    return tables


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Shanghai")


def lead_answer(lead_id: str, **fields):
    """A typed answer for one lead with plain values, for tests of what reads answers."""
    from models.schema import LeadAnswer

    answer = {
        "lead_id": lead_id, "health_score": 42.0, "win_probability": 0.42, "tier": "重点跟进",
        "activity_index": 40.0,
        "health_radar": dict.fromkeys(["information", "timeliness", "need_clarity", "industry_match", "interaction"], 50.0),
        "golden_checklist": dict.fromkeys(["first_call", "wechat", "need_tagged", "complete"], False),
        "stage_evidence_missing": False,
        "screening": dict.fromkeys(["duplicate", "phone_invalid", "phone_missing", "spam_text", "job_seeker_text",
                                    "competitor_email"], False) | {"duplicate_of": None},
        "explanation": {"base_score": 20.0, "positive": [], "negative": []},
        "next_actions": [], "model_version": "leadscore-health/1", "as_of": "2026-06-01T10:00:00+08:00",
        "stage": {"inferred": "报价", "confidence": 0.9, "probabilities": {"报价": 0.9}, "recorded": "报价",
                  "mismatch": False},
    }  # fmt: skip
    return LeadAnswer.model_validate(answer | fields)


class Receiver:
    """Records every request; answers from a script per path (default: the robot's success answer)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: dict[str, list[tuple[int, dict]]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                url = urlparse(self.path)
                receiver.requests.append({"path": url.path, "query": parse_qs(url.query), "body": body})
                queue = receiver.script.get(url.path) or [(200, {"errcode": 0, "errmsg": "ok", "code": 0})]
                status, answer = queue.pop(0) if len(queue) > 1 else queue[0]
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


PHONE = re.compile(r"(?<![\d.])1[3-9]\d{9}(?!\d)|(?<![\d.])0\d{2,3}-\d{7,8}(?!\d)")  # not the digits of a decimal
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+", re.ASCII)
_EMBEDDED_PNG = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def scanned_files(root: Path) -> dict[Path, str]:
    """The text of every file under `root` but images. Images carry no text a pattern could find (the plots'
    labels are feature names); random bytes of a PNG, raw or base64-embedded in a report, would only make false
    alarms. "replace", not "ignore": dropping undecodable bytes would glue digits of binary data together."""
    return {
        p: _EMBEDDED_PNG.sub("", p.read_bytes().decode("utf-8", errors="replace"))
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".png"
    }


def personal_data_in(files: dict[Path, str], root: Path) -> list[tuple[str, str]]:
    """(file, surrounding text) of every unmasked phone number or e-mail address in `files`."""
    return [
        (str(p.relative_to(root)), t[max(m.start() - 60, 0) : m.end() + 20])
        for p, t in files.items()
        for m in [*PHONE.finditer(t), *EMAIL.finditer(t)]
    ]
