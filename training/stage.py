"""Training labels and evaluation for the stage model.

Real exports do not carry the true stage, so the labels are built from what an export does carry, read
with hindsight (labels are the future; only the model's features must stay at or before as_of):

- *anchors*: moments when the lead is known to have entered a stage. An evidence attachment (方案,
  报价单, 技术协议, 合同, 测试报告) pins the entry to the few hours before it; a recorded stage change pins
  it to a window [ts - owner's lag, ts], the lag estimated per owner from how long after an evidence
  attachment the matching stage gets typed; the outcome (赢单 / 丢单) pins the close exactly;
  creation pins 新线索.
- a snapshot is *confirmed* when an anchor lies wholly before as_of and the next anchor wholly after it,
  and nothing can hide between the two: the next stage is the direct successor (an optional stage, e.g.
  样品验证, may be skipped only where the lead's segment never shows it), a step back, or, for an owner
  whose records are complete, the close or the end of the export. The label is the earlier anchor's stage.
- everything else is NaN: left out of training.

The simulator's truth (`true_stage_at`) is read only to evaluate, never to label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support

from features.contract import OPEN_STAGES, STAGE_EVIDENCE, STAGE_LADDER, STAGE_RANK
from features.labels import export_time

RANK = STAGE_RANK
WON, LOST = RANK["赢单"], RANK["丢单"]
SAMPLE, TENDER = RANK["样品验证"], RANK["招标比价"]
# The stage an attachment shows the lead has just entered: the evidence of an open stage, and 测试报告 (sent on
# leaving 样品验证 for 报价).
EVIDENCE_ENTERS = {attachment: stage for stage, attachment in STAGE_EVIDENCE.items() if stage in OPEN_STAGES}
EVIDENCE_ENTERS["测试报告"] = "报价"
EVIDENCE_WINDOW = pd.Timedelta(hours=4)  # evidence follows the contact that moved the deal on, within hours
DAY = pd.Timedelta(days=1)
CONTACT_TO_CHANGE = pd.Timedelta(minutes=5)  # a stage change follows the contact that caused it within minutes
LAG_QUANTILE = 0.99  # an owner's recording-lag bound: 99% of their typed changes come within it
MIN_LAG_SAMPLES = 5
RELIABLE_SKIP_RATE = 0.02  # owners whose evidenced stages are (almost) all typed: a gap in their records is real
OPTIONAL_STAGE_SHARE = 0.03  # a segment "never does" an optional stage below this share of deals past it
MIN_SEGMENT_DEALS = 10


def owner_recording(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per owner: lag bound (days from an evidence attachment to the matching typed stage, LAG_QUANTILE) and
    skip rate (share of evidenced stages never typed, among those old enough to have been typed)."""
    acts, stages, leads = tables["activities"], tables["stage_changes"], tables["leads"]
    end = export_time(tables)
    ev = acts.loc[acts["attachment_type"].isin(list(EVIDENCE_ENTERS)), ["lead_id", "ts", "attachment_type"]]
    ev = ev.assign(stage=ev["attachment_type"].map(EVIDENCE_ENTERS))
    typed = stages[["lead_id", "stage", "ts"]].rename(columns={"ts": "typed"})
    pairs = ev.merge(typed, on=["lead_id", "stage"], how="left")
    pairs = pairs[pairs["typed"].isna() | (pairs["typed"] >= pairs["ts"] - EVIDENCE_WINDOW)]
    first = pairs.sort_values("typed").groupby(["lead_id", "ts", "stage"], as_index=False).first()
    first["lag_days"] = (first["typed"] - first["ts"]) / DAY
    first["owner_id"] = first["lead_id"].map(leads.set_index("lead_id")["owner_id"])
    first = first[first["owner_id"].notna()]
    old = first["typed"].notna() | (end - first["ts"] > 60 * DAY)  # recent evidence may still get typed
    global_lag = first["lag_days"].quantile(LAG_QUANTILE)
    by_owner = first.groupby("owner_id")
    out = pd.DataFrame(
        {
            "lag_days": by_owner["lag_days"].quantile(LAG_QUANTILE),
            "lag_samples": by_owner["lag_days"].count(),
            "skip_rate": first[old]["typed"].isna().groupby(first.loc[old, "owner_id"]).mean(),
        }
    )
    out.loc[out["lag_samples"] < MIN_LAG_SAMPLES, "lag_days"] = global_lag
    out["skip_rate"] = out["skip_rate"].fillna(1.0)
    return out


def _segments(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Segment of each lead (industry x customer type x size band): where optional stages happen."""
    leads = tables["leads"].set_index("lead_id")
    band = pd.cut(leads["company_size"], [0, 50, 150, 300, np.inf], right=False, labels=False)
    parts = [leads["industry"].fillna("?"), leads["customer_type"].fillna("?"), band.astype("string").fillna("?")]
    return parts[0].astype(str) + "|" + parts[1].astype(str) + "|" + parts[2].astype(str)


def _optional_skippable(tables: dict[str, pd.DataFrame], seen: pd.DataFrame, segment: pd.Series) -> dict[int, set]:
    """For 样品验证 and 招标比价: the segments that (almost) never show the stage among deals that got past it."""
    out: dict[int, set] = {}
    best = seen.groupby("lead_id")["rank"].agg(set)
    for stage, beyond in ((SAMPLE, RANK["报价"]), (TENDER, RANK["合同谈判"])):
        past = best[best.map(lambda s, b=beyond: any(b <= r < WON for r in s) or WON in s)]
        did = past.map(lambda s, st=stage: st in s)
        share = did.groupby(segment.reindex(past.index)).agg(["mean", "count"])
        out[stage] = set(share.index[(share["mean"] < OPTIONAL_STAGE_SHARE) & (share["count"] >= MIN_SEGMENT_DEALS)])
    return out


def _anchors(tables: dict[str, pd.DataFrame], owners: pd.DataFrame) -> pd.DataFrame:
    """Every anchor: lead_id, rank, lo, hi (the entry lies in [lo, hi])."""
    leads, acts, stages, outcomes = (tables[k] for k in ("leads", "activities", "stage_changes", "outcomes"))
    owner = leads.set_index("lead_id")["owner_id"]
    lag = stages["lead_id"].map(owner).map(owners["lag_days"]).fillna(owners["lag_days"].median()) * DAY
    typed = stages[stages["stage"].isin(OPEN_STAGES)]
    typed = pd.DataFrame({"lead_id": typed["lead_id"], "stage": typed["stage"], "lo": typed["ts"] - lag[typed.index],
                          "hi": typed["ts"], "kind": "typed"})  # fmt: skip
    ev = acts[acts["attachment_type"].isin(list(EVIDENCE_ENTERS))]
    ev = pd.DataFrame({"lead_id": ev["lead_id"], "stage": ev["attachment_type"].map(EVIDENCE_ENTERS),
                       "lo": ev["ts"] - EVIDENCE_WINDOW, "hi": ev["ts"], "kind": "evidence"})  # fmt: skip
    # A typed change whose window holds evidence of the same stage is the same entry: keep the evidence.
    both = typed.reset_index().merge(ev, on=["lead_id", "stage"], suffixes=("", "_ev"))
    same = both[(both["hi_ev"] >= both["lo"]) & (both["hi_ev"] <= both["hi"])]["index"].unique()
    typed = _at_contacts(typed.drop(index=same), acts)
    closed = outcomes[outcomes["status"].isin(["won", "lost"]) & outcomes["closed_at"].notna()]
    close = pd.DataFrame({"lead_id": closed["lead_id"], "stage": closed["status"].map({"won": "赢单", "lost": "丢单"}),
                          "lo": closed["closed_at"], "hi": closed["closed_at"], "kind": "close"})  # fmt: skip
    new = pd.DataFrame({"lead_id": leads["lead_id"], "stage": "新线索", "lo": leads["created_at"],
                        "hi": leads["created_at"], "kind": "created"})  # fmt: skip
    out = pd.concat([new, typed, ev, close], ignore_index=True)
    out["rank"] = out["stage"].map(RANK)
    return out


def _at_contacts(typed: pd.DataFrame, acts: pd.DataFrame) -> pd.DataFrame:
    """Narrow each typed change's window to the contacts inside it: a deal moves on at a contact, so the
    entry lies between the first and the last activity of the window (plus minutes). Windows without any
    activity keep their width."""
    pairs = typed.reset_index().merge(acts[["lead_id", "ts"]], on="lead_id")
    pairs = pairs[(pairs["ts"] >= pairs["lo"]) & (pairs["ts"] <= pairs["hi"])]
    span = pairs.groupby("index")["ts"].agg(["min", "max"])
    out = typed.copy()
    out.loc[span.index, "lo"] = span["min"]
    out.loc[span.index, "hi"] = np.minimum(span["max"] + CONTACT_TO_CHANGE, out.loc[span.index, "hi"])
    return out


def _direct(prev: int, nxt: int, reliable: bool, segment: str, skippable: dict[int, set]) -> bool:
    """Can the deal go from stage `prev` to `nxt` with no stage in between?"""
    if nxt == prev or nxt == prev + 1 and nxt != WON:
        return True
    if nxt == WON:
        return prev == RANK["合同谈判"]
    if nxt == LOST:
        return reliable  # an incomplete recorder may have left progress untyped before the loss
    if nxt == RANK["方案沟通"] and prev >= RANK["报价"]:
        return True  # a step back
    if nxt == prev + 2 and prev + 1 in skippable:
        return segment in skippable[prev + 1]
    return False


def _ns(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(times, utc=True).dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)


def stage_labels(tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> pd.Series:
    """The confirmed stage of each snapshot at its as_of (one of the 8 open stages), or NaN if unconfirmed.

    Reads the export only (any time, as labels do), never the simulator's truth."""
    owners = owner_recording(tables)
    anchors = _anchors(tables, owners)
    segment = _segments(tables)
    skippable = _optional_skippable(tables, anchors, segment)
    leads = tables["leads"].set_index("lead_id")
    reliable = leads["owner_id"].map(owners["skip_rate"]).fillna(1.0) <= RELIABLE_SKIP_RATE
    lag = leads["owner_id"].map(owners["lag_days"]).fillna(owners["lag_days"].median())
    end = export_time(tables)
    for column in ("lo", "hi"):  # integer nanoseconds: fast, and free of time-zone object arrays
        anchors[column] = _ns(anchors[column])
    by_lead = {k: g for k, g in anchors.groupby("lead_id")}
    out = np.full(len(snapshots), None, dtype=object)
    as_of_ns = _ns(snapshots["as_of"])
    for i, (lead, t, as_of) in enumerate(zip(snapshots["lead_id"], as_of_ns, snapshots["as_of"], strict=True)):
        group = by_lead.get(lead)
        if group is None:
            continue
        lo, hi, rank = group["lo"].to_numpy(), group["hi"].to_numpy(), group["rank"].to_numpy()
        if ((lo <= t) & (hi > t)).any():
            continue  # an entry may have happened either side of as_of
        before, after = hi <= t, lo > t
        prev_ranks = rank[before]
        if not len(prev_ranks):
            continue
        # The last entry before as_of must be unambiguous: no other stage's window overlaps it.
        last = np.flatnonzero(before)[np.argmax(hi[before])]
        overlap = before & (hi > lo[last]) & (rank != rank[last])
        if overlap.any():
            continue
        prev = int(rank[last])
        if after.any():
            nxt = int(rank[np.flatnonzero(after)[np.argmin(lo[after])]])
            ok = _direct(prev, nxt, bool(reliable[lead]), segment[lead], skippable)
        else:  # open at export: confirmed if a complete, settled record shows nothing after as_of
            ok = bool(reliable[lead]) and (end - pd.Timestamp(as_of)) / DAY > lag[lead]
        if ok and prev < WON:
            out[i] = STAGE_LADDER[prev]
    return pd.Series(out, index=snapshots.index, name="stage_label", dtype=object)


def true_stage_at(sim_dir: str | Path, snapshots: pd.DataFrame) -> pd.Series:
    """The simulator's true stage at each snapshot's as_of, from truth/stage_timeline.parquet. EVALUATION ONLY."""
    timeline = pd.read_parquet(Path(sim_dir) / "truth" / "stage_timeline.parquet")
    timeline = pd.DataFrame({"lead_id": timeline["lead_id"].astype(str), "t": _ns(timeline["ts"]),
                             "true_stage": timeline["true_stage"].astype(object)})  # fmt: skip
    snaps = pd.DataFrame({"lead_id": snapshots["lead_id"].astype(str).to_numpy(), "t": _ns(snapshots["as_of"]),
                          "_row": np.arange(len(snapshots))})  # fmt: skip
    merged = pd.merge_asof(snaps.sort_values("t"), timeline.sort_values("t"), on="t", by="lead_id")
    return pd.Series(
        merged.sort_values("_row")["true_stage"].to_numpy(object), index=snapshots.index, name="true_stage"
    )


def evaluate_stage(
    pred: pd.Series, true_stage: pd.Series, recorded_stage: pd.Series, flag: pd.Series | None = None
) -> dict:
    """Macro-F1 and per-class F1 of the inferred stage against the truth, the confusion matrix (rows true,
    columns inferred), and how well the mismatch flag detects `true != recorded`. The flag defaults to
    `pred != recorded`; pass the model's `mismatch` column to include its confidence threshold."""
    pred, true = pd.Series(pred).astype(str).to_numpy(), pd.Series(true_stage).astype(str).to_numpy()
    recorded = pd.Series(recorded_stage).astype(object).fillna("新线索").astype(str).to_numpy()
    labels = [s for s in STAGE_LADDER if s in set(true) | set(pred)]
    per_class = f1_score(true, pred, labels=labels, average=None, zero_division=0)
    confusion = pd.crosstab(pd.Series(true, name="true"), pd.Series(pred, name="inferred")).reindex(
        index=labels, columns=labels, fill_value=0
    )
    actual = true != recorded
    flagged = pred != recorded if flag is None else pd.Series(flag).to_numpy(bool)
    p, r, f, _ = precision_recall_fscore_support(actual, flagged, average="binary", zero_division=0)
    return {
        "macro_f1": float(np.mean(per_class)),
        "accuracy": float(np.mean(pred == true)),
        "per_class_f1": dict(zip(labels, map(float, per_class), strict=True)),
        "confusion": confusion,
        "mismatch_precision": float(p),
        "mismatch_recall": float(r),
        "mismatch_f1": float(f),
        "mismatch_share": float(actual.mean()),
        "n": len(true),
    }


def stage_experiment(train_dir: str | Path, eval_dir: str | Path) -> dict:
    """Labels on the training world, the model fitted on them, judged on another world against the truth.
    Returns the label's own accuracy (training world) and evaluate_stage's figures for the model and for
    the recorded stage taken as the answer."""
    from features.catalogue import FEATURES, TEXT_NOTES
    from features.contract import load_export
    from features.pipeline import FeaturePipeline
    from features.snapshots import make_snapshots
    from models.stage import StageModel

    tables = load_export(train_dir).tables
    snaps = make_snapshots(tables)
    pipeline = FeaturePipeline()
    features = pipeline.fit_transform(tables, snaps, snaps["won_within"].to_numpy(), details=True)
    labels = stage_labels(tables, snaps)
    confirmed = labels.notna()
    true_train = true_stage_at(train_dir, snaps)  # for the label's accuracy only
    model = StageModel().fit(features[FEATURES + [TEXT_NOTES]], labels, groups=snaps["lead_id"].to_numpy())
    eval_tables = load_export(eval_dir).tables
    eval_snaps = make_snapshots(eval_tables)
    eval_features = pipeline.transform(eval_tables, eval_snaps, details=True)
    true = true_stage_at(eval_dir, eval_snaps)
    pred = model.predict(eval_features)
    recorded = eval_features["recorded_stage"].astype(object)
    return {
        "label_coverage": float(confirmed.mean()),
        "label_accuracy": float((labels[confirmed] == true_train[confirmed]).mean()),
        "label_differs_from_recorded": float((labels[confirmed] != features["recorded_stage"][confirmed]).mean()),
        "model": evaluate_stage(pred["inferred_stage"], true, recorded, pred["mismatch"]),
        "recorded_as_answer": evaluate_stage(recorded, true, recorded),
        "model_object": model,
    }


def _report(result: dict) -> str:
    lines = [str({k: round(v, 4) for k, v in result.items() if isinstance(v, float)})]
    for name in ("model", "recorded_as_answer"):
        figures = result[name]
        lines.append(f"{name} { ({k: round(v, 4) for k, v in figures.items() if isinstance(v, float)}) }")
        lines.append(str({k: round(v, 3) for k, v in figures["per_class_f1"].items()}))
    lines.append(result["model"]["confusion"].to_string())
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(_report(stage_experiment(sys.argv[1], sys.argv[2])))  # noqa: T201 - the command's output
