"""The prediction log keeps every scored lead: concurrent writers, and a database that refuses."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text

from serving.predlog import PredictionLog


def answer(lead_id: str) -> dict:
    return {"lead_id": lead_id, "as_of": "2026-06-01T10:00:00+08:00", "model_version": "leadscore-health/1",
            "health_score": 42.0, "tier": "重点跟进", "stage": {"inferred": "报价"}}  # fmt: skip


def test_concurrent_writers_lose_no_row(tmp_path: Path) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    batches = [[answer(f"L{b}-{i}") for i in range(b % 7 + 1)] for b in range(60)]
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda b: log.write(f"r{len(b)}", "score", b), batches))
    assert log.count() == sum(map(len, batches))


def test_rows_the_database_refuses_go_to_the_spool(tmp_path: Path) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    with log.engine.begin() as connection:
        connection.execute(text("DROP TABLE predictions"))
    log.write("r1", "score", [answer("L1"), answer("L2")])
    rows = [json.loads(line) for line in log.spool.read_text().splitlines()]
    assert [r["lead_id"] for r in rows] == ["L1", "L2"] and rows[0]["request_id"] == "r1"
    assert json.loads(rows[0]["answer"])["tier"] == "重点跟进"
