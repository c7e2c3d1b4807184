"""What the benchmarks share: the trained home they measure, and the headline line the suite collects."""

from __future__ import annotations

import json
import os
from pathlib import Path

HEADLINE = "BENCH-HEADLINE "


def bench_home(home: str | None = None) -> tuple[Path, Path]:
    """LEADSCORE_HOME (`home`, else $LEADSCORE_HOME, else bench/.service-home) with a champion (trained here
    the first time) and the export it was trained on."""
    home = Path(home or os.environ.get("LEADSCORE_HOME", "bench/.service-home")).resolve()
    os.environ["LEADSCORE_HOME"] = str(home)
    os.environ.setdefault("BENTOML_HOME", str(home / "bentoml"))
    data = home / "demo-data"
    if not (data / "leads.csv").exists() and not (data / "leads.parquet").exists():
        from leadscore.tools.cli import main as cli

        cli(["simulate", "--leads", "6000", "--seed", "11", "--out", str(data)])
        cli(["train", "--data", str(data)])
    return home, data


def print_headline(rows: list[list[str]]) -> None:
    """Rows of the suite's summary table (figure, ours, reference, ratio, bar), for `python -m bench`."""
    print(HEADLINE + json.dumps(rows, ensure_ascii=False), flush=True)
