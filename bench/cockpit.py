"""The cockpit's page load with 10,000 leads in the store (p50), and the other manager pages': the lead list,
the team view and a lead's page.

    python -m bench.cockpit [--leads 10000] [--rescored 2000] [--repeats 7] [--out bench/results/cockpit.md]
    python -m bench.cockpit --log PATH.db   # the pages of an existing SQLite prediction log, as it is

Simulates a CRM export of `--leads` leads, trains a model on a 3,000-lead world (quality does not matter
here), scores every lead of the export through the service's code (`score_requests`) at the export's end and
the `--rescored` newest of them 14 days earlier too (score history, action effectiveness), writes the answers with their
events into a prediction log (SQLite, as served), then renders the cockpit `--repeats` times in-process
(`serving.page.cockpit_page`: every read, computation, chart and template of a GET /manager/cockpit: the
route only hands it to a thread), and the other pages likewise; reports p50 and max.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

import pandas as pd

from bench.common import print_headline
from features.contract import load_export
from features.labels import export_time
from leadscore.tools.demo import lead_request
from leadscore.tools.simulator import simulate
from models.artifact import LeadArtifact
from serving import page
from serving.predlog import PredictionLog
from training.train import train_models

CHUNK = 250


def artifact(root: Path) -> LeadArtifact:
    saved = root / "artifact"
    if (saved / "meta.json").exists():
        return LeadArtifact.load(saved)
    if not (root / "train" / "truth" / "manifest.json").exists():
        simulate(3000, 5, root / "train", progress=False)
    trained = train_models(load_export(root / "train").tables, progress=False, refit=False).artifact
    trained.save(saved)
    return trained


def fill(log: PredictionLog, model: LeadArtifact, data: Path, rescored: int) -> dict[str, float]:
    tables = load_export(data).tables
    end = export_time(tables)
    ids = tables["leads"]["lead_id"].tolist()
    started = time.perf_counter()
    scored = 0
    # The newest leads are scored twice: most of them are still open 14 days before the end.
    for as_of, chosen in ((end - pd.Timedelta(days=14), ids[-rescored:]), (end, ids)):
        old_enough = set(tables["leads"].loc[tables["leads"]["created_at"] <= as_of, "lead_id"])
        chosen = [i for i in chosen if i in old_enough]
        for k in range(0, len(chosen), CHUNK):
            request = lead_request(tables, chosen[k : k + CHUNK], as_of, max_rows=30)
            answer = model.score_request(request)
            log.write(str(uuid.uuid4()), "score", answer.results, {lead["lead_id"]: lead for lead in request["leads"]})
            scored += len(answer.results)
    return {"scored": scored, "seconds": time.perf_counter() - started}


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--rescored", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--root", default="bench/.data/cockpit")
    parser.add_argument("--out", default="bench/results/cockpit.md")
    parser.add_argument("--log", help="time the pages of this SQLite prediction log instead of filling one")
    args = parser.parse_args()
    if args.log:
        log, filled = PredictionLog(f"sqlite:///{args.log}"), None
    else:
        root = Path(args.root)
        model = artifact(root).warm_up()
        data = root / f"export-{args.leads}"
        if not (data / "truth" / "manifest.json").exists():
            simulate(args.leads, 17, data, progress=False)
        db = root / f"predictions-{args.leads}.db"
        db.unlink(missing_ok=True)
        log = PredictionLog(f"sqlite:///{db}")
        filled = fill(log, model, data, args.rescored)
    latest = log.latest()
    leads = len(latest)

    html = page.cockpit_page(log)
    render = timed(lambda: page.cockpit_page(log), args.repeats)
    lead_row = latest[0]["id"]
    others = {
        "/manager (the lead list, every lead)": lambda: page.lead_list(log, {}),
        "/manager/team (the team view)": lambda: page.team_page(log),
        "/manager/lead/{id} (with score history and its chart)": lambda: page.lead_page(log, lead_row),
    }
    times = {name: timed(render_page, args.repeats) for name, render_page in others.items()}
    p50 = statistics.median(render)
    if filled is None:
        command, source = f"--log {args.log} --repeats {args.repeats}", "an existing log"
    else:
        command = f"--leads {args.leads} --rescored {args.rescored} --repeats {args.repeats}"
        source = f"scored in {filled['seconds']:.0f} s through `score_requests`"
    lines = [
        "# Cockpit page load",
        "",
        f"`python -m bench.cockpit {command}` ({time.ctime()}; 2 shared cores).",
        "",
        f"Prediction log: {log.count():,} rows, {leads:,} leads ({source}); cockpit page {len(html) / 1e6:.2f} MB of HTML.",
        "",
        "| page | p50 (s) | max (s) | runs |",
        "|---|---|---|---|",
        f"| /manager/cockpit (server-side render: reads, figures, charts, template) | {p50:.2f} | {max(render):.2f} | {len(render)} |",
        *[f"| {name} | {statistics.median(t):.3f} | {max(t):.3f} | {len(t)} |" for name, t in times.items()],
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print_headline([["cockpit", f"cockpit page, {leads:,} leads, p50 (s)", f"{p50:.2f}", "", "", "reported"]])


if __name__ == "__main__":
    main()
