"""Batch scoring of a whole export, in chunks, through the code the service answers with
(`LeadArtifact.score_tables`): the same features, models, explanations and next actions, and the same typed
answer (models/schema.py)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from features.contract import TIMEZONE, ContractError, load_export
from features.labels import export_time
from models.actions import owners_moved
from models.artifact import LeadArtifact, flat_answer
from models.schema import LeadAnswer

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
    Rows are written chunk by chunk. (`leadscore.jobs.scaleout.score_export_on_dask` does the same per
    partition of leads on a Dask cluster.)"""
    out, kind = output_kind(out, chunk_size)
    loaded = load_export(data_dir)
    if loaded.errors:
        raise ContractError(f"{data_dir}: the export has errors; `leadscore validate --data {data_dir}` lists them")
    tables = loaded.tables
    when = export_time(tables) if as_of is None else parse_as_of(as_of)
    snapshots = snapshots_to_score(tables, when, include_closed)
    context = artifact.pipeline.context(tables, snapshots)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = AnswerWriter(out, kind)
    try:
        with tqdm(total=len(snapshots), desc="scoring", unit="lead", disable=not progress) as bar:
            score_snapshots(artifact, tables, snapshots, context, writer, chunk_size, bar.update)
    finally:
        writer.close()
    return {"leads": len(snapshots), "as_of": when.isoformat()}


def output_kind(out: str | Path, chunk_size: int) -> tuple[Path, str]:
    """The output path and its format, or a clear error for a bad suffix or chunk size."""
    out = Path(out)
    kind = FORMATS.get(out.suffix)
    if kind is None:
        raise ValueError(f"--out {out}: the suffix must be one of {', '.join(FORMATS)}")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    return out, kind


def snapshots_to_score(tables: dict[str, pd.DataFrame], when: pd.Timestamp, include_closed: bool) -> pd.DataFrame:
    """One snapshot per lead to score, all as of `when`."""
    return pd.DataFrame({"lead_id": leads_to_score(tables, when, include_closed), "as_of": when})


def score_snapshots(
    artifact: LeadArtifact,
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    context: pd.DataFrame,
    writer: AnswerWriter,
    chunk_size: int,
    on_chunk: Callable[[int], object] | None = None,
    owner_tables: dict[str, pd.DataFrame] | None = None,
) -> int:
    """Score snapshots (one per lead) chunk by chunk. Each chunk gets only its own leads' rows, found by
    one grouping of every table, and `context` (the pipeline's context over the whole export) carries the
    features that read other leads: time grows with the leads, not with leads x export size."""
    # A lead the next actions would move to another rep gets that rep's figures over the whole export:
    # `owner_tables` (every lead and outcome) when `tables` holds only some leads, e.g. one Dask partition.
    owner_tables = owner_tables or {name: tables[name] for name in ("leads", "outcomes")}
    moved = owners_moved(artifact.pipeline, owner_tables, snapshots)
    chunk_of_lead = pd.Series(np.arange(len(snapshots)) // chunk_size, index=snapshots["lead_id"].to_numpy())
    rows = {name: t.groupby(t["lead_id"].map(chunk_of_lead), sort=False).indices for name, t in tables.items()}
    none = np.array([], dtype=int)
    for k, start in enumerate(range(0, len(snapshots), chunk_size)):
        chunk = snapshots.iloc[start : start + chunk_size].reset_index(drop=True)
        own = {name: t.iloc[rows[name].get(k, none)] for name, t in tables.items()}
        owner_context = partial(_shifted, moved, start)
        writer.write(artifact.score_tables(own, chunk, context=context.iloc[start : start + chunk_size],
                                           owner_context=owner_context))  # fmt: skip
        if on_chunk is not None:
            on_chunk(len(chunk))
    return len(snapshots)


def _shifted(moved, start: int, row: int, owner: str) -> np.ndarray:
    return moved(start + row, owner)


def parse_as_of(value: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise ValueError(f"--as-of {value!r} is not an ISO 8601 time") from None
    return stamp.tz_localize(TIMEZONE) if stamp.tzinfo is None else stamp.tz_convert(TIMEZONE)


class AnswerWriter:
    """Answers to a file, batch by batch: JSON Lines (whole answers), or CSV / Parquet (headline fields)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        # Closed by close(), which score_export calls in a finally block.
        self.handle = open(path, "w", encoding="utf-8") if kind in ("jsonl", "csv") else None  # noqa: SIM115
        self.parquet = None
        self.header = True

    def write(self, answers: list[LeadAnswer]) -> None:
        if self.kind == "jsonl":
            self.handle.writelines(a.model_dump_json() + "\n" for a in answers)
            return
        frame = pd.DataFrame([flat_answer(a) | {"as_of": a.as_of} for a in answers])
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
