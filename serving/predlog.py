"""The prediction log: every scored lead, one row each, through SQLAlchemy (SQLite by default, PostgreSQL
by URL). Rows of one request go in one transaction; if the database refuses them, they go to a JSON Lines
spool next to it and the error is logged, so a scored lead is never lost."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger("leadscore.predictions")
metadata = MetaData()
predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("logged_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(36), nullable=False, index=True),
    Column("endpoint", String(16), nullable=False),
    Column("lead_id", String(128), nullable=False, index=True),
    Column("as_of", String(40), nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("health_score", Float, nullable=False),
    Column("tier", String(8), nullable=False),
    Column("inferred_stage", String(8)),
    Column("answer", Text, nullable=False),  # the whole answer as JSON: no phone or e-mail is in it
)


class PredictionLog:
    def __init__(self, url: str, spool: Path | None = None) -> None:
        sqlite = url.startswith("sqlite")
        path = url.removeprefix("sqlite:///") if sqlite else ""
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, connect_args={"timeout": 60} if sqlite else {}, pool_pre_ping=True)
        if sqlite:
            # WAL lets readers and one writer work at once; the busy timeout makes writers of other
            # workers wait for the lock instead of failing.
            @event.listens_for(self.engine, "connect")
            def _pragmas(connection, _record) -> None:
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.close()

        metadata.create_all(self.engine, checkfirst=True)
        # Rows the database refuses go here: beside the SQLite file, or in the working directory.
        self.spool = spool or Path(path or "predictions").with_suffix(".spool.jsonl")

    def write(self, request_id: str, endpoint: str, results: list[dict[str, Any]]) -> None:
        now = datetime.now(UTC)
        rows = [
            {
                "logged_at": now,
                "request_id": request_id,
                "endpoint": endpoint,
                "lead_id": str(r["lead_id"]),
                "as_of": r["as_of"],
                "model_version": r["model_version"],
                "health_score": r["health_score"],
                "tier": r["tier"],
                "inferred_stage": r.get("stage", {}).get("inferred"),
                "answer": json.dumps(r, ensure_ascii=False, default=str),
            }
            for r in results
        ]
        if not rows:
            return
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(predictions), rows)
        except SQLAlchemyError as exc:
            logger.error(
                "prediction log refused %d rows (%s); written to %s", len(rows), type(exc).__name__, self.spool
            )
            with open(self.spool, "a", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row | {"logged_at": now.isoformat()}, ensure_ascii=False) + "\n")

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())
