"""CRM importers: a vendor's export -> a contract export (shared/crm-contract.md) and an import report.

    from leadscore.tools.importers import run_import
    result = run_import("salesforce", "exports/sf", "data/sf", mapping="configs/import/sf.yaml")

One module per source (salesforce, hubspot, odoo, fxiaoke, and `mapping` for any CSV/Excel/JSON table set
described by a YAML file) on a shared base: staged rows that remember their source row, the outcome rules
and leak guards (guards.py), validation by the data contract, the report (report.py). docs/import.md says
which export to take from each CRM and what traps the importers handle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.tools.importers.base import ImportConfigError, write_export
from leadscore.tools.importers.files import SourceError
from leadscore.tools.importers.report import ImportReport

__all__ = ["IMPORTERS", "ImportConfigError", "ImportResult", "SourceError", "import_tables", "run_import"]


def _importer(name: str) -> Callable:
    from importlib import import_module

    return import_module(f"leadscore.tools.importers.{name}").import_export


IMPORTERS = ("salesforce", "hubspot", "odoo", "fxiaoke", "mapping")


@dataclass
class ImportResult:
    tables: dict[str, pd.DataFrame]
    report: ImportReport
    written: list[Path]
    report_files: tuple[Path, Path] | None = None


def import_tables(vendor: str, source: str | Path, mapping: str | Path | None = None) -> tuple[dict, ImportReport]:
    """Read a vendor export into validated contract tables and the import report (nothing written)."""
    if vendor not in IMPORTERS:
        raise ImportConfigError(f"unknown source {vendor!r}: one of {', '.join(IMPORTERS)}")
    source = Path(source)
    if not source.exists():
        raise SourceError(f"source not found: {source}")
    if vendor == "mapping" and mapping is None:
        raise ImportConfigError("--from mapping needs --mapping FILE (a YAML description of the tables)")
    result, report = _importer(vendor)(source, mapping)
    return result.tables, report


def run_import(vendor: str, source: str | Path, out: str | Path, mapping: str | Path | None = None,
               table_format: str = "csv") -> ImportResult:  # fmt: skip
    """Import and write the export (`<table>.csv|parquet`) and `import_report.md` / `.json` into `out`."""
    tables, report = import_tables(vendor, source, mapping)
    out = Path(out)
    written = write_export(tables, out, table_format)
    return ImportResult(tables, report, written, report.write(out))
