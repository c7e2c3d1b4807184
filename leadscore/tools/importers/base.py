"""What every importer shares: staged contract rows that remember their source table and row, the outcome
rules and leak guards applied to all of them, validation by the data contract, and writing the export.

An importer reads its vendor's files and `stage`s rows in the contract's columns; `finish` then
1. applies the outcome rules: a lost lead without a date is open (censored); a won lead without a date is
   left out (its win cannot be placed in time); a close date on an open lead is an expected date, dropped;
2. runs the leak guards on the lead fields (leadscore/tools/importers/guards.py);
3. validates every table with `features.contract.validate_table` (leads first, then the others against the
   leads kept), so a bad row is reported by source table, row and field and the good rows go on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from features.contract import TABLES, ContractResult, Problem, empty_table, parse_timestamps, validate_table
from leadscore.tools.importers.files import SourceTable
from leadscore.tools.importers.guards import find_leaks
from leadscore.tools.importers.report import ImportReport
from leadscore.tools.importers.values import TimeSpec, iso_or_marker, parse_numbers, parse_times

CONTRACT_FIELDS = {name: {f.name: f for f in table.fields} for name, table in TABLES.items()}
INTERNAL = ["_src_table", "_src_row", "_pos"]


class ImportConfigError(ValueError):
    """The mapping file cannot be used; the message names the key and what is wrong."""


@dataclass
class Options:
    """Settings of a vendor importer, from the optional --mapping YAML file (all keys optional):

    timezone: zone of timestamps written without an offset (vendor default otherwise)
    date_timezone: zone whose calendar the date-only fields use (default: timezone)
    stage_map: {source stage name or id: contract stage}, added to the vendor's standard stages
    status_map: {source lead/opportunity status: won | lost | open}
    channel_map: {source lead source: contract channel}
    role_map: {user title or department: contract actor_role}
    currency_rate: CNY per unit of the source currency (amounts are left empty without it unless CNY)
    currency: the source currency (default USD for Salesforce/HubSpot, CNY for fxiaoke/Odoo)
    keep_despite_guard: lead fields the leak guards would leave out but that you know are filled at creation
    exported_at: when the export was taken (default: its latest timestamp)
    lead_fields: {source field of the lead object: contract lead field or extra attribute name}, for custom
        fields (Budget__c, x_studio_budget, field_abc__c); the leak guards check them like the others
    """

    timezone: str | None = None
    date_timezone: str | None = None
    stage_map: dict[str, str] = field(default_factory=dict)
    status_map: dict[str, str] = field(default_factory=dict)
    channel_map: dict[str, str] = field(default_factory=dict)
    role_map: dict[str, str] = field(default_factory=dict)
    currency_rate: float | None = None
    currency: str | None = None
    keep_despite_guard: list[str] = field(default_factory=list)
    exported_at: str | None = None
    lead_fields: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> Options:
        if path is None:
            return cls()
        raw = load_yaml(path)
        known = {k for k in cls.__dataclass_fields__ if k != "extra"}
        options = cls(**{k: v for k, v in raw.items() if k in known})
        options.extra = {k: v for k, v in raw.items() if k not in known}
        for key in ("stage_map", "status_map", "channel_map", "role_map", "lead_fields"):
            value = getattr(options, key)
            if not isinstance(value, dict):
                raise ImportConfigError(f"{path}: {key} must map source values to contract values")
            setattr(options, key, {str(k): v for k, v in value.items()})
        bad = {k: v for k, v in options.status_map.items() if v not in ("won", "lost", "open")}
        if bad:
            raise ImportConfigError(f"{path}: status_map values must be won, lost or open (not {bad})")
        return options


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ImportConfigError(f"mapping file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ImportConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ImportConfigError(f"{path}: the mapping file must be a YAML mapping of keys to settings")
    return raw


class Staging:
    """Contract rows as an importer maps them, before validation, each with its source table and row."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.frames: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
        self.sources: dict[tuple[str, str], dict[str, str]] = {}  # (contract table, source table) -> field map

    def add(self, table: str, frame: pd.DataFrame, source: str, rows: Sequence[str], fields: dict[str, str]) -> None:
        """`frame`: contract columns (and extra lead attributes) for some rows of `source`; `rows`: the
        source row label of each; `fields`: contract field -> the source field(s) it came from."""
        if len(frame) != len(rows):
            raise ValueError(f"{source}: {len(frame)} staged rows but {len(rows)} row labels")
        if not len(frame):
            return
        frame = frame.reset_index(drop=True).copy()
        frame["_src_table"], frame["_src_row"] = source, list(rows)
        self.frames[table].append(frame)
        self.sources.setdefault((table, source), {}).update(fields)
        for contract_field, source_field in fields.items():
            self.report.map(source, source_field, f"{table}.{contract_field}")

    def table(self, name: str) -> pd.DataFrame:
        frames = [f for f in self.frames[name] if len(f)]
        if not frames:
            return pd.DataFrame(columns=[f.name for f in TABLES[name].fields] + INTERNAL[:2])
        return pd.concat(frames, ignore_index=True)

    def source_field(self, table: str, source: str, contract_field: str) -> str:
        return self.sources.get((table, source), {}).get(contract_field, contract_field)


def times(table: SourceTable, column: str, spec: TimeSpec, report: ImportReport) -> list[str | None]:
    """A source time column as contract timestamps; says in the report how it was read."""
    values = table.frame[column] if column in table.frame else pd.Series([None] * len(table))
    parsed, bad = parse_times(values, spec)
    report.assume(f"{table.name}.{column}: {spec.describe()}")
    return iso_or_marker(parsed, bad)


def numbers(values: pd.Series) -> list[object]:
    """Numbers as floats; an unreadable one is passed on as the marker, so the contract reports it."""
    parsed, bad = parse_numbers(values)
    return ["unparseable" if b else (None if np.isnan(v) else float(v)) for v, b in zip(parsed, bad, strict=True)]


def each(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """`func` on every value, as plain Python objects: pandas 3's `Series.map` infers a str dtype and turns
    the None a function returns into NaN, which is truthy and a valid dict key."""
    return pd.Series([func(v) for v in values], index=values.index, dtype=object)


def column(table: SourceTable, name: str) -> pd.Series:
    """A source column, or an empty one if the export does not have it."""
    if name in table.frame.columns:
        return table.frame[name].reset_index(drop=True)
    return pd.Series([None] * len(table), dtype=object)


def first_present(table: SourceTable, *names: str) -> pd.Series:
    """The first non-empty value among several source columns (e.g. MobilePhone, then Phone)."""
    out = pd.Series([None] * len(table), dtype=object)
    for name in names:
        values = column(table, name)
        text = values.astype("string").str.strip()
        fill = out.isna() & text.notna() & (text != "")
        out[fill] = values[fill]
    return out


def custom_lead_fields(table: SourceTable, options: Options, spec: TimeSpec) -> tuple[pd.DataFrame, dict[str, str]]:
    """The custom source fields the mapping file adds to the leads table (`lead_fields`), typed as the
    contract field they fill (times in `spec`), or kept as text for an extra attribute."""
    out, fields = {}, {}
    for source_field, target in options.lead_fields.items():
        if source_field not in table.frame:
            table_name = table.name
            raise ImportConfigError(f"lead_fields: {source_field!r} is not a field of {table_name} ({table.path.name})")
        kind = CONTRACT_FIELDS["leads"][target].type if target in CONTRACT_FIELDS["leads"] else "string"
        values = column(table, source_field)
        if kind == "timestamp":
            out[target] = iso_or_marker(*parse_times(values, spec))
        elif kind in ("number", "integer"):
            out[target] = numbers(values)
        else:
            out[target] = values.map(lambda v: v if isinstance(v, str) and v.strip() else None).tolist()
        fields[target] = source_field
    return pd.DataFrame(out, index=range(len(table))), fields


def map_values(values: pd.Series, mapping: dict[str, Any], keep_unknown: bool = True) -> pd.Series:
    """Source labels -> contract values; unknown labels kept as they are (the contract keeps unknown
    categories) unless keep_unknown is False."""
    text = values.astype("string").str.strip()
    mapped = text.map(lambda v: mapping.get(v, v if keep_unknown else None) if isinstance(v, str) else None)
    return mapped.astype(object).where(mapped.notna(), None)


# --------------------------------------------------------------------------------------------- finishing


def finish(staging: Staging, keep_despite_guard: Sequence[str] = ()) -> ContractResult:
    """Outcome rules, leak guards and contract validation of everything staged; fills the report."""
    report = staging.report
    staged = {name: staging.table(name) for name in TABLES}
    staged = _outcome_rules(staged, staging)
    staged["leads"] = _guard_leads(staged, staging, set(keep_despite_guard))

    tables: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    for name in TABLES:
        frame = staged[name].reset_index(drop=True)
        frame["_pos"] = np.arange(len(frame))
        known = pd.Index(tables["leads"]["lead_id"]) if name != "leads" else None
        result = validate_table(name, frame, known) if len(frame) else ContractResult({name: empty_table(name)})
        kept = result.tables[name]
        _report_problems(result.problems, frame, kept, name, staging)
        problems += result.problems
        tables[name] = kept
    _count_kept(tables, report)
    tables = {name: frame.drop(columns=[c for c in INTERNAL if c in frame.columns]) for name, frame in tables.items()}
    report.contract_rows = {name: len(frame) for name, frame in tables.items()}
    return ContractResult(tables, problems)


def _outcome_rules(staged: dict[str, pd.DataFrame], staging: Staging) -> dict[str, pd.DataFrame]:
    report = staging.report
    outcomes = staged["outcomes"]
    if not len(outcomes):
        return staged
    closed_at = parse_timestamps(outcomes["closed_at"].astype("string"))
    unreadable = (outcomes["closed_at"] == "unparseable").to_numpy()
    status = outcomes["status"]
    for source, rows in outcomes[(status == "open") & closed_at.notna()].groupby("_src_table"):
        field_name = staging.source_field("outcomes", source, "closed_at")
        report.warn(f"{source}: {len(rows)} open leads carry a date in {field_name}: an expected close date, "
                    "never a close time; ignored")  # fmt: skip
    for pos in np.flatnonzero(unreadable & status.isin(["won", "lost"]).to_numpy()):
        source = outcomes.at[pos, "_src_table"]
        report.problem(source, outcomes.at[pos, "_src_row"], staging.source_field("outcomes", source, "closed_at"),
                       "outcomes.closed_at", "not a readable time: the close is undated", "error")  # fmt: skip
    outcomes.loc[(status == "open") | unreadable, "closed_at"] = None
    lost_undated = (status == "lost") & closed_at.isna()
    for source, rows in outcomes[lost_undated].groupby("_src_table"):
        report.warn(f"{source}: {len(rows)} leads lost without a date: treated as open (censored at the export), "
                    "since a loss that cannot be placed in time cannot label any snapshot")  # fmt: skip
    outcomes.loc[lost_undated, "status"] = "open"
    staged["outcomes"] = outcomes
    dropped = set(outcomes.loc[(outcomes["status"] == "won") & closed_at.isna(), "lead_id"].dropna())
    if dropped:
        reason = "won without a date: lead left out (its win cannot be placed in time)"
        for name, frame in staged.items():
            gone = frame["lead_id"].isin(dropped).to_numpy()
            for source, rows in frame[gone].groupby("_src_table"):
                report.skip(source, len(rows), reason)
            staged[name] = frame[~gone].reset_index(drop=True)
        report.warn(f"{len(dropped)} leads won without a date were left out")
    # A close before the lead was created: kept (the contract allows it), but such leads give no snapshots.
    outcomes, leads = staged["outcomes"], staged["leads"].drop_duplicates("lead_id")
    created = parse_timestamps(outcomes["lead_id"].map(leads.set_index("lead_id")["created_at"]).astype("string"))
    early = int((parse_timestamps(outcomes["closed_at"].astype("string")) < created).sum())
    if early:
        report.warn(f"{early} leads closed before they were created (a source data error): kept, but they yield "
                    "no training snapshots")  # fmt: skip
    return staged


def _guard_leads(staged: dict[str, pd.DataFrame], staging: Staging, keep: set[str]) -> pd.DataFrame:
    leads = staged["leads"]
    if not len(leads):
        return leads
    for finding in find_leaks(leads, staged["outcomes"]):
        sources = sorted(set(leads.loc[leads[finding.field].notna(), "_src_table"]))
        names = [staging.source_field("leads", s, finding.field) for s in sources]
        if finding.field in keep or set(names) & keep:
            staging.report.warn(f"leads.{finding.field} kept as configured (keep_despite_guard) although "
                                f"{finding.reason}")  # fmt: skip
            continue
        for source, name in zip(sources, names, strict=True):
            staging.report.exclude(source, name, f"{finding.reason} (leads.{finding.field} left empty)")
        leads = leads.drop(columns=finding.field)
    return leads


_LINE = re.compile(r"line (\d+)\)?$")


def _report_problems(problems: list[Problem], frame: pd.DataFrame, kept: pd.DataFrame, name: str,
                     staging: Staging) -> None:  # fmt: skip
    """Each contract problem, named by the source table, row and field it came from."""
    report = staging.report
    kept_pos = set(kept["_pos"].tolist()) if "_pos" in kept else set()
    rejected: dict[tuple[str, str], str] = {}
    for problem in problems:
        positions = _positions(problem, frame, kept_pos)
        if not positions:
            report.problem(name, problem.row, problem.field, f"{name}.{problem.field}", problem.reason,
                           problem.severity)  # fmt: skip
            continue
        for pos in positions:
            source, row = frame.at[pos, "_src_table"], frame.at[pos, "_src_row"]
            source_field = staging.source_field(name, source, problem.field)
            report.problem(source, row, source_field, f"{name}.{problem.field}", problem.reason, problem.severity)
            if problem.severity == "error" and pos not in kept_pos:
                rejected.setdefault((source, row), f"{name}.{problem.field}: {problem.reason}")
    for (source, _row), reason in rejected.items():
        report.stats(source).rejected[_generic(reason)] += 1


def _positions(problem: Problem, frame: pd.DataFrame, kept_pos: set[int]) -> list[int]:
    match = _LINE.search(problem.row)
    if match:
        return [int(match.group(1)) - 2]
    if problem.row in ("*", "...") or "lead_id" not in frame:
        return []
    candidates = np.flatnonzero((frame["lead_id"].astype("string") == problem.row).fillna(False).to_numpy())
    if problem.severity == "error":
        dropped = [int(i) for i in candidates if int(i) not in kept_pos]
        return dropped or [int(i) for i in candidates]
    return [int(i) for i in candidates]


def _generic(reason: str) -> str:
    """A problem's reason without row-specific parts, to count rejected rows by reason."""
    return re.sub(r"\d+ more rows: ", "", reason)


def _count_kept(tables: dict[str, pd.DataFrame], report: ImportReport) -> None:
    kept: dict[str, set] = {}
    for frame in tables.values():
        if len(frame) and "_src_table" in frame:
            for source, row in zip(frame["_src_table"], frame["_src_row"], strict=True):
                kept.setdefault(source, set()).add(row)
    for source, stats in report.sources.items():
        stats.kept = len(kept.get(source, ()))


def write_export(tables: dict[str, pd.DataFrame], out: Path, table_format: str = "csv") -> list[Path]:
    """The contract tables as `<table>.csv` (timestamps ISO 8601 with offset) or `<table>.parquet`; the
    leads table always, the others when they have rows."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.items():
        for stale in (out / f"{name}.csv", out / f"{name}.parquet"):
            stale.unlink(missing_ok=True)
        if name != "leads" and not len(frame):
            continue
        path = out / f"{name}.{table_format}"
        if table_format == "parquet":
            frame.to_parquet(path, index=False)
        else:
            text = frame.copy()
            for col in text.columns:
                if isinstance(text[col].dtype, pd.DatetimeTZDtype):
                    text[col] = text[col].map(lambda t: t.isoformat() if pd.notna(t) else "")
            text.to_csv(path, index=False, encoding="utf-8")
        written.append(path)
    return written
