"""The CRM data contract (shared/crm-contract.md, version 1), declared once and validated at every boundary.

`load_export(dir)` reads a directory of CSV or Parquet tables; `request_to_tables(request)` turns the
online JSON request into the same tables. Both return a `ContractResult`: clean tables plus the list of
problems, each naming table, row (lead_id), field and reason. A bad row is reported and skipped; a bad
optional value is reported and set missing; the good rows go on.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

CONTRACT_VERSION = 1
TIMEZONE = "Asia/Shanghai"

FieldType = Literal["string", "timestamp", "integer", "number"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    choices: tuple[str, ...] = ()  # canonical values; unknown ones are kept as their own category


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[Field, ...]
    one_row_per_lead: bool = False

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def choices_of(self, field_name: str) -> tuple[str, ...]:
        """The canonical values of one field."""
        return next(f.choices for f in self.fields if f.name == field_name)


def _f(name: str, type_: FieldType = "string", required: bool = False, choices: str | tuple[str, ...] = "") -> Field:
    return Field(name, type_, required, tuple(choices.split()) if isinstance(choices, str) else choices)


# The stage ladder, in order: eight open stages, then the two closed ones. Every module reads it from here.
STAGE_LADDER: tuple[str, ...] = (
    "新线索",
    "初步接触",
    "需求确认",
    "方案沟通",
    "样品验证",
    "报价",
    "招标比价",
    "合同谈判",
    "赢单",
    "丢单",
)
OPEN_STAGES: tuple[str, ...] = STAGE_LADDER[:8]
WON_STAGE, LOST_STAGE = STAGE_LADDER[8], STAGE_LADDER[9]
CLOSED_STAGE = {"won": WON_STAGE, "lost": LOST_STAGE}  # outcome status -> its stage
STAGE_RANK = {stage: rank for rank, stage in enumerate(STAGE_LADDER)}
OUTCOME_STATUSES = ("won", "lost", "open")
# The attachment that evidences a recorded stage (the seeds' stage evidence check).
STAGE_EVIDENCE = {"方案沟通": "方案", "报价": "报价单", "招标比价": "技术协议", "合同谈判": "合同", "赢单": "付款凭证"}
TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "leads",
            (
                _f("lead_id", required=True),
                _f("created_at", "timestamp", required=True),
                _f("channel", choices="官网表单 抖音 小红书 百度 企业微信 展会 400电话 短信 转介绍 其他"),
                _f("campaign"),
                _f("province"),
                _f("city"),
                _f("industry"),
                _f("customer_type", choices="品牌方 经销商 终端用户 个人创业者"),
                _f("company_name"),
                _f("company_size", "integer"),
                _f("budget_cny", "number"),
                _f("form_text"),
                _f("phone"),
                _f("email"),
                _f("owner_id"),
                _f("assigned_at", "timestamp"),
            ),
            one_row_per_lead=True,
        ),
        Table(
            "web_events",
            (
                _f("lead_id", required=True),
                _f("ts", "timestamp", required=True),
                _f(
                    "event_type",
                    required=True,
                    choices="page_view download form_submit webinar live_chat video_view email_open email_click",
                ),
                _f("page_category", choices="product pricing case_study docs download careers about blog other"),
                _f("page"),
                _f("dwell_seconds", "number"),
            ),
        ),
        Table(
            "activities",
            (
                _f("lead_id", required=True),
                _f("ts", "timestamp", required=True),
                _f("actor_id"),
                _f("actor_role", choices="销售 售前 市场 客服 管理层"),
                _f("channel", choices="电话 微信 邮件 拜访 演示 会议 短信"),
                _f("direction", choices="outbound inbound"),
                _f("duration_seconds", "number"),
                _f("contact_role"),
                _f("note"),
                _f("attachment_type", choices="方案 报价单 测试报告 演示确认单 技术协议 合同 付款凭证 物流单"),
                _f("next_action"),
                _f("next_action_due", "timestamp"),
            ),
        ),
        Table(
            "stage_changes",
            (
                _f("lead_id", required=True),
                _f("ts", "timestamp", required=True),
                _f("stage", required=True, choices=STAGE_LADDER),
            ),
        ),
        Table(
            "outcomes",
            (
                _f("lead_id", required=True),
                _f("status", required=True, choices=OUTCOME_STATUSES),
                _f("closed_at", "timestamp"),
                _f("amount_cny", "number"),
            ),
            one_row_per_lead=True,
        ),
    ]
}
EVENT_TABLES = ["web_events", "activities", "stage_changes"]
NON_NEGATIVE = {"company_size", "budget_cny", "dwell_seconds", "duration_seconds", "amount_cny"}
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


class ContractError(ValueError):
    """The input cannot be used at all (e.g. the leads table is missing or unreadable)."""


@dataclass(frozen=True)
class Problem:
    table: str
    row: str  # lead_id where known, else the file line
    field: str
    reason: str
    severity: Literal["error", "warning"] = "error"
    lead_id: str | None = None

    def __str__(self) -> str:
        return f"{self.severity}: {self.table} row {self.row} field {self.field}: {self.reason}"


@dataclass
class ContractResult:
    tables: dict[str, pd.DataFrame]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def summary(self) -> str:
        rows = ", ".join(f"{name} {len(frame)}" for name, frame in self.tables.items())
        return f"rows kept: {rows}; {len(self.errors)} errors, {len(self.problems) - len(self.errors)} warnings"


def empty_table(name: str) -> pd.DataFrame:
    """A table with the contract's columns and dtypes and no rows."""
    return _coerce_types(pd.DataFrame({f.name: pd.Series([], dtype="object") for f in TABLES[name].fields}), name)


def _coerce_types(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    for f in TABLES[name].fields:
        if f.type == "timestamp":
            frame[f.name] = pd.to_datetime(frame[f.name], utc=True).dt.tz_convert(TIMEZONE)
        elif f.type in ("integer", "number"):
            frame[f.name] = pd.to_numeric(frame[f.name]).astype("float64")
        else:
            frame[f.name] = frame[f.name].astype("object").where(frame[f.name].notna(), None)
    return frame


# A CRM time outside these is a typo (0001-01-01, 9999-12-31) and beyond what nanosecond times hold.
_EARLIEST, _LATEST = pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 strings (or datetimes) to Asia/Shanghai timestamps; no offset means Asia/Shanghai; NaT if bad
    or outside 1900-2200."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(TIMEZONE).dt.as_unit("ns")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize(TIMEZONE, ambiguous="NaT", nonexistent="NaT").dt.as_unit("ns")
    text = values.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype=f"datetime64[ns, {TIMEZONE}]")
    has_offset = text.str.contains(_OFFSET, na=False)
    if has_offset.any():
        aware = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
        aware = aware.where(aware.between(_EARLIEST.tz_localize("UTC"), _LATEST.tz_localize("UTC")))
        out[has_offset] = aware.dt.tz_convert(TIMEZONE)
    naive_mask = ~has_offset & text.notna()
    if naive_mask.any():
        naive = pd.to_datetime(text[naive_mask], format="ISO8601", errors="coerce")
        naive = naive.where(naive.between(_EARLIEST, _LATEST))
        out[naive_mask] = naive.dt.tz_localize(TIMEZONE, ambiguous="NaT", nonexistent="NaT")
    return out


def _blank_to_na(frame: pd.DataFrame) -> pd.DataFrame:
    """Text values stripped, blank ones missing (None); what is not text yet becomes its text."""
    small = len(frame) <= 256  # an online request: plain Python beats pandas' string machinery here
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column]) or frame[column].dtype == object:
            if small:
                values = [None if _is_missing(v) else str(v).strip() for v in frame[column].tolist()]
                frame[column] = pd.Series([v or None for v in values], index=frame.index, dtype=object)
                continue
            stripped = frame[column].astype("string").str.strip()
            frame[column] = (
                stripped.mask(stripped == "").astype(object).where(stripped.notna() & (stripped != ""), None)
            )
    return frame


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def validate_table(name: str, raw: pd.DataFrame, known_leads: pd.Index | None = None) -> ContractResult:
    """Check and type one table: returns the good rows and a problem per bad value or row."""
    table = TABLES[name]
    problems: list[Problem] = []
    missing = [c for c in table.required if c not in raw.columns]
    if missing:
        reason = f"required column missing: {', '.join(missing)} (found: {', '.join(map(str, raw.columns)) or 'none'})"
        if name == "leads":
            raise ContractError(f"leads: {reason}")
        return ContractResult({name: empty_table(name)}, [Problem(name, "*", ",".join(missing), reason)])

    frame = _blank_to_na(raw.copy().reset_index(drop=True))
    frame.columns = [str(c).strip() for c in frame.columns]
    for f in table.fields:
        if f.name not in frame.columns:
            frame[f.name] = None
    row_label = _row_labels(frame, name)
    lead_ids = [v if isinstance(v, str) else None for v in frame["lead_id"].tolist()]
    bad_row = np.zeros(len(frame), dtype=bool)

    def report(mask: np.ndarray, field_name: str, reason: str, severity: str = "error") -> None:
        for i in np.flatnonzero(mask)[:1000]:  # a million bad rows need not mean a million messages
            problems.append(Problem(name, row_label[i], field_name, reason, severity, lead_ids[i]))  # type: ignore[arg-type]
        if mask.sum() > 1000:
            problems.append(Problem(name, "...", field_name, f"{int(mask.sum()) - 1000} more rows: {reason}", severity))  # type: ignore[arg-type]

    for f in table.fields:
        column = frame[f.name]
        present = column.notna().to_numpy()
        if f.required:
            report(~present, f.name, "required value is missing")
            bad_row |= ~present
        if f.type == "timestamp":
            parsed = parse_timestamps(column)
            unparsable = present & parsed.isna().to_numpy()
            _reject_or_blank(unparsable, f, "not an ISO 8601 timestamp", report, bad_row)
            frame[f.name] = parsed
        elif f.type in ("integer", "number"):
            parsed = pd.to_numeric(column, errors="coerce").astype("float64")
            unparsable = present & parsed.isna().to_numpy()
            _reject_or_blank(unparsable, f, f"not a {f.type}", report, bad_row)
            invalid = (~np.isfinite(parsed.fillna(0)) | ((parsed < 0) & (f.name in NON_NEGATIVE))).to_numpy()
            _reject_or_blank(invalid, f, "must be a finite, non-negative number", report, bad_row)
            frame[f.name] = parsed.where(~invalid)
        else:
            frame[f.name] = column.astype(object).where(column.notna(), None)
            if f.required and f.choices:
                unknown = present & ~column.isin(f.choices).to_numpy()
                if name == "outcomes":  # the label cannot be built from an unknown status
                    report(unknown, f.name, f"must be one of {', '.join(f.choices)}")
                    bad_row |= unknown

    if name == "outcomes":
        closed = frame["status"].isin(["won", "lost"]).to_numpy() & ~bad_row
        no_date = closed & frame["closed_at"].isna().to_numpy()
        report(no_date, "closed_at", "required when status is won or lost")
        bad_row |= no_date
    if table.one_row_per_lead:
        repeated = frame["lead_id"].duplicated().to_numpy() & frame["lead_id"].notna().to_numpy()
        report(repeated, "lead_id", "duplicated lead_id: the first row is kept")
        bad_row |= repeated
    if known_leads is not None and name != "leads":
        unknown_lead = frame["lead_id"].notna().to_numpy() & ~frame["lead_id"].isin(known_leads).to_numpy()
        report(unknown_lead & ~bad_row, "lead_id", "no such lead in the leads table")
        bad_row |= unknown_lead
    kept = frame.loc[~bad_row].reset_index(drop=True)
    ordered = [f.name for f in table.fields] + [c for c in kept.columns if c not in {f.name for f in table.fields}]
    return ContractResult({name: kept[ordered]}, problems)


def _reject_or_blank(mask, f: Field, reason: str, report, bad_row: np.ndarray) -> None:
    """A bad required value rejects the row; a bad optional value becomes missing, with a warning."""
    if f.required:
        report(mask, f.name, reason)
        bad_row |= mask
    else:
        report(mask, f.name, reason + "; set to missing", "warning")


def _row_labels(frame: pd.DataFrame, name: str) -> list[str]:
    ids = frame["lead_id"].tolist() if "lead_id" in frame else [None] * len(frame)
    line = np.arange(len(frame)) + 2  # header is line 1
    if TABLES[name].one_row_per_lead:
        return [str(i) if i is not None else f"line {n}" for i, n in zip(ids, line, strict=True)]
    return [f"{i} (line {n})" if i is not None else f"line {n}" for i, n in zip(ids, line, strict=True)]


def _read_file(path: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read one table file; an unreadable file is a problem, never an exception."""
    name = path.stem
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path), []
        raw = path.read_bytes()
        problems = []
        try:
            content = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            try:
                content = raw.decode("gb18030")
            except UnicodeDecodeError:
                return None, [
                    Problem(
                        name, "*", "*", f"file is neither UTF-8 nor GB18030 text ({exc.reason} at byte {exc.start})"
                    )
                ]
            problems.append(Problem(name, "*", "*", "file is not UTF-8; it was read as GB18030 (GBK)", "warning"))
        frame = pd.read_csv(io.StringIO(content), dtype=str, keep_default_na=False, on_bad_lines="error")
        return frame, problems
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes a reported problem
        return None, [Problem(name, "*", "*", f"cannot read {path.name}: {type(exc).__name__}: {exc}")]


def table_file(directory: str | Path, name: str) -> Path | None:
    """The export's file of a table (Parquet before CSV), or None."""
    return next((p for p in (Path(directory) / f"{name}.parquet", Path(directory) / f"{name}.csv") if p.exists()), None)


def load_export(directory: str | Path, only: tuple[str, ...] | None = None) -> ContractResult:
    """Load and validate a CRM export: a directory with leads.csv|parquet and optional event tables.
    `only` names the tables to read (the leads table always; the others are left empty)."""
    root = Path(directory)
    if not root.is_dir():
        raise ContractError(f"{root}: not a directory")
    problems: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        file = table_file(root, name) if only is None or name in only or name == "leads" else None
        files = [file] if file is not None else []
        if not files:
            if name == "leads":
                raise ContractError(f"{root}: no leads.csv or leads.parquet (the leads table is required)")
            tables[name] = empty_table(name)
            continue
        raw, read_problems = _read_file(files[0])
        problems += read_problems
        if raw is None:
            if name == "leads":
                raise ContractError("; ".join(str(p) for p in read_problems))
            tables[name] = empty_table(name)
            continue
        known = tables["leads"]["lead_id"] if name != "leads" else None
        result = validate_table(name, raw, pd.Index(known) if known is not None else None)
        tables.update(result.tables)
        problems += result.problems
    return ContractResult(tables, problems)


def request_to_tables(request: dict[str, Any]) -> tuple[pd.Timestamp, ContractResult]:
    """The online request `{"as_of": ..., "leads": [...]}` as contract tables, validated like a bulk export.

    Returns the request's as_of (now if absent) and the tables; a lead whose row fails validation is
    reported and left out, and so are its events.
    """
    if not isinstance(request, dict):
        raise ContractError(f"request must be a JSON object, got {type(request).__name__}")
    request = _valid_text(request)
    leads = request.get("leads")
    if not isinstance(leads, list):
        raise ContractError("request field leads: must be a list of lead objects")
    as_of = _parse_as_of(request.get("as_of"))
    problems: list[Problem] = []
    lead_rows, event_rows = [], {name: [] for name in EVENT_TABLES}
    for position, lead in enumerate(leads):
        if not isinstance(lead, dict):
            problems.append(Problem("leads", f"#{position}", "*", "each lead must be a JSON object"))
            continue
        lead_id = lead.get("lead_id")
        bad_lists = [n for n in EVENT_TABLES if not _is_list_of_objects(lead.get(n))]
        if bad_lists:
            problems += [
                Problem("leads", str(lead_id), n, "must be a list of objects", lead_id=_as_id(lead_id))
                for n in bad_lists
            ]
            continue
        for name in EVENT_TABLES:
            event_rows[name].extend({**r, "lead_id": lead_id} for r in lead.get(name) or [])
        lead_rows.append({k: v for k, v in lead.items() if k not in EVENT_TABLES})
    leads_result = validate_table("leads", pd.DataFrame(lead_rows) if lead_rows else empty_table("leads"))
    problems += leads_result.problems
    tables = dict(leads_result.tables)
    known = pd.Index(tables["leads"]["lead_id"])
    for name in EVENT_TABLES:
        frame = pd.DataFrame(event_rows[name]) if event_rows[name] else empty_table(name)
        result = validate_table(name, frame[frame["lead_id"].isin(known)] if len(frame) else frame, known)
        tables.update(result.tables)
        problems += result.problems
    tables["outcomes"] = empty_table("outcomes")
    return as_of, ContractResult(tables, problems)


def _valid_text(value: Any) -> Any:
    """The request with every text (keys too) valid Unicode: JSON's \\u escapes can encode lone surrogates,
    which no text column, log or answer can hold; each becomes U+FFFD (a pair becomes its character)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_valid_text(k): _valid_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_text(v) for v in value]
    return value


def _is_list_of_objects(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(r, dict) for r in value))


def _as_id(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse_as_of(value: Any) -> pd.Timestamp:
    from features.text import mask_personal  # text imports heavy modules; only an error needs it

    if value is None or value == "":
        return pd.Timestamp.now(tz=TIMEZONE).floor("s")
    parsed = parse_timestamps(pd.Series([value]))[0] if isinstance(value, str) else pd.NaT
    if pd.isna(parsed):
        # The value is echoed back masked: a client may have put anything there, a phone number included.
        shown = mask_personal(str(value)[:40])
        raise ContractError(f"request field as_of: not an ISO 8601 timestamp: {shown!r}")
    return parsed
