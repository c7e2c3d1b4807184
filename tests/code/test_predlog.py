"""The prediction log keeps every scored lead: concurrent writers, and a database that refuses."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text

from serving.predlog import PredictionLog
from tests.helpers import lead_answer as answer


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


def test_a_locked_database_spools_rows_and_they_are_written_when_it_frees(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "p.db"
    log = PredictionLog(f"sqlite:///{path}", timeout=0.2)
    holder = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    log.write("r1", "score", [answer("L1"), answer("L2")])
    log.write("r2", "score", [answer("L3")])
    assert len(log.spool.read_text().splitlines()) == 3
    holder.execute("ROLLBACK")
    holder.close()
    log.write("r3", "score", [answer("L4")])  # the database takes writes again: the spool goes in first
    assert log.count() == 4 and not log.spool.exists()
    assert sorted(r["lead_id"] for r in log.latest()) == ["L1", "L2", "L3", "L4"]


def test_a_database_unavailable_at_start_spools_until_it_is_there(tmp_path: Path) -> None:
    blocked = tmp_path / "db"
    blocked.write_text("a file where the database's folder should be")
    log = PredictionLog(f"sqlite:///{blocked / 'p.db'}", spool=tmp_path / "spool.jsonl")
    assert not log.ready  # the service starts all the same
    log.write("r1", "score", [answer("L1"), answer("L2")])
    assert len(log.spool.read_text().splitlines()) == 2
    blocked.unlink()  # the storage comes back
    log.write("r2", "score", [answer("L3")])
    assert log.count() == 3 and not log.spool.exists()


def test_a_new_log_writes_what_an_earlier_process_spooled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    first = PredictionLog(url, timeout=0.2)
    with first.engine.begin() as connection:
        connection.execute(text("ALTER TABLE predictions RENAME TO moved"))
    first.write("r1", "score", [answer("L1")])
    with first.engine.begin() as connection:
        connection.execute(text("ALTER TABLE moved RENAME TO predictions"))
    second = PredictionLog(url)  # a restarted worker: replays the spool at start
    assert second.count() == 1 and not second.spool.exists()
