"""Reading CRM export files: CSV (UTF-8 or GBK/GB18030, as Chinese Excel writes it), Excel (openpyxl), JSON
(a list of records, an API page or a list of pages) and JSON Lines. Every value is read as text (or the
JSON value as it is), so nothing is converted before the importer decides how."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

EXTENSIONS = (".csv", ".xlsx", ".xlsm", ".json", ".jsonl", ".txt")


class SourceError(ValueError):
    """A source file is missing, unreadable or not shaped as expected; the message names the file."""


@dataclass
class SourceTable:
    """One source file as rows of text (or JSON values), with a human label per row for the report."""

    name: str
    path: Path
    frame: pd.DataFrame
    row_labels: list[str]
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)


def find_source(root: Path, *names: str) -> Path | None:
    """The file in `root` whose name (without extension, any case, '.' '_' '-' alike) is one of `names`."""
    wanted = {_key(n) for n in names}
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.is_file() and path.suffix.lower() in EXTENSIONS and _key(path.stem) in wanted:
            return path
    return None


def _key(name: str) -> str:
    return name.lower().replace(".", "").replace("_", "").replace("-", "").replace(" ", "")


def read_source(path: Path, name: str | None = None, *, encoding: str = "auto", sheet: str | int | None = None,
                records: str | None = None) -> SourceTable:  # fmt: skip
    """Read one export file. `records`: for JSON, the dotted key holding the list of records when it is not
    one of the usual ones (results, data.dataList, data, records, items)."""
    name = name or path.stem
    if not path.is_file():
        raise SourceError(f"{name}: file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            frame = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=str, engine="openpyxl")
            frame = frame.fillna("")
            return SourceTable(name, path, _clean_columns(frame), [f"row {i + 2}" for i in range(len(frame))])
        if suffix in (".json", ".jsonl"):
            rows = _json_records(path, records)
            frame = _objects(pd.DataFrame(rows)) if rows else pd.DataFrame()
            return SourceTable(name, path, frame, [f"record {i + 1}" for i in range(len(frame))])
        text, note = _decode(path.read_bytes(), encoding, path.name)
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, on_bad_lines="error")
        table = SourceTable(name, path, _clean_columns(frame), [f"line {i + 2}" for i in range(len(frame))])
        table.notes += [note] if note else []
        return table
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported with its name, not a trace
        raise SourceError(f"{name}: cannot read {path.name}: {type(exc).__name__}: {exc}") from exc


def _clean_columns(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return _objects(frame)


def _objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain Python values, None where missing: pandas 3's str columns turn a None written back into NaN."""
    return frame.astype(object).where(frame.notna(), None)


def _decode(raw: bytes, encoding: str, file_name: str) -> tuple[str, str | None]:
    """UTF-8 (with or without BOM) first; Chinese Excel and many SMB tools write GBK, read as GB18030 (its
    superset). An explicit encoding is used as given."""
    if encoding != "auto":
        try:
            return raw.decode(encoding), f"{file_name} read as {encoding} (as configured)"
        except (UnicodeDecodeError, LookupError) as exc:
            raise SourceError(f"{file_name}: cannot be decoded as {encoding}: {exc}") from exc
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), f"{file_name} is not UTF-8: read as GB18030 (GBK)"
    except UnicodeDecodeError as exc:
        raise SourceError(f"{file_name}: neither UTF-8 nor GBK/GB18030 text (byte {exc.start})") from exc


_RECORD_KEYS = ("results", "data.dataList", "data.data_list", "dataList", "data", "records", "items", "deals")


def _json_records(path: Path, records: str | None) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".jsonl":
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        documents = [json.loads(text)] if text.strip() else []
    rows: list[dict[str, Any]] = []
    for document in documents:
        rows += _records_of(document, records, path.name)
    return rows


def _records_of(document: Any, records: str | None, file_name: str) -> list[dict[str, Any]]:
    """API pages and lists of pages -> the records they hold."""
    if isinstance(document, list):
        if all(isinstance(d, dict) and _find(d, records) is not None for d in document) and document:
            return [r for d in document for r in _records_of(d, records, file_name)]
        if not all(isinstance(d, dict) for d in document):
            raise SourceError(f"{file_name}: a JSON list must hold objects (records or API pages)")
        return document
    if isinstance(document, dict):
        found = _find(document, records)
        if found is None:
            if records:
                raise SourceError(f"{file_name}: no list of records under {records!r}")
            return [document]  # one record
        if not all(isinstance(r, dict) for r in found):
            raise SourceError(f"{file_name}: the records must be JSON objects")
        return found
    raise SourceError(f"{file_name}: expected JSON records, found {type(document).__name__}")


def _find(document: dict[str, Any], records: str | None) -> list | None:
    for key in [records] if records else _RECORD_KEYS:
        value: Any = document
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, list):
            return value
    return None
