"""Writing a benchmark's markdown report."""

from __future__ import annotations

from pathlib import Path


def write_report(path: str | Path, lines: list[str]) -> None:
    """Write the report to `path` (creating its folder) and print it."""
    report = "\n".join(lines) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(report)
    print(report)
