"""One-lead answer time (median) and batch scoring time per lead, for comparing two commits on one machine.

    python bench/experiments/answer_speed.py LABEL            # in the checkout being measured, e.g.
    git worktree add /tmp/before 3084cbd && (cd /tmp/before && PYTHONPATH=. python /path/to/this/file before)

Uses bench/.service-home of the checkout this file is in (its champion and its export), so both commits
answer with the same model and the same leads; run each commit twice, alternating, on a quiet machine.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HOME = Path(__file__).resolve().parents[1] / ".service-home"


def main() -> None:
    os.environ["LEADSCORE_HOME"], os.environ["BENTOML_HOME"] = str(HOME), str(HOME / "bentoml")
    from bench.service import typical_leads
    from leadscore.jobs.batch import score_export
    from models.champion import load_champion
    from models.settings import Settings

    data = HOME / "demo-data"
    artifact = load_champion(Settings.from_env()).warm_up()
    as_of, leads = typical_leads(data, 60, seed=3)
    singles = [{"as_of": as_of, "leads": [lead]} for lead in leads]
    for request in singles[:5]:
        artifact.score_request(request)
    seconds = []
    for request in singles[5:45]:
        started = time.perf_counter()
        artifact.score_request(request)
        seconds.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = score_export(artifact, data, Path(tmp) / "scores.jsonl", progress=False)
        batch = time.perf_counter() - started
    print(json.dumps({"code": sys.argv[1] if len(sys.argv) > 1 else "?",
                      "one_lead_ms": round(1000 * statistics.median(seconds), 1),
                      "batch_ms_per_lead": round(1000 * batch / summary["leads"], 2), "leads": summary["leads"]}))  # fmt: skip


if __name__ == "__main__":
    main()
