"""Batch scoring of a whole export, in chunks, through the code the service answers with
(`LeadArtifact.score_tables`): the same features, models, explanations and next actions."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from features.contract import TIMEZONE, ContractError, load_export
from features.snapshots import export_time
from leadscore.artifact import LeadArtifact, flat_answer

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def leads_to_score(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, include_closed: bool) -> list[str]:
    """Leads created by as_of, without those closed by then unless asked for."""
    leads = tables["leads"]
    chosen = leads[leads["created_at"] <= as_of]
    if not include_closed:
        closed_at = chosen["lead_id"].map(
            tables["outcomes"].drop_duplicates("lead_id").set_index("lead_id")["closed_at"]
        )
        chosen = chosen[~(closed_at <= as_of).fillna(False)]
    return chosen["lead_id"].tolist()


def score_export(
    artifact: LeadArtifact,
    data_dir: str | Path,
    out: str | Path,
    *,
    as_of: str | None = None,
    chunk_size: int = 500,
    include_closed: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Score an export's leads as of a time (default: the export's latest timestamp) and write one answer
    per lead: whole answers as JSON Lines, or the headline fields as CSV / Parquet, chosen by the suffix.
    Rows are written chunk by chunk, so memory stays flat however many leads there are."""
    out = Path(out)
    kind = FORMATS.get(out.suffix)
    if kind is None:
        raise ValueError(f"--out {out}: the suffix must be one of {', '.join(FORMATS)}")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    loaded = load_export(data_dir)
    if loaded.errors:
        raise ContractError(f"{data_dir}: the export has errors; `leadscore validate --data {data_dir}` lists them")
    tables = loaded.tables
    when = export_time(tables) if as_of is None else _timestamp(as_of)
    lead_ids = leads_to_score(tables, when, include_closed)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out, kind)
    try:
        for start in tqdm(range(0, len(lead_ids), chunk_size), desc="scoring", unit="chunk", disable=not progress):
            chunk = lead_ids[start : start + chunk_size]
            snapshots = pd.DataFrame({"lead_id": chunk, "as_of": when})
            answers = [{**a, "as_of": when.isoformat()} for a in artifact.score_tables(tables, snapshots)]
            writer.write(answers)
    finally:
        writer.close()
    return {"leads": len(lead_ids), "as_of": when.isoformat()}


def _timestamp(value: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise ValueError(f"--as-of {value!r} is not an ISO 8601 time") from None
    return stamp.tz_localize(TIMEZONE) if stamp.tzinfo is None else stamp.tz_convert(TIMEZONE)


class _Writer:
    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        # Closed by close(), which score_export calls in a finally block.
        self.handle = open(path, "w", encoding="utf-8") if kind in ("jsonl", "csv") else None  # noqa: SIM115
        self.parquet = None
        self.header = True

    def write(self, answers: list[dict]) -> None:
        if self.kind == "jsonl":
            self.handle.writelines(json.dumps(a, ensure_ascii=False, default=str) + "\n" for a in answers)
            return
        frame = pd.DataFrame([flat_answer(a) | {"as_of": a["as_of"]} for a in answers])
        if self.kind == "csv":
            frame.to_csv(self.handle, index=False, header=self.header)
            self.header = False
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.path, table.schema)
        self.parquet.write_table(table.cast(self.parquet.schema))

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        if self.parquet is not None:
            self.parquet.close()
