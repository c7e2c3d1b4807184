"""`--from mapping`: any set of CSV / Excel / JSON tables described by a YAML file. This is how most Chinese
SMB exports get in (简道云 `_widget_` columns, 搭贝 and Excel sheets, GBK files), and the three public
datasets in configs/import/ (zoho.yaml, maven.yaml, olist.yaml). docs/import.md documents the format; in
short:

    timezone: Asia/Shanghai            # for times written without an offset
    sources:                           # name -> file (path relative to --source), encoding, sheet, records
      leads: {file: 线索.csv}
    leads:                             # one block; the other tables take a block or a list of blocks
      from: leads
      join: [{source: accounts, match: {account: account}}]   # left joins; their columns as accounts.<col>
      skip_if_empty: [LEADID]          # rows to leave out (and count) when these are empty
      fields: {lead_id: 编号, created_at: {column: 创建时间, format: "%Y/%m/%d %H:%M"}}
      extra: {team: 部门}              # extra lead attributes
    outcomes: {from: leads, fields: {status: {column: 状态, map: {赢单: won, 输单: lost}, default: open}}}
    exclude: {leads.成交金额: only known for won deals}   # fields deliberately not mapped, with the reason
    keep_despite_guard: []

A field is a column name, or {column | columns (first non-empty) | join (concatenated) | value (a
constant)} with optional map (+ unmapped: keep | empty | a value), default, format, date_only, epoch_ms,
timezone, scale, html, first (first element of a list), key (one key of an object, e.g. a member widget).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contract import TABLES, ContractResult
from leadscore.tools.importers.base import (
    CONTRACT_FIELDS,
    ImportConfigError,
    Staging,
    each,
    finish,
    load_yaml,
    numbers,
)
from leadscore.tools.importers.files import SourceTable, read_source
from leadscore.tools.importers.report import ImportReport
from leadscore.tools.importers.values import TimeSpec, iso_or_marker, parse_times, strip_html

BLOCK_KEYS = {"from", "join", "fields", "extra", "skip_if_empty", "skip_if", "description"}
FIELD_KEYS = {"column", "columns", "join", "value", "map", "unmapped", "default", "format", "date_only", "epoch_ms",
              "timezone", "scale", "html", "first", "key", "separator", "type"}  # fmt: skip


def import_export(source: Path, mapping: Path | None) -> tuple[ContractResult, ImportReport]:
    config = load_yaml(mapping)
    unknown = set(config) - {"description", "timezone", "sources", "exclude", "keep_despite_guard", *TABLES}
    if unknown:
        raise ImportConfigError(f"{mapping}: unknown keys {', '.join(sorted(unknown))}")
    report = ImportReport("mapping", str(source))
    report.assume(f"mapping file: {mapping}")
    tz = str(config.get("timezone", "Asia/Shanghai"))
    report.assume(f"times written without an offset are in {tz} (the mapping's timezone)")
    sources = _read_sources(source, config.get("sources") or {}, report, mapping)
    staging = Staging(report)
    if "leads" not in config:
        raise ImportConfigError(f"{mapping}: a 'leads' block is required")
    for table in TABLES:
        blocks = config.get(table) or []
        for block in blocks if isinstance(blocks, list) else [blocks]:
            _stage_block(table, block, sources, tz, staging, mapping)
    for where, reason in (config.get("exclude") or {}).items():
        table, _, field_name = str(where).partition(".")
        report.exclude(table, field_name or table, str(reason))
    keep = [str(k) for k in config.get("keep_despite_guard") or []]
    return finish(staging, keep), report


def _read_sources(root: Path, spec: dict[str, Any], report: ImportReport, mapping: Path) -> dict[str, SourceTable]:
    if not isinstance(spec, dict) or not spec:
        raise ImportConfigError(f"{mapping}: 'sources' must name at least one file (name: {{file: ...}})")
    base = root if root.is_dir() else root.parent
    tables = {}
    for name, entry in spec.items():
        entry = {"file": entry} if isinstance(entry, str) else dict(entry or {})
        if "file" not in entry:
            raise ImportConfigError(f"{mapping}: source {name!r} needs a file")
        table = read_source(base / str(entry["file"]), str(name), encoding=str(entry.get("encoding", "auto")),
                            sheet=entry.get("sheet"), records=entry.get("records"))  # fmt: skip
        report.read(table.name, len(table))
        for note in table.notes:
            report.warn(note)
        tables[str(name)] = table
    return tables


@dataclass
class _Rows:
    """The rows of one block: the main source's frame with its joined sources' columns."""

    frame: pd.DataFrame
    labels: list[str]
    source: str


def _stage_block(table: str, block: Any, sources: dict[str, SourceTable], tz: str, staging: Staging,
                 mapping: Path) -> None:  # fmt: skip
    where = f"{mapping}: {table}"
    if not isinstance(block, dict) or "from" not in block or "fields" not in block:
        raise ImportConfigError(f"{where}: a block needs 'from' (a source name) and 'fields'")
    unknown = set(block) - BLOCK_KEYS
    if unknown:
        raise ImportConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    main = sources.get(str(block["from"]))
    if main is None:
        raise ImportConfigError(f"{where}: no source named {block['from']!r} (sources: {', '.join(sources)})")
    rows = _joined(main, block.get("join") or [], sources, staging.report, where)
    rows = _skip(rows, block, staging.report, where)
    fields = dict(block["fields"])
    missing = [f for f in TABLES[table].required if f not in fields]
    if missing:
        raise ImportConfigError(f"{where}: required fields not mapped: {', '.join(missing)}")
    unknown_fields = set(fields) - set(CONTRACT_FIELDS[table])
    if unknown_fields:
        raise ImportConfigError(
            f"{where}: {', '.join(sorted(unknown_fields))} are not {table} fields of the contract"
            + (" (put extra lead attributes under 'extra')" if table == "leads" else "")
        )
    out, used = {}, {}
    for name, spec in fields.items():
        out[name], used[name] = _field(rows, spec, CONTRACT_FIELDS[table][name].type, tz, staging.report, where, name)
    if table == "leads":
        for name, spec in (block.get("extra") or {}).items():
            if name in CONTRACT_FIELDS["leads"]:
                raise ImportConfigError(f"{where}: extra attribute {name!r} is a contract field: map it under fields")
            kind = "timestamp" if isinstance(spec, dict) and ("format" in spec or "date_only" in spec) else "string"
            out[name], used[name] = _field(rows, spec, kind, tz, staging.report, where, name)
    elif block.get("extra"):
        raise ImportConfigError(f"{where}: 'extra' attributes are only kept on leads")
    staging.add(table, pd.DataFrame(out), rows.source, rows.labels, used)


def _joined(main: SourceTable, joins: list, sources: dict[str, SourceTable], report: ImportReport,
            where: str) -> _Rows:  # fmt: skip
    frame = main.frame.reset_index(drop=True).copy()
    for join in joins:
        other = sources.get(str(join.get("source"))) if isinstance(join, dict) else None
        if other is None or not isinstance(join.get("match"), dict) or not join["match"]:
            raise ImportConfigError(
                f"{where}: each join needs source (a source name) and match: {{column: column}} (YAML reads a bare `on` as true)"
            )
        left_keys, right_keys = list(join["match"]), list(join["match"].values())
        absent = [c for c in left_keys if c not in frame] + [c for c in right_keys if c not in other.frame]
        if absent:
            raise ImportConfigError(f"{where}: join on columns not found: {', '.join(map(str, absent))}")
        keys = frame[left_keys].copy()
        for column, replace in (join.get("normalise") or {}).items():
            keys[column] = keys[column].replace({str(k): str(v) for k, v in replace.items()})
        report.stats(other.name).joined_into = ", ".join(
            filter(None, [report.stats(other.name).joined_into, main.name])
        )
        right = other.frame.copy()
        repeated = right.duplicated(right_keys)
        if repeated.any():
            report.warn(f"{other.name}: {int(repeated.sum())} rows repeat a join key; the first is used")
        right = right[~repeated]
        right.columns = [f"{other.name}.{c}" for c in right.columns]
        merged = keys.merge(right, how="left", left_on=left_keys,
                            right_on=[f"{other.name}.{c}" for c in right_keys])  # fmt: skip
        has_key = (keys[left_keys[0]].astype("string").str.strip().fillna("") != "").to_numpy()
        unmatched = int((has_key & merged[f"{other.name}.{right_keys[0]}"].isna().to_numpy()).sum())
        if unmatched:
            report.warn(f"{main.name}: {unmatched} rows find no {other.name} row on {', '.join(left_keys)}")
        frame = pd.concat([frame, merged.drop(columns=left_keys).reset_index(drop=True)], axis=1)
    return _Rows(frame, list(main.row_labels), main.name)


def _skip(rows: _Rows, block: dict, report: ImportReport, where: str) -> _Rows:
    keep = np.ones(len(rows.frame), dtype=bool)
    for name in block.get("skip_if_empty") or []:
        values = _column(rows, str(name), where)
        empty = (values.astype("string").str.strip().fillna("") == "").to_numpy()
        report.skip(rows.source, int((empty & keep).sum()), f"no {name}: not linked to a lead")
        keep &= ~empty
    for rule in block.get("skip_if") or []:
        if not isinstance(rule, dict) or "column" not in rule or "in" not in rule:
            raise ImportConfigError(f"{where}: skip_if rules are {{column, in: [values], reason}}")
        values = _column(rows, str(rule["column"]), where).astype("string").str.strip()
        hit = values.isin([str(v) for v in rule["in"]]).fillna(False).to_numpy()
        report.skip(rows.source, int((hit & keep).sum()), str(rule.get("reason", f"{rule['column']} in {rule['in']}")))
        keep &= ~hit
    labels = [label for label, k in zip(rows.labels, keep, strict=True) if k]
    return _Rows(rows.frame[keep].reset_index(drop=True), labels, rows.source)


def _column(rows: _Rows, name: str, where: str) -> pd.Series:
    if name in rows.frame.columns:
        return rows.frame[name]
    raise ImportConfigError(f"{where}: column {name!r} not found in {rows.source} (or its joins); it has: "
                            f"{', '.join(map(str, list(rows.frame.columns)[:40]))}")  # fmt: skip


def _field(rows: _Rows, spec: Any, kind: str, tz: str, report: ImportReport, where: str, name: str):
    """One contract (or extra) field from its spec: the values and a description of the source."""
    if isinstance(spec, str):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        raise ImportConfigError(f"{where}.{name}: a field is a column name or a mapping (column, map, ...)")
    unknown = set(spec) - FIELD_KEYS
    if unknown:
        raise ImportConfigError(f"{where}.{name}: unknown keys {', '.join(sorted(unknown))}")
    kind = spec.get("type", kind)
    n = len(rows.frame)
    if "value" in spec:
        values, described = pd.Series([spec["value"]] * n, dtype=object), f"(constant {spec['value']!r})"
    elif "columns" in spec:
        values = pd.Series([None] * n, dtype=object)
        for column in spec["columns"]:
            more = _column(rows, str(column), where)
            empty = values.isna() | (values.astype("string").str.strip() == "").fillna(True)
            values = values.where(~empty, more)
        described = " / ".join(map(str, spec["columns"]))
    elif "join" in spec:
        parts = [_column(rows, str(c), where).astype("string").str.strip().fillna("") for c in spec["join"]]
        separator = str(spec.get("separator", " "))
        values = pd.Series(
            [separator.join(p for p in ps if p) or None for ps in zip(*parts, strict=True)], dtype=object
        )
        described = " + ".join(map(str, spec["join"]))
    elif "column" in spec:
        values, described = _column(rows, str(spec["column"]), where).reset_index(drop=True), str(spec["column"])
    else:
        raise ImportConfigError(f"{where}.{name}: give column, columns, join or value")
    if spec.get("first"):
        values = each(values, lambda v: (v[0] if v else None) if isinstance(v, list) else v)
    if "key" in spec:  # a member or lookup widget: {"name": ..., "username": ...}
        key = str(spec["key"])
        values = each(values, lambda v: v.get(key) if isinstance(v, dict) else v)
    if spec.get("html"):
        values = each(values, strip_html)
    if "map" in spec:
        values = _mapped(values, spec, where, name)
    if "default" in spec:
        empty = values.isna() | (values.astype("string").str.strip() == "").fillna(True)
        values = values.where(~empty, spec["default"])
    if kind == "timestamp":
        time_spec = TimeSpec(str(spec.get("timezone", tz)), spec.get("format"), bool(spec.get("epoch_ms")),
                             bool(spec.get("date_only")))  # fmt: skip
        parsed, bad = parse_times(values, time_spec)
        report.assume(f"{rows.source}.{described}: {time_spec.describe()}")
        return iso_or_marker(parsed, bad), described
    if kind in ("number", "integer"):
        out = numbers(values)
        if "scale" in spec:
            out = [v * float(spec["scale"]) if isinstance(v, float) else v for v in out]
            described += f" x {spec['scale']}"
        return out, described
    text = each(values, lambda v: None if v is None or (isinstance(v, float) and v != v) else v)
    return text.tolist(), described + (" (value map)" if "map" in spec else "")


def _mapped(values: pd.Series, spec: dict, where: str, name: str) -> pd.Series:
    mapping = spec["map"]
    if not isinstance(mapping, dict):
        raise ImportConfigError(f"{where}.{name}: map must be {{source value: contract value}}")
    mapping = {str(k): v for k, v in mapping.items()}
    unmapped = spec.get("unmapped", "keep")

    def one(value: Any) -> Any:
        if value is None or (isinstance(value, float) and value != value):
            return None
        key = str(value).strip()
        if key in mapping:
            return mapping[key]
        return value if unmapped == "keep" else None if unmapped == "empty" else unmapped

    return each(values, one).astype(object)
