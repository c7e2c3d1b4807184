"""Hand-made CRM tables for tests, typed by the contract's own validation."""

from __future__ import annotations

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
