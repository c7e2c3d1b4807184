"""The import report: what was read, kept and dropped per source table and why, how each source field was
mapped, what was left out as a leak, the time-zone assumptions, and every bad value by source table, row and
field. Written as `import_report.md` and `import_report.json` beside the export.

Values of source fields are never written here (they may be phone numbers or e-mails); only field names,
counts, and the labels of stages and statuses the mapping did not know."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SourceStats:
    read: int = 0
    skipped: Counter = field(default_factory=Counter)  # rows the importer did not use, by reason
    rejected: Counter = field(default_factory=Counter)  # rows the contract's validation refused, by reason
    kept: int = 0
    joined_into: str = ""  # a lookup table joined onto another source's rows


@dataclass
class ImportReport:
    vendor: str
    source: str
    sources: dict[str, SourceStats] = field(default_factory=dict)
    mappings: list[dict[str, str]] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    contract_rows: dict[str, int] = field(default_factory=dict)
    max_problems: int = 2000

    def stats(self, table: str) -> SourceStats:
        return self.sources.setdefault(table, SourceStats())

    def read(self, table: str, rows: int) -> None:
        self.stats(table).read += rows

    def skip(self, table: str, rows: int, reason: str) -> None:
        if rows:
            self.stats(table).skipped[reason] += int(rows)

    def map(self, table: str, source_field: str, target: str, how: str = "") -> None:
        entry = {"source_table": table, "source_field": source_field, "target": target, "how": how}
        if entry not in self.mappings:
            self.mappings.append(entry)

    def exclude(self, table: str, source_field: str, reason: str) -> None:
        entry = {"source_table": table, "field": source_field, "reason": reason}
        if entry not in self.excluded:
            self.excluded.append(entry)

    def assume(self, text: str) -> None:
        if text not in self.assumptions:
            self.assumptions.append(text)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def problem(self, table: str, row: str, source_field: str, target: str, reason: str, severity: str) -> None:
        if len(self.problems) < self.max_problems:
            self.problems.append({"source_table": table, "source_row": row, "source_field": source_field,
                                  "target": target, "reason": reason, "severity": severity})  # fmt: skip
        elif len(self.problems) == self.max_problems:
            self.problems.append({"source_table": "...", "source_row": "...", "source_field": "...", "target": "",
                                  "reason": "more problems left out of the report", "severity": "warning"})  # fmt: skip

    def refused_rows(self) -> int:
        """Source rows the contract's validation refused (each counted once, whatever its problems)."""
        return sum(sum(s.rejected.values()) for s in self.sources.values())

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("max_problems")
        out["sources"] = {
            name: {
                "read": s.read,
                "kept": s.kept,
                "skipped": dict(s.skipped),
                "rejected": dict(s.rejected),
                "joined_into": s.joined_into,
            }
            for name, s in self.sources.items()
        }
        return out

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        as_json = directory / "import_report.json"
        as_json.write_text(json.dumps(self.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        as_md = directory / "import_report.md"
        as_md.write_text(self.markdown(), encoding="utf-8")
        return as_md, as_json

    def markdown(self) -> str:
        lines = [f"# Import report: {self.vendor}", "", f"Source: `{self.source}`", ""]
        lines += ["## Contract tables written", "", "| table | rows |", "|---|---|"]
        lines += [f"| {name} | {rows} |" for name, rows in self.contract_rows.items()]
        lines += ["", "## Source tables", "", "| source table | read | kept | not used (why) | rejected (why) |"]
        lines.append("|---|---|---|---|---|")
        for name, s in self.sources.items():
            kept = f"joined into {s.joined_into}" if s.joined_into else s.kept
            lines.append(f"| {name} | {s.read} | {kept} | {_counts(s.skipped)} | {_counts(s.rejected)} |")
        lines += [
            "",
            "## Field mapping",
            "",
            "| source table | source field | contract field | how |",
            "|---|---|---|---|",
        ]
        lines += [f"| {m['source_table']} | {m['source_field']} | {m['target']} | {m['how']} |" for m in self.mappings]
        lines += ["", "## Left out as leaks", "", "| source table | field | why |", "|---|---|---|"]
        lines += [f"| {e['source_table']} | {e['field']} | {e['reason']} |" for e in self.excluded] or ["| | | |"]
        lines += ["", "## Time zones and other assumptions", ""] + [f"- {a}" for a in self.assumptions]
        if self.warnings:
            lines += ["", "## Warnings", ""] + [f"- {w}" for w in self.warnings]
        lines += ["", f"## Problems by source row ({len(self.problems)})", ""]
        if self.problems:
            lines += ["| severity | source table | source row | source field | contract field | reason |"]
            lines.append("|---|---|---|---|---|---|")
            lines += [
                f"| {p['severity']} | {p['source_table']} | {p['source_row']} | {p['source_field']} | {p['target']} "
                f"| {p['reason']} |"
                for p in self.problems[:500]
            ]
            if len(self.problems) > 500:
                lines.append(f"\n{len(self.problems) - 500} more in import_report.json")
        else:
            lines.append("None.")
        return "\n".join(lines) + "\n"


def _counts(counter: Counter) -> str:
    return "; ".join(f"{reason}: {n}" for reason, n in counter.most_common()) or "-"
