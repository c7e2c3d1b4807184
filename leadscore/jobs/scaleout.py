"""Scale-out on Dask: training features and batch scoring per partition of leads, through the same feature
and model code as one machine (`lightgbm.dask` for the health model is in training/health.py).

Leads are split into partitions by a hash of lead_id. A partition holds its leads, their outcomes and
every event of those leads, so each feature reads exactly the rows it reads on one machine, as of each
snapshot's time (point in time holds row by row, as everywhere). The features that read other leads,
the owner's figures and the duplicate screen, need only the leads and outcomes tables: they are computed
once over all leads (`lead_context`, `FeaturePipeline.context`) and each partition gets its rows of them.

Scoring never gathers the events: Dask's dataframe reader splits each event table by partition into
Parquet files, each task validates and scores one partition and writes its answers, and the parts are
joined at the end. A worker holds one partition at a time, so its memory depends on the partition size
(`leads_per_partition`), not on the export's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from features.contract import (
    EVENT_TABLES,
    TIMEZONE,
    ContractError,
    Problem,
    empty_table,
    load_export,
    table_file,
    validate_table,
)
from features.pipeline import FeaturePipeline, lead_context, raw_features
from features.screening import ScreeningConfig
from features.text import ChineseTokenizer
from leadscore.jobs.batch import AnswerWriter, output_kind, parse_as_of, score_snapshots, snapshots_to_score
from models.artifact import LeadArtifact

LEADS_PER_PARTITION = 25_000
PART = "_part"


@contextmanager
def dask_client(address: str) -> Iterator:
    """A Dask client for the length of a `with` block: `local` starts (and then stops) a LocalCluster on
    this machine, a worker process per core with one thread each; anything else is the address of a
    running scheduler, such as tcp://10.0.0.5:8786."""
    from distributed import Client, LocalCluster

    if address == "local":
        workers = max(1, min(os.cpu_count() or 1, 8))
        with (
            LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConnectionError(f"--dask {address}: cannot reach a Dask scheduler there ({exc})") from None
    with client:
        yield client


def partition_of(lead_ids: pd.Series | np.ndarray, n_partitions: int) -> np.ndarray:
    """The partition of each lead: a stable hash of its id (the same in every process and on every run)."""
    ids = pd.Series(lead_ids, dtype=object).astype(str).str.strip()
    return (pd.util.hash_array(ids.to_numpy(object)) % np.uint64(n_partitions)).astype(np.int64)


def partition_count(n_leads: int, leads_per_partition: int, n_workers: int) -> int:
    """Enough partitions to keep each under `leads_per_partition` leads, and at least one per worker."""
    if leads_per_partition < 1:
        raise ValueError(f"leads per partition must be at least 1, got {leads_per_partition}")
    return max(n_workers, -(-n_leads // leads_per_partition), 1)


def split_by_lead(tables: dict[str, pd.DataFrame], n_partitions: int) -> Iterator[dict[str, pd.DataFrame]]:
    """Every table cut into partitions by lead (row order kept within a partition), one partition at a
    time: the caller can ship one and drop it before the next is cut."""
    rows = {
        name: pd.Series(np.arange(len(t))).groupby(partition_of(t["lead_id"], n_partitions)).indices
        for name, t in tables.items()
    }
    none = np.array([], dtype=int)
    for i in range(n_partitions):
        yield {name: t.iloc[rows[name].get(i, none)].reset_index(drop=True) for name, t in tables.items()}


def _workers(client) -> int:
    return max(1, len(client.scheduler_info()["workers"]))


def _in_order(pieces: list[tuple[np.ndarray, pd.DataFrame]], n: int) -> pd.DataFrame:
    """Rows computed per partition put back into the snapshots' order."""
    rows = np.concatenate([r for r, _ in pieces])
    frame = pd.concat([f for _, f in pieces], ignore_index=True)
    order = np.empty(n, dtype=np.int64)
    order[rows] = np.arange(len(rows))
    return frame.iloc[order].reset_index(drop=True)


class DaskFeatures:
    """Where a training pass computes its features (training/train.py `FeatureEngine`): per partition of leads
    on the cluster, the same values one machine computes, in the snapshots' order; the boosters are trained
    by `lightgbm.dask` on the same client."""

    def __init__(self, client, leads_per_partition: int = LEADS_PER_PARTITION) -> None:
        self.client = client
        self.leads_per_partition = leads_per_partition

    def raw(self, tables, snapshots: pd.DataFrame, screening: ScreeningConfig) -> pd.DataFrame:
        """`raw_features` of training snapshots."""
        context = lead_context(tables, snapshots, None, screening)
        return _per_partition(self.client, tables, snapshots, context, _raw_part, screening, self.leads_per_partition)

    def transform(self, pipeline: FeaturePipeline, tables, snapshots: pd.DataFrame) -> pd.DataFrame:
        """A fitted pipeline's `transform(..., details=True)`."""
        context = pipeline.context(tables, snapshots)
        [scattered] = self.client.scatter([pipeline], broadcast=True)
        return _per_partition(
            self.client, tables, snapshots, context, _transform_part, scattered, self.leads_per_partition
        )


def _per_partition(client, tables, snapshots, context, compute, extra, leads_per_partition: int) -> pd.DataFrame:
    """`compute` on each partition; at most two partitions per worker are shipped at a time, so neither
    the client nor a worker holds more than a few partitions' copies at once."""
    from distributed import as_completed

    n = partition_count(len(tables["leads"]), leads_per_partition, _workers(client))
    snapshot_part = partition_of(snapshots["lead_id"], n)
    window, running, results = 2 * _workers(client), as_completed(), []
    rows_of: dict[str, np.ndarray] = {}
    for i, part in enumerate(split_by_lead(tables, n)):
        rows = np.flatnonzero(snapshot_part == i)
        if not len(rows):
            continue
        own = (snapshots.iloc[rows].reset_index(drop=True), context.iloc[rows].reset_index(drop=True))
        [scattered] = client.scatter([part])
        del part
        future = client.submit(compute, scattered, *own, extra, pure=False)
        rows_of[future.key] = rows
        running.add(future)
        del scattered
        while running.count() >= window:
            done = next(running)
            results.append((rows_of.pop(done.key), done.result()))
    results += [(rows_of.pop(done.key), done.result()) for done in running]
    return _in_order(results, len(snapshots))


def _raw_part(tables, snapshots, context, screening) -> pd.DataFrame:
    return raw_features(tables, snapshots, context=context, screening=screening)


def _transform_part(tables, snapshots, context, pipeline) -> pd.DataFrame:
    try:
        return pipeline.transform(tables, snapshots, context=context, details=True)
    finally:
        ChineseTokenizer.forget_all()  # the next partition's leads share no notes with these


def score_export_on_dask(
    artifact: LeadArtifact,
    data_dir: str | Path,
    out: str | Path,
    client,
    *,
    as_of: str | None = None,
    chunk_size: int = 500,
    include_closed: bool = False,
    leads_per_partition: int = LEADS_PER_PARTITION,
    progress: bool = True,
) -> dict[str, int]:
    """`leadscore.jobs.batch.score_export` on a Dask cluster: the same answers, computed per partition of leads.
    Workers must see `out`'s folder (a shared file system on a multi-machine cluster)."""
    out, kind = output_kind(out, chunk_size)
    loaded = load_export(data_dir, only=("leads", "outcomes"))
    if loaded.errors:
        raise ContractError(f"{data_dir}: the export has errors; `leadscore validate --data {data_dir}` lists them")
    tables = loaded.tables
    n = partition_count(len(tables["leads"]), leads_per_partition, _workers(client))
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        partition_events(data_dir, scratch, n)
        partition_lead_tables(tables, scratch, n)
        checked = client.map(_check_partition, [scratch] * n, range(n))
        problems, latest = _gather_checks(client, checked, progress)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            shown = "; ".join(str(p) for p in errors[:5])
            raise ContractError(f"{data_dir}: the export has {len(errors)} errors, e.g. {shown}")
        stamps = [tables["leads"]["created_at"].max(), tables["outcomes"]["closed_at"].max(), *latest]
        when = max(s for s in stamps if pd.notna(s)).tz_convert(TIMEZONE) if as_of is None else parse_as_of(as_of)
        snapshots = snapshots_to_score(tables, when, include_closed)
        context = artifact.pipeline.context(tables, snapshots)
        snapshot_part = partition_of(snapshots["lead_id"], n)
        [model, owner_tables] = client.scatter(
            [artifact, {name: tables[name] for name in ("leads", "outcomes")}], broadcast=True
        )
        jobs = []
        for i in range(n):
            rows = snapshot_part == i
            if rows.any():
                part_out = scratch / f"answers-{i:05d}{out.suffix}"
                job = client.submit(
                    _score_partition, model, scratch, i, snapshots[rows].reset_index(drop=True),
                    context[rows].reset_index(drop=True), part_out, kind, chunk_size, owner_tables, pure=False,
                )  # fmt: skip
                jobs.append((part_out, job))
        _wait(client, [job for _, job in jobs], len(snapshots), progress, "scoring (dask)")
        join_answer_files([path for path, _ in jobs], out, kind)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"leads": len(snapshots), "as_of": when.isoformat(), "partitions": n}


def partition_events(data_dir: str | Path, scratch: Path, n_partitions: int) -> None:
    """Each event table split by partition of lead into `scratch/<table>/_part=<i>/` with Dask's dataframe
    reader and writer: the events are never gathered in one process."""
    import dask.dataframe as dd

    for name in EVENT_TABLES:
        path = table_file(data_dir, name)
        if path is None:
            continue
        if path.suffix == ".parquet":
            frame = dd.read_parquet(path, split_row_groups=True)  # a task per row group: bounded memory
        else:  # one block per file: a quoted note may span lines, so a CSV cannot be cut at any newline
            frame = dd.read_csv(path, dtype=str, keep_default_na=False, blocksize=None, encoding="utf-8-sig")
        if "lead_id" not in frame.columns:
            raise ContractError(f"{path.name}: no lead_id column")
        frame[PART] = frame["lead_id"].map_partitions(_part_series, n_partitions, meta=(PART, "int64"))
        frame.to_parquet(scratch / name, partition_on=[PART], write_index=False)


def _part_series(lead_ids: pd.Series, n_partitions: int) -> pd.Series:
    return pd.Series(partition_of(lead_ids, n_partitions), index=lead_ids.index)


def partition_lead_tables(tables: dict[str, pd.DataFrame], scratch: Path, n_partitions: int) -> None:
    """The validated leads and outcomes tables, a file per partition: a task then carries only its number
    (tasks queued on a worker would otherwise hold their partitions' leads while they wait)."""
    lead_level = {name: tables[name] for name in ("leads", "outcomes")}
    for name in lead_level:
        (scratch / name).mkdir()
    for i, part in enumerate(split_by_lead(lead_level, n_partitions)):
        for name, chunk in part.items():
            chunk.to_pickle(scratch / name / f"{i}.pkl")  # pickle keeps the validated dtypes exactly


def _read_partition(scratch: Path, i: int):
    """One partition's tables, the event tables validated as `load_export` validates them."""
    leads, outcomes = (pd.read_pickle(scratch / name / f"{i}.pkl") for name in ("leads", "outcomes"))
    tables, problems = {"leads": leads, "outcomes": outcomes}, []
    for name in EVENT_TABLES:
        folder = scratch / name / f"{PART}={i}"
        if not folder.exists():
            tables[name] = empty_table(name)
            continue
        raw = pd.read_parquet(folder).drop(columns=PART, errors="ignore")
        result = validate_table(name, raw, pd.Index(leads["lead_id"]))
        tables.update(result.tables)
        problems += result.problems
    return tables, problems


def _check_partition(scratch: Path, i: int):
    tables, problems = _read_partition(scratch, i)
    latest = [tables[name]["ts"].max() for name in EVENT_TABLES if len(tables[name])]
    return problems, latest


def _gather_checks(client, futures, progress: bool) -> tuple[list[Problem], list[pd.Timestamp]]:
    from distributed import as_completed

    problems, latest = [], []
    for future in tqdm(as_completed(futures), total=len(futures), desc="validating (dask)", disable=not progress):
        found, stamps = future.result()
        problems += found
        latest += stamps
    return problems, latest


def _score_partition(artifact, scratch, i, snapshots, context, out: Path, kind: str, chunk_size: int, owner_tables):
    tables, _ = _read_partition(scratch, i)
    writer = AnswerWriter(out, kind)
    try:
        return score_snapshots(artifact, tables, snapshots, context, writer, chunk_size, owner_tables=owner_tables)
    finally:
        writer.close()
        ChineseTokenizer.forget_all()  # the next partition's leads share no notes with these


def _wait(client, futures, total: int, progress: bool, description: str) -> None:
    from distributed import as_completed

    with tqdm(total=total, desc=description, unit="lead", disable=not progress) as bar:
        for future in as_completed(futures):
            bar.update(future.result())


def join_answer_files(parts: list[Path], out: Path, kind: str) -> None:
    """The partitions' answer files as one file, in partition order."""
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        present = [p for p in parts if p.exists()]
        # A column that is empty in one part (all null) takes its type from the others.
        schema = pa.unify_schemas([pq.read_schema(p) for p in present], promote_options="permissive")
        with pq.ParquetWriter(out, schema) as writer:
            for path in present:
                writer.write_table(pq.read_table(path).cast(schema))
        return
    header_written = False
    with open(out, "w", encoding="utf-8") as joined:
        for path in parts:
            if not path.exists():
                continue
            with open(path, encoding="utf-8") as part:
                if kind == "csv":
                    header = part.readline()
                    if not header_written and header:
                        joined.write(header)
                        header_written = True
                shutil.copyfileobj(part, joined)
