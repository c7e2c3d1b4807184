"""Each vendor fixture imported once per session, written out and read back through the contract."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from features.contract import load_export
from leadscore.tools.importers import run_import

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
# The public datasets live in ../shared/data beside the clone (or a worktree's main checkout); LEADSCORE_SHARED_DATA
# points elsewhere.
SHARED = next(
    (
        p
        for p in (
            Path(os.environ.get("LEADSCORE_SHARED_DATA", "/nonexistent")),
            REPO.parent / "shared" / "data",
            REPO.parent.parent / "shared" / "data",
        )
        if p.is_dir()
    ),  # fmt: skip
    REPO.parent / "shared" / "data",
)


class Imported:
    def __init__(self, out: Path, result) -> None:
        self.out = out
        self.report = result.report
        self.loaded = load_export(out)
        self.tables = self.loaded.tables

    def source(self, name: str, **kw) -> pd.DataFrame:
        return pd.read_csv(FIXTURES / name, dtype=str, keep_default_na=False, **kw)

    def problems(self, table: str) -> list[dict]:
        return [p for p in self.report.problems if p["source_table"] == table]

    def excluded(self) -> dict[str, str]:
        return {e["field"]: e["reason"] for e in self.report.excluded}


@pytest.fixture(scope="session")
def imported(tmp_path_factory: pytest.TempPathFactory):
    cache: dict[tuple, Imported] = {}

    def run(vendor: str, source: str | Path | None = None, mapping: str | None = None) -> Imported:
        key = (vendor, str(source), mapping)
        if key not in cache:
            out = tmp_path_factory.mktemp(vendor) / "export"
            src = FIXTURES / vendor if source is None else Path(source)
            result = run_import(vendor, src, out, mapping=str(FIXTURES / mapping) if mapping else None)
            cache[key] = Imported(out, result)
        return cache[key]

    return run
