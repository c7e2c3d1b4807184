"""Pieces of the demo: an example request built from a simulated export, and waiting for the service."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from features.contract import EVENT_TABLES, load_export
from features.labels import export_time

PERSONAL = ("phone", "email")  # never put personal data into an example that gets printed


def _json_value(value: Any) -> Any:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: _json_value(v) for k, v in row.items() if _json_value(v) is not None}
        for row in frame.to_dict(orient="records")
    ]


def lead_request(
    tables: dict[str, pd.DataFrame],
    lead_ids: list[str],
    as_of: pd.Timestamp,
    *,
    personal: bool = False,
    max_rows: int | None = None,
) -> dict[str, Any]:
    """The online request for some leads of an export as of a time: each lead with its rows up to as_of."""
    leads = []
    for lead in _records(tables["leads"].set_index("lead_id").loc[lead_ids].reset_index()):
        if not personal:
            for key in PERSONAL:
                lead.pop(key, None)
        for name in EVENT_TABLES:
            rows = tables[name][(tables[name]["lead_id"] == lead["lead_id"]) & (tables[name]["ts"] <= as_of)]
            rows = rows.tail(max_rows) if max_rows else rows
            lead[name] = [{k: v for k, v in r.items() if k != "lead_id"} for r in _records(rows)]
        leads.append(lead)
    return {"as_of": as_of.isoformat(), "leads": leads}


def example_request(data_dir: str | Path, n_leads: int = 2) -> dict[str, Any]:
    """A request for the most active open leads at the export time, plus one invalid lead."""
    tables = load_export(data_dir).tables
    as_of = export_time(tables)
    open_ids = tables["outcomes"].loc[tables["outcomes"]["status"] == "open", "lead_id"]
    activity = tables["activities"]["lead_id"].value_counts()
    chosen = activity.reindex(open_ids).fillna(0).sort_values(ascending=False).index[:n_leads]
    # The request file keeps the (simulated) contact fields so screening sees them; nothing prints it.
    request = lead_request(tables, list(chosen), as_of, personal=True, max_rows=20)
    request["leads"].append({"lead_id": "bad-example", "created_at": "昨天下午", "form_text": "这条线索的创建时间无效"})
    return request


def demo_api_key(home: Path) -> str:
    """The demo's API key, created once in $LEADSCORE_HOME/api_key (readable by its owner only)."""
    path = home / "api_key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def wait_until_ready(url: str, server: subprocess.Popen | None = None, timeout: float = 180.0) -> None:
    """Poll GET /readyz until the service answers 200; fail fast if its process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the service exited with code {server.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the service at {url} was not ready within {timeout:.0f}s")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port: a demo must not mistake another server's answer for its own."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) != 0
