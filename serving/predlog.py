"""The prediction log: every scored lead, one row each, through SQLAlchemy (SQLite by default, PostgreSQL
by URL). Rows of one request go in one transaction; if the database refuses them, they go to a JSON Lines
spool next to it and the error is logged, so a scored lead is never lost."""

from __future__ import annotations

import json
import logging
import os
import uuid
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
    case,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from features.text import mask_personal
from models.schema import LeadAnswer
from serving.cockpit import summary

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
    # What the manager page filters and shows beside the answer; the events' notes with personal data masked.
    Column("owner_id", String(128)),
    Column("industry", String(64)),
    Column("channel", String(64)),
    Column("events", Text),
    # What the cockpit groups by (issue 19): when the lead came in, the kind of customer, the campaign.
    Column("created_at", String(40)),
    Column("customer_type", String(128)),
    Column("campaign", String(128)),
    # What the manager pages read of the answer and the events (serving/cockpit.py: summary), a fraction of
    # their size: the cockpit parses every row of the log, the lead list and the team view every lead's latest.
    Column("summary", Text),
)


class PredictionLog:
    """`timeout`: seconds a write waits for a locked database before its rows go to the spool."""

    def __init__(self, url: str, spool: Path | None = None, timeout: float = 10.0) -> None:
        sqlite = url.startswith("sqlite")
        self.path = url.removeprefix("sqlite:///") if sqlite else ""
        args = {"timeout": timeout} if sqlite else {"connect_timeout": max(1, int(timeout))}
        self.engine = create_engine(url, connect_args=args, pool_pre_ping=True)
        if sqlite:
            # WAL lets readers and one writer work at once; the busy timeout makes writers of other
            # workers wait for the lock (briefly: scoring must not wait on its log) instead of failing.
            @event.listens_for(self.engine, "connect")
            def _pragmas(connection, _record) -> None:
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
                cursor.close()

        # Rows the database refuses go here: beside the SQLite file, or in the working directory.
        self.spool = spool or Path(self.path or "predictions").with_suffix(".spool.jsonl")
        self.ready = False
        if self._prepare():  # an unreachable database does not stop the service: rows are spooled meanwhile
            self.replay_spool()

    def _prepare(self) -> bool:
        """Create the table (and columns added since) once the database is reachable."""
        if self.ready:
            return True
        try:
            if self.path:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            metadata.create_all(self.engine, checkfirst=True)
            self._add_missing_columns()
        except (SQLAlchemyError, OSError) as exc:
            logger.error(
                "prediction log unavailable (%s); scored rows are spooled to %s", type(exc).__name__, self.spool
            )
            return False
        self.ready = True
        return True

    def _add_missing_columns(self) -> None:
        """A log created by an earlier version gains the columns added since (nullable, so old rows stay)."""
        present = {c["name"] for c in inspect(self.engine).get_columns("predictions")}
        with self.engine.begin() as connection:
            for column in predictions.columns:
                if column.name not in present:
                    kind = column.type.compile(self.engine.dialect)
                    connection.execute(text(f'ALTER TABLE predictions ADD COLUMN "{column.name}" {kind}'))

    def write(
        self,
        request_id: str,
        endpoint: str,
        results: list[LeadAnswer],
        leads: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """One row per answer; `leads` (by lead id, as sent) adds owner, industry, channel and the events."""
        now = datetime.now(UTC)
        leads = leads or {}
        contexts = {r.lead_id: _lead_context(leads.get(r.lead_id, {})) for r in results}
        rows = [
            {
                "logged_at": now,
                "request_id": request_id,
                "endpoint": endpoint,
                "lead_id": str(r.lead_id),
                "as_of": r.as_of,
                "model_version": r.model_version,
                "health_score": r.health_score,
                "tier": r.tier,
                "inferred_stage": r.stage.inferred if getattr(r, "stage", None) is not None else None,
                "answer": r.model_dump_json(),
                **contexts[r.lead_id][0],
                "summary": summary(r, contexts[r.lead_id][1]),
            }
            for r in results
        ]
        if not rows:
            return
        if self._insert(rows):
            self.replay_spool()
            return
        logger.error("prediction log refused %d rows; written to %s", len(rows), self.spool)
        self._to_spool(rows)

    def _insert(self, rows: list[dict[str, Any]]) -> bool:
        """All rows in one transaction, or none (then False)."""
        if not self._prepare():
            return False
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(predictions), rows)
        except SQLAlchemyError as exc:
            logger.warning("prediction log write failed: %s", type(exc).__name__)
            return False
        return True

    def _to_spool(self, rows: list[dict[str, Any]]) -> None:
        with open(self.spool, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row | {"logged_at": row["logged_at"].isoformat()}, ensure_ascii=False) + "\n")

    def replay_spool(self) -> int:
        """Write the spooled rows into the database now that it takes writes again; returns how many.
        The spool is first renamed, so two workers never replay the same rows; rows it cannot write go
        back to the spool."""
        if not self.spool.exists() or self.spool.stat().st_size == 0:
            return 0
        claimed = self.spool.with_name(f"{self.spool.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        try:
            self.spool.rename(claimed)
        except FileNotFoundError:  # another worker claimed it first
            return 0
        with open(claimed, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        for row in rows:
            row["logged_at"] = datetime.fromisoformat(row["logged_at"])
        if rows and not self._insert(rows):
            self._to_spool(rows)
            claimed.unlink()
            return 0
        claimed.unlink()
        logger.info("prediction log: %d spooled rows written", len(rows))
        return len(rows)

    def latest(self) -> list[dict[str, Any]]:
        """The latest row of every lead, best score first, as the lead list reads it: its summary (or the whole
        answer for a row logged before there was one), not its events."""
        c = predictions.c
        newest = select(func.max(c.id)).group_by(c.lead_id)
        shown = [c.id, c.lead_id, c.model_version, c.health_score, c.tier, c.inferred_stage, c.owner_id, c.industry,
                 c.channel, c.summary, case((c.summary.is_(None), c.answer)).label("answer")]  # fmt: skip
        query = select(*shown).where(c.id.in_(newest)).order_by(c.health_score.desc())
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def lead_of(self, row_id: int) -> str | None:
        """The lead a row belongs to (the page links rows by id: a lead id may itself be personal data)."""
        query = select(predictions.c.lead_id).where(predictions.c.id == row_id)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()

    def history(self, lead_id: str) -> list[dict[str, Any]]:
        """Every row of one lead, oldest first."""
        query = select(predictions).where(predictions.c.lead_id == lead_id).order_by(predictions.c.id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def cockpit_rows(self) -> list[dict[str, Any]]:
        """Every row of every lead, by lead then oldest first, with what the cockpit reads: its summary, or the
        whole answer and events for a row logged before there was one."""
        c = predictions.c
        old = c.summary.is_(None)
        query = select(
            c.id, c.lead_id, c.owner_id, c.channel, c.campaign, c.customer_type, c.created_at, c.summary,
            case((old, c.answer)).label("answer"), case((old, c.events)).label("events"),
        ).order_by(c.lead_id, c.id)  # fmt: skip
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def count_for(self, request_ids: list[str]) -> int:
        """Rows logged for these requests."""
        query = select(func.count()).select_from(predictions).where(predictions.c.request_id.in_(request_ids))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


EVENT_FIELDS = {"web_events": ("ts", "event_type", "page_category"),
                "activities": ("ts", "channel", "direction", "contact_role", "note", "attachment_type"),
                "stage_changes": ("ts", "stage")}  # fmt: skip


def _lead_context(lead: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """What the pages need of the lead as sent, as the log's columns (no phone, e-mail or company name; notes
    masked), and its masked events by table (for the summary)."""
    events = {
        name: [
            {k: mask_personal(str(row[k])) for k in fields if row.get(k) is not None}
            for row in (lead.get(name) or [])
            if isinstance(row, dict)
        ]
        for name, fields in EVENT_FIELDS.items()
    }
    columns = {
        "owner_id": _text(lead.get("owner_id")),
        "industry": _text(lead.get("industry")),
        "channel": _text(lead.get("channel")),
        "events": json.dumps(events, ensure_ascii=False) if lead else None,
        "created_at": _text(lead.get("created_at")),
        "customer_type": _text(lead.get("customer_type")),
        "campaign": _text(lead.get("campaign")),
    }
    return columns, events


def _text(value: Any) -> str | None:
    return None if value is None else mask_personal(str(value))[:128]
