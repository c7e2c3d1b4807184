"""The lead store: every lead and event the service was sent, and the assignment log, through SQLAlchemy Core
(SQLite by default, PostgreSQL by URL: LEADSCORE_STORE_URL).

- `merge(lead, as_of)`: a lead as sent, completed from the store: fields it leaves out come from the stored row,
  its event lists gain the stored events at or before as_of (a CRM front end may send only what changed).
- `earlier_leads(leads)`: stored leads sharing a phone with the sent ones, for the duplicate screen across
  requests and time (the window itself is the screen's: features/screening.py).
- `remember(leads)`: store the leads and their events (an event is kept once, by the digest of its content).
- the assignment log: every /assign and re-routing decision with its inputs (personal data masked), ranking,
  chosen rep, reasons and model version; `overdue(hours)` lists leads assigned longer ago with no first touch.
Personal data: the store keeps phone and e-mail as the contract allows (the duplicate screen needs the phone);
nothing here logs them, and retention (LEADSCORE_STORE_RETENTION_DAYS) purges leads not seen for that long,
with their events and decisions (docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from features.contract import EVENT_TABLES, parse_timestamps
from features.screening import normalize_phone
from features.text import mask_personal

logger = logging.getLogger("leadscore.store")
metadata = MetaData()
leads_table = Table(
    "store_leads",
    metadata,
    Column("lead_id", String(), primary_key=True),  # no length: an id is whatever the CRM uses
    Column("created_at", DateTime(timezone=True)),
    Column("phone_key", String(32), index=True),  # the normalised phone: the duplicate look-up
    Column("owner_id", String()),
    Column("fields", Text, nullable=False),  # the lead's row as sent (JSON), personal data included
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False, index=True),
)
events_table = Table(
    "store_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lead_id", String(), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # web_events, activities, stage_changes
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("row", Text, nullable=False),
    UniqueConstraint("lead_id", "kind", "digest", name="one_event_once"),
)
decisions_table = Table(
    "assignment_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(36), nullable=False, unique=True),
    Column("decided_at", DateTime(timezone=True), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # assign or reroute
    Column("lead_id", String(), index=True),
    Column("status", String(16), nullable=False),
    Column("chosen_rep", String()),
    Column("previous_decision_id", String(36)),
    Column("pool", Text),
    Column("reason", Text),
    Column("ranking", Text),  # the ranked reps with their reasons (JSON)
    Column("inputs", Text),  # the lead and reps sent, personal data masked (JSON)
    Column("errors", Text),
    Column("model_version", String()),
)


def _utc(value: Any) -> datetime | None:
    """A timestamp as an aware UTC datetime (what both databases store and compare alike)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    stamp = parse_timestamps(pd.Series([value], dtype=object))[0] if not isinstance(value, pd.Timestamp) else value
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("Asia/Shanghai") if stamp.tzinfo is None else stamp
    return stamp.tz_convert("UTC").to_pydatetime()


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone columns: they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _digest(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def masked(value: Any) -> Any:
    """A JSON value with phone numbers and e-mails masked in every text (what the assignment log keeps)."""
    if isinstance(value, str):
        return mask_personal(value)
    if isinstance(value, dict):
        return {k: ("[PHONE]" if k == "phone" and v else "[EMAIL]" if k == "email" and v else masked(v))
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def lead_id_of(lead: Any) -> str | None:
    """A sent lead's id when it is a lead object with a text id; anything else is the contract's to report."""
    return lead["lead_id"] if isinstance(lead, dict) and isinstance(lead.get("lead_id"), str) else None


class LeadStore:
    """`retention_days`: leads not seen for this long are purged with their events and decisions (0: kept)."""

    def __init__(self, url: str, retention_days: int = 365) -> None:
        sqlite = url.startswith("sqlite")
        self.retention_days = retention_days
        self.engine = create_engine(url, pool_pre_ping=True, connect_args={"timeout": 10} if sqlite else {})
        if sqlite:

            @event.listens_for(self.engine, "connect")
            def _pragmas(connection, _record) -> None:
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=10000")
                cursor.close()

            path = url.removeprefix("sqlite:///")
            if path and path != url and not path.startswith(":memory:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        metadata.create_all(self.engine, checkfirst=True)
        self._last_purge: datetime | None = None

    # ------------------------------------------------------------------------------------------ leads
    def merge(self, lead: Any, as_of: Any = None) -> Any:
        """The lead as sent, completed from the store (see the module's docstring); anything that is not a
        lead object with a lead_id is returned as it is, for the contract to report."""
        if lead_id_of(lead) is None:
            return lead
        with self.engine.connect() as connection:
            stored = connection.execute(
                select(leads_table.c.fields).where(leads_table.c.lead_id == lead["lead_id"])
            ).scalar_one_or_none()
            if stored is None:
                return lead
            query = select(events_table.c.kind, events_table.c.row).where(events_table.c.lead_id == lead["lead_id"])
            until = _utc(as_of) if as_of else None
            if until is not None:
                query = query.where(events_table.c.ts <= until)  # point in time: nothing after as_of
            rows = connection.execute(query.order_by(events_table.c.id)).all()
        merged = {**json.loads(stored), **{k: v for k, v in lead.items() if v is not None and k not in EVENT_TABLES}}
        for kind in EVENT_TABLES:
            sent = lead.get(kind)
            if sent is not None and not isinstance(sent, list):
                merged[kind] = sent  # not a list: the contract reports it
                continue
            seen = {_digest(r) for r in sent or [] if isinstance(r, dict)}
            earlier = [json.loads(r) for k, r in rows if k == kind]
            merged[kind] = [r for r in earlier if _digest(r) not in seen] + list(sent or [])
        return merged

    def complete(self, leads: list[Any], as_of: Any = None) -> tuple[list[Any], list[dict[str, Any]]]:
        """A request's leads merged with the store, and the stored leads its duplicate screen compares with."""
        merged = [self.merge(lead, as_of) for lead in leads]
        return merged, self.earlier_leads(merged)

    def earlier_leads(self, leads: list[Any]) -> list[dict[str, Any]]:
        """Stored leads rows (with owner) that share a phone with a sent lead, other than the sent leads."""
        ids = {lead_id_of(lead) for lead in leads} - {None}
        phones = normalize_phone(pd.Series([lead.get("phone") if isinstance(lead, dict) else None for lead in leads]))
        keys = sorted({p for p in phones.dropna().tolist() if isinstance(p, str)})
        if not keys:
            return []
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(leads_table.c.lead_id, leads_table.c.fields, leads_table.c.owner_id).where(
                    leads_table.c.phone_key.in_(keys)
                )
            ).all()
        return [{**json.loads(f), "owner_id": owner} for lead_id, f, owner in rows if lead_id not in ids]

    def remember(self, leads: list[Any], owners: dict[str, str] | None = None) -> int:
        """Store leads (their rows, and their events once each); `owners` sets leads' owners and assigned_at
        (a decision's). Returns the number of events added."""
        now = datetime.now(UTC)
        owners = owners or {}
        added = 0
        with self.engine.begin() as connection:
            for lead in leads:
                lead_id = lead_id_of(lead)
                if lead_id is None:
                    continue
                row = {k: v for k, v in lead.items() if k not in EVENT_TABLES and v is not None}
                if lead_id in owners:
                    row["owner_id"], row["assigned_at"] = owners[lead_id], now.isoformat()
                phone = normalize_phone(pd.Series([row.get("phone")], dtype=object)).iat[0]
                values = {
                    "created_at": _utc(row.get("created_at")),
                    "phone_key": phone if isinstance(phone, str) else None,
                    "owner_id": row.get("owner_id") if isinstance(row.get("owner_id"), str) else None,
                    "last_seen": now,
                }
                stored = connection.execute(
                    select(leads_table.c.fields).where(leads_table.c.lead_id == lead_id)
                ).scalar_one_or_none()
                if stored is None:
                    fields = json.dumps(row, ensure_ascii=False, default=str)
                    connection.execute(
                        insert(leads_table).values(lead_id=lead_id, fields=fields, first_seen=now, **values)
                    )
                else:
                    merged = {**json.loads(stored), **row}
                    values["owner_id"] = merged.get("owner_id") if isinstance(merged.get("owner_id"), str) else None
                    values["created_at"] = _utc(merged.get("created_at"))
                    fields = json.dumps(merged, ensure_ascii=False, default=str)
                    connection.execute(
                        update(leads_table).where(leads_table.c.lead_id == lead_id).values(fields=fields, **values)
                    )
                added += self._remember_events(connection, lead_id, lead)
        self.purge_if_due()
        return added

    @staticmethod
    def _remember_events(connection, lead_id: str, lead: dict[str, Any]) -> int:
        rows = []
        for kind in EVENT_TABLES:
            for row in lead.get(kind) or []:
                ts = _utc(row.get("ts")) if isinstance(row, dict) else None
                if ts is not None:  # a row without a readable time is one the contract refuses
                    rows.append({"lead_id": lead_id, "kind": kind, "ts": ts, "digest": _digest(row),
                                 "row": json.dumps(row, ensure_ascii=False, default=str)})  # fmt: skip
        if not rows:
            return 0
        known = set(
            connection.execute(
                select(events_table.c.kind, events_table.c.digest).where(events_table.c.lead_id == lead_id)
            ).all()
        )
        new = [r for r in rows if (r["kind"], r["digest"]) not in known]
        new = list({(r["kind"], r["digest"]): r for r in new}.values())  # the same row twice in one request
        if new:
            connection.execute(insert(events_table), new)
        return len(new)

    def lead(self, lead_id: str) -> dict[str, Any] | None:
        """A stored lead as a request lead: its row with every stored event."""
        with self.engine.connect() as connection:
            stored = connection.execute(
                select(leads_table.c.fields).where(leads_table.c.lead_id == lead_id)
            ).scalar_one_or_none()
        return None if stored is None else self.merge({"lead_id": lead_id})

    def count(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                t.name: int(connection.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (leads_table, events_table, decisions_table)
            }

    # ------------------------------------------------------------------------------------------ decisions
    def log_decision(self, answer: dict[str, Any], inputs: dict[str, Any], previous: str | None = None) -> None:
        """One decision (an AssignAnswer as a dict) with the inputs it was made from, personal data masked."""
        row = {
            "decision_id": answer["decision_id"],
            "decided_at": datetime.now(UTC),
            "kind": answer.get("kind", "assign"),
            "lead_id": answer.get("lead_id"),
            "status": answer["status"],
            "chosen_rep": answer.get("chosen_rep"),
            "previous_decision_id": previous,
            "pool": answer.get("pool"),
            "reason": answer.get("reason"),
            "ranking": json.dumps(masked(answer.get("ranking", [])), ensure_ascii=False),
            "inputs": json.dumps(masked(inputs), ensure_ascii=False, default=str),
            "errors": json.dumps(
                masked({"errors": answer.get("errors", []), "rep_errors": answer.get("rep_errors", [])}),
                ensure_ascii=False,
            ),  # fmt: skip
            "model_version": answer.get("model_version"),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(decisions_table).values(**row))
        except IntegrityError:
            logger.warning("decision %s was already logged", row["decision_id"])

    def decisions(self, limit: int = 200, lead_id: str | None = None) -> list[dict[str, Any]]:
        """The latest decisions, newest first, with the JSON columns read back."""
        query = select(decisions_table).order_by(decisions_table.c.id.desc()).limit(limit)
        if lead_id is not None:
            query = query.where(decisions_table.c.lead_id == lead_id)
        with self.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query)]
        for row in rows:
            row["decided_at"] = _aware(row["decided_at"])
            for name in ("ranking", "inputs", "errors"):
                row[name] = json.loads(row[name]) if row[name] else None
        return rows

    def first_touch(self, lead_id: str, since: datetime) -> datetime | None:
        """The first outbound activity of a lead at or after `since` (a rep's first touch), from the store."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(events_table.c.ts, events_table.c.row)
                .where(
                    events_table.c.lead_id == lead_id, events_table.c.kind == "activities", events_table.c.ts >= since
                )  # fmt: skip
                .order_by(events_table.c.ts)
            ).all()
        return next((_aware(ts) for ts, row in rows if json.loads(row).get("direction") != "inbound"), None)

    def overdue(self, hours: float, now: datetime | None = None) -> list[dict[str, Any]]:
        """Leads whose latest decision assigned them more than `hours` ago and that no rep has touched since
        (no outbound activity stamped after the decision), oldest first."""
        now = now or datetime.now(UTC)
        latest = select(func.max(decisions_table.c.id)).where(decisions_table.c.lead_id.is_not(None))
        latest = latest.group_by(decisions_table.c.lead_id)
        query = (
            select(
                decisions_table.c.decision_id,
                decisions_table.c.lead_id,
                decisions_table.c.chosen_rep,
                decisions_table.c.decided_at,
            )  # fmt: skip
            .where(decisions_table.c.id.in_(latest), decisions_table.c.status == "assigned")
            .where(decisions_table.c.decided_at <= now - timedelta(hours=hours))
            .order_by(decisions_table.c.decided_at)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        out = []
        for decision_id, lead_id, rep, decided_at in rows:
            decided_at = _aware(decided_at)
            if self.first_touch(lead_id, decided_at) is None:
                out.append({"decision_id": decision_id, "lead_id": lead_id, "owner_id": rep,
                            "assigned_at": decided_at, "hours_waiting": (now - decided_at).total_seconds() / 3600})  # fmt: skip
        return out

    def tried_reps(self, lead_id: str) -> list[str]:
        """Every rep a decision gave this lead to."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(decisions_table.c.chosen_rep).where(
                    decisions_table.c.lead_id == lead_id, decisions_table.c.chosen_rep.is_not(None)
                )
            ).all()
        return sorted({r for (r,) in rows})

    # ------------------------------------------------------------------------------------------ retention
    def purge(self, now: datetime | None = None) -> int:
        """Delete leads not seen for `retention_days`, with their events and decisions; returns leads purged."""
        if not self.retention_days:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        with self.engine.begin() as connection:
            old = select(leads_table.c.lead_id).where(leads_table.c.last_seen < cutoff)
            ids = [r for (r,) in connection.execute(old).all()]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                connection.execute(delete(events_table).where(events_table.c.lead_id.in_(chunk)))
                connection.execute(delete(decisions_table).where(decisions_table.c.lead_id.in_(chunk)))
                connection.execute(delete(leads_table).where(leads_table.c.lead_id.in_(chunk)))
            connection.execute(delete(decisions_table).where(decisions_table.c.decided_at < cutoff))
        if ids:
            logger.info("lead store: %d leads past the retention of %d days purged", len(ids), self.retention_days)
        self._last_purge = datetime.now(UTC)
        return len(ids)

    def purge_if_due(self) -> None:
        """Purge at most once an hour."""
        if self._last_purge is None or datetime.now(UTC) - self._last_purge > timedelta(hours=1):
            self.purge()
