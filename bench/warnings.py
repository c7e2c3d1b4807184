"""Early-warning figures: "will be lost within 7 days" at the served threshold, and calibration per horizon.

    python -m bench.warnings [--train-leads 12000 --eval-leads 20000] [--skip-maven] [--out bench/results/warnings.md]

Simulator: train every model on world 61 (the served recipe: evaluation pass, calibration and threshold on its
later period, refit on all history), judge on every matured snapshot of world 62, which it never saw (the
quality bars' pair). Real data: Maven's CRM sales pipeline (/work/shared/data/maven_crm: 8,300 engaged
opportunities with won / lost close dates, no activities), trained on what was known on 2017-07-01 (later
outcomes censored) and judged on the snapshots from that day on, with outcomes to the export's end.

Per horizon (7 / 14 / 30 days): AUC, ECE (10 bins), mean predicted vs observed, for the calibrated answer and
the raw competing-risks incidence; at 7 days precision, recall and the share flagged at the served threshold.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.contract import TABLES, TIMEZONE, load_export, validate_table
from features.labels import followup_days, snapshot_outcomes
from features.snapshots import make_snapshots
from models.artifact import LeadArtifact
from models.warnings import LOSS_DAYS, loss_labels
from training.metrics import expected_calibration_error
from training.train import train_models

MAVEN = Path("/work/shared/data/maven_crm")
MAVEN_CUTOFF = pd.Timestamp("2017-07-01", tz=TIMEZONE)


def judge(artifact: LeadArtifact, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> dict[str, object]:
    """The served warnings of `artifact` on `snapshots` of `tables` (outcomes to the export's end)."""
    features = artifact.pipeline.transform(tables, snapshots, details=True)
    risk = artifact.models["risk"]
    win = artifact.predict_features(features)
    raw = risk.raw_loss(features, win)
    calibrated = risk.loss(features, win)
    durations, events = snapshot_outcomes(tables, snapshots)
    lost, matured = loss_labels(durations, events, followup_days(tables, snapshots))
    out: dict[str, object] = {"threshold_7d": risk.threshold_7d_, "threshold_holdout": risk.holdout_}
    for j, d in enumerate(LOSS_DAYS):
        m = matured[:, j]
        y = lost[m, j].astype(int)
        row = {"n": int(m.sum()), "observed": float(y.mean()), "auc": _auc(y, calibrated[m, j])}
        for name, p in (("calibrated", calibrated[m, j]), ("raw", raw[m, j])):
            row[f"ece_{name}"] = expected_calibration_error(p, y)
            row[f"mean_{name}"] = float(p.mean())
        out[f"h{d}"] = row
    m = matured[:, 0]
    flagged = calibrated[m, 0] >= risk.threshold_7d_
    y7 = lost[m, 0]
    out["at_threshold_7d"] = {
        "flagged": int(flagged.sum()),
        "flagged_share": float(flagged.mean()),
        "precision": float(y7[flagged].mean()) if flagged.any() else float("nan"),
        "recall": float(flagged[y7].mean()) if y7.any() else float("nan"),
    }
    # What precision the 7-day probability can reach at all on these snapshots (the best threshold in hindsight).
    order = np.argsort(-calibrated[m, 0])
    hits = np.cumsum(y7[order])
    k = np.arange(1, len(hits) + 1)
    out["hindsight_precision_top_100"] = float(hits[min(99, len(hits) - 1)] / min(100, len(hits)))
    out["hindsight_best_precision_min30"] = float((hits / k)[29:].max()) if len(hits) >= 30 else float("nan")
    levels = pd.Series([a.level for a in risk.answer(_batch(artifact, tables, snapshots, features, win))])
    out["levels"] = levels.value_counts(normalize=True).round(4).to_dict()
    return out


def _batch(artifact, tables, snapshots, features, win):
    from models.base import ScoringBatch

    return ScoringBatch(tables, snapshots.reset_index(drop=True), features.reset_index(drop=True), win)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def simulator(train_leads: int, eval_leads: int, root: Path) -> dict[str, object]:
    from leadscore.tools.simulator import simulate

    for name, n, seed in (("train", train_leads, 61), ("eval", eval_leads, 62)):
        if not (root / name / "truth" / "manifest.json").exists():
            simulate(n, seed, root / name, progress=False)
    started = time.perf_counter()
    result = train_models(load_export(root / "train").tables, progress=False)
    seconds = time.perf_counter() - started
    tables = load_export(root / "eval").tables
    snapshots = make_snapshots(tables)
    out = judge(result.artifact, tables, snapshots)
    out |= {"train_seconds": seconds, "train_leads": train_leads, "eval_leads": eval_leads}
    out["closedate_time_split"] = {k: v for k, v in result.metrics.items() if k.startswith(("closedate_", "risk_"))}
    return out


def maven_tables(until: pd.Timestamp | None = None) -> dict[str, pd.DataFrame]:
    """Maven's opportunities as the contract's tables: engage date = created_at, sales agent = owner, the
    account's sector and size; won / lost with their close date, Engaging open. Prospecting rows (never
    engaged) are left out. With `until`, the export as it stood then: later leads absent, later outcomes open."""
    deals = pd.read_csv(MAVEN / "sales_pipeline.csv")
    accounts = pd.read_csv(MAVEN / "accounts.csv").set_index("account")
    deals = deals[deals["engage_date"].notna()].reset_index(drop=True)
    created = pd.to_datetime(deals["engage_date"]).dt.tz_localize(TIMEZONE) + pd.Timedelta(hours=9)
    closed = pd.to_datetime(deals["close_date"]).dt.tz_localize(TIMEZONE) + pd.Timedelta(hours=18)
    status = deals["deal_stage"].map({"Won": "won", "Lost": "lost", "Engaging": "open"})
    if until is not None:
        keep = (created < until).to_numpy()
        deals, created, closed, status = deals[keep], created[keep], closed[keep], status[keep]
        late = (closed >= until) | closed.isna()
        status = status.where(~late, "open")
        closed = closed.where(~late)
    leads = pd.DataFrame(
        {
            "lead_id": deals["opportunity_id"].to_numpy(),
            "created_at": created.dt.strftime("%Y-%m-%dT%H:%M:%S%z").to_numpy(),
            "industry": deals["account"].map(accounts["sector"]).to_numpy(),
            "company_size": deals["account"].map(accounts["employees"]).to_numpy(),
            "owner_id": deals["sales_agent"].to_numpy(),
        }
    )
    outcomes = pd.DataFrame(
        {
            "lead_id": deals["opportunity_id"].to_numpy(),
            "status": status.to_numpy(),
            "closed_at": closed.dt.strftime("%Y-%m-%dT%H:%M:%S%z").where(closed.notna(), None).to_numpy(),
        }
    )
    frames = {"leads": leads, "outcomes": outcomes}
    known = pd.Index(leads["lead_id"])
    tables = {}
    for name, spec in TABLES.items():
        frame = frames.get(name, pd.DataFrame(columns=[f.name for f in spec.fields]))
        result = validate_table(name, frame, known if name != "leads" else None)
        if result.errors:
            raise ValueError(f"maven {name}: {result.errors[:3]}")
        tables.update(result.tables)
    return tables


def maven() -> dict[str, object]:
    started = time.perf_counter()
    result = train_models(maven_tables(MAVEN_CUTOFF), progress=False)
    seconds = time.perf_counter() - started
    tables = maven_tables()
    snapshots = make_snapshots(tables)
    snapshots = snapshots[pd.to_datetime(snapshots["as_of"]) >= MAVEN_CUTOFF].reset_index(drop=True)
    out = judge(result.artifact, tables, snapshots)
    return out | {"train_seconds": seconds, "cutoff": str(MAVEN_CUTOFF.date())}


def table(name: str, figures: dict[str, object]) -> list[str]:
    rows = [f"**{name}** (served threshold of lost_within_7d: {figures['threshold_7d']:.3f})", "",
            "| horizon | snapshots | observed | mean calibrated / raw | ECE calibrated / raw | AUC |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for d in LOSS_DAYS:
        h = figures[f"h{d}"]
        rows.append(
            f"| {d} d | {h['n']:,} | {h['observed']:.3f} | {h['mean_calibrated']:.3f} / {h['mean_raw']:.3f} | "
            f"{h['ece_calibrated']:.3f} / {h['ece_raw']:.3f} | {h['auc']:.3f} |"
        )
    t = figures["at_threshold_7d"]
    rows += ["", f"At the served threshold, 7 days ahead: precision **{t['precision']:.3f}**, recall "
             f"**{t['recall']:.3f}**, {t['flagged']:,} snapshots flagged ({t['flagged_share']:.2%}). Precision of "
             f"the 100 highest 7-day probabilities: {figures['hindsight_precision_top_100']:.3f}; best precision over "
             f"any threshold flagging 30 or more (hindsight): {figures['hindsight_best_precision_min30']:.3f}. "
             f"Levels: {figures['levels']}. Threshold chosen on the training world's later period: "
             f"{figures['threshold_holdout']}.", ""]  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-leads", type=int, default=12_000)
    parser.add_argument("--eval-leads", type=int, default=20_000)
    parser.add_argument("--root", default="bench/.data/warnings")
    parser.add_argument("--skip-maven", action="store_true")
    parser.add_argument("--skip-simulator", action="store_true")
    parser.add_argument("--out", default="bench/results/warnings.md")
    args = parser.parse_args()
    saved = Path(args.out).with_suffix(".json")
    # A part skipped keeps its figures from the last run (each part takes tens of minutes on two cores).
    figures = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}
    if not args.skip_simulator:
        figures["simulator"] = simulator(args.train_leads, args.eval_leads, Path(args.root))
        print(json.dumps(figures["simulator"], indent=1, default=str), flush=True)
    if not args.skip_maven:
        figures["maven"] = maven()
        print(json.dumps(figures["maven"], indent=1, default=str), flush=True)
    lines = ["# Early warnings: loss within 7 / 14 / 30 days", "", f"`python -m bench.warnings` (last part run {time.ctime()}; "
             "a part run with --skip-* keeps its figures from bench/results/warnings.json).", ""]  # fmt: skip
    if "simulator" in figures:
        s = figures["simulator"]
        lines += table(f"Simulator: trained on world 61 ({s['train_leads']:,} leads, {s['train_seconds']:.0f} s), "
                       f"judged on every matured snapshot of world 62 ({s['eval_leads']:,} leads)", s)  # fmt: skip
    if "maven" in figures:
        lines += table(
            f"Maven CRM (real): trained on what was known on {figures['maven']['cutoff']}, judged after",
            figures["maven"],
        )
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    saved.write_text(json.dumps(figures, indent=1, default=str, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
