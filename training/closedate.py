"""Close-date model training: labels from the export, baselines, evaluation and the oracle comparison.

Run `python -m training.closedate --train DIR [--oracle DIR]` for the figures in docs/models-closedate.md.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.catalogue import FEATURES
from features.contract import load_export
from features.labels import LOST, OPEN, REPORT_DAYS, WON, followup_days, outcome_frame, snapshot_outcomes, won_within
from features.pipeline import FeaturePipeline
from features.snapshots import make_snapshots
from models.closedate import CloseDateModel
from models.health import PARAMS as BINARY_PARAMS
from training.metrics import expected_calibration_error
from training.split import time_split

HORIZONS = REPORT_DAYS


# ---------------------------------------------------------------- baselines


class AalenJohansen:
    """Cumulative incidence of a win without covariates (Aalen-Johansen), the same for every snapshot.

    Own ten lines rather than lifelines.AalenJohansenFitter: lifelines jitters tied event times at random
    (warning each time), which makes the figures non-deterministic; here ties are handled exactly.
    """

    def fit(self, features: pd.DataFrame | None, durations_days: np.ndarray, events: np.ndarray) -> AalenJohansen:
        t, e = np.asarray(durations_days, float), np.asarray(events, int)
        times = np.unique(t[e != OPEN])
        at_risk = len(t) - np.searchsorted(np.sort(t), times, side="left")
        won = np.bincount(np.searchsorted(times, t[e == WON]), minlength=len(times))
        lost = np.bincount(np.searchsorted(times, t[e == LOST]), minlength=len(times))
        survival_before = np.concatenate([[1.0], np.cumprod(1 - (won + lost) / at_risk)[:-1]])
        self.times_, self.cif_won_ = times, np.cumsum(survival_before * won / at_risk)
        return self

    def cif(self, days: float) -> float:
        i = np.searchsorted(self.times_, days, side="right") - 1
        return float(self.cif_won_[i]) if i >= 0 else 0.0

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({f"p_won_{d}": self.cif(d) for d in HORIZONS}, index=features.index)


class OpenIsNotWon:
    """One binary LightGBM per horizon where anything not won in time - open and censored included - is 0.

    The naive baseline: deals still open at the cutoff look like non-wins, so it underestimates, and its
    three horizons are separate models, so nothing makes them monotone.
    """

    def __init__(self, num_rounds: int = 200, num_threads: int = 2) -> None:
        self.num_rounds = num_rounds
        self.params = {**BINARY_PARAMS, "num_threads": num_threads}

    def fit(self, features: pd.DataFrame, durations_days: np.ndarray, events: np.ndarray) -> OpenIsNotWon:
        self.boosters_ = {
            d: lgb.train(
                self.params,
                lgb.Dataset(features[FEATURES], won_within(durations_days, events, d).astype(int)),
                num_boost_round=self.num_rounds,
            )
            for d in HORIZONS
        }
        return self

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {f"p_won_{d}": b.predict(features[FEATURES]) for d, b in self.boosters_.items()}, index=features.index
        )


# ---------------------------------------------------------------- evaluation


def concordance(times: np.ndarray, risk: np.ndarray, observed: np.ndarray) -> float:
    """Harrell's C: over pairs where the earlier time is an observed event, the share in which that
    snapshot has the higher risk (ties 0.5). Own code (events x snapshots in chunks) instead of lifelines,
    whose pandas<3 pin would downgrade the pandas the feature pipeline needs."""
    times, risk, observed = np.asarray(times, float), np.asarray(risk, float), np.asarray(observed, bool)
    concordant = pairs = 0.0
    events = np.flatnonzero(observed)
    for chunk in np.array_split(events, max(1, len(events) // 500)):
        t, r = times[chunk, None], risk[chunk, None]
        # j outlives i: a later time, or the same time without an event there
        later = (times[None, :] > t) | ((times[None, :] == t) & ~observed[None, :])
        pairs += later.sum()
        concordant += (later & (r > risk[None, :])).sum() + 0.5 * (later & (r == risk[None, :])).sum()
    return float(concordant / pairs) if pairs else float("nan")


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "n": int(len(y)),
        "auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
        "ece": expected_calibration_error(p, y),
        "mean_predicted": float(p.mean()),
        "observed_rate": float(y.mean()),
    }


def evaluate_closedate(
    model,
    features: pd.DataFrame,
    durations: np.ndarray,
    events: np.ndarray,
    followup: np.ndarray,
    predictions: pd.DataFrame | None = None,
) -> dict[str, object]:
    """Per horizon, on the snapshots whose horizon lies inside observation (`followup` >= horizon):
    AUC, ECE, mean predicted vs observed. Over all snapshots: the C-index of p_won_90 against the time to
    a win within 90 days (open deals censored at their follow-up; lost deals censored where observation
    ends, since a lost deal is known not to win up to then), and for won-within-90 snapshots the mean
    absolute error of expected_close_days if the model gives one."""
    pred = model.predict(features) if predictions is None else predictions
    durations, events, followup = (np.asarray(a, float) for a in (durations, events, followup))
    out: dict[str, object] = {}
    for d in HORIZONS:
        matured = followup >= d
        y = won_within(durations[matured], events[matured], d).astype(int)
        out[f"h{d}"] = _scores(y, pred[f"p_won_{d}"].to_numpy()[matured])
    win = won_within(durations, events, 90)
    time_to_win = np.where(events == LOST, np.minimum(followup, 90.0), np.minimum(durations, 90.0))
    p90 = pred["p_won_90"].to_numpy()
    out["c_index_90"] = concordance(time_to_win, p90, win)
    if "expected_close_days" in pred:
        won90 = win & (followup >= 90)
        out["close_days_mae"] = float(np.mean(np.abs(pred["expected_close_days"].to_numpy()[won90] - durations[won90])))
        out["close_days_mae_constant"] = float(np.mean(np.abs(np.median(durations[won90]) - durations[won90])))
    return out


def compare_closedate_with_oracle(
    models: dict[str, object], pipeline: FeaturePipeline, data_dir: str | Path
) -> dict[str, dict[str, dict[str, float]]]:
    """Each model against the simulator's oracle on the same matured truth/snapshots.parquet rows.

    Per horizon: model and oracle AUC, oracle share = (model AUC - 0.5) / (oracle AUC - 0.5), the ECE of
    both (the oracle's is the noise floor of ECE on this few rows), mean predicted and observed rate.
    Truth is read for evaluation only."""
    tables = load_export(data_dir).tables
    truth = pd.read_parquet(Path(data_dir) / "truth" / "snapshots.parquet")
    truth = truth[truth["matured"]].reset_index(drop=True)
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.tz_convert("Asia/Shanghai")
    features = pipeline.transform(tables, truth[["lead_id", "as_of"]])
    durations, events = snapshot_outcomes(tables, truth)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, model in models.items():
        pred = model.predict(features)
        out[name] = {}
        for d in HORIZONS:
            y = won_within(durations, events, d).astype(int)
            m, o = _scores(y, pred[f"p_won_{d}"].to_numpy()), _scores(y, truth[f"p_won_{d}"].to_numpy())
            m.update(oracle_auc=o["auc"], oracle_ece=o["ece"], oracle_mean=o["mean_predicted"])
            m["oracle_share"] = (m["auc"] - 0.5) / (o["auc"] - 0.5)
            out[name][f"h{d}"] = m
    return out


# ---------------------------------------------------------------- orchestration


@dataclass
class CloseDateTraining:
    model: CloseDateModel
    pipeline: FeaturePipeline
    baselines: dict[str, object]
    cutoff: pd.Timestamp
    metrics: dict[str, dict[str, object]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def train_closedate(
    tables: dict[str, pd.DataFrame],
    *,
    test_share: float = 0.2,
    num_rounds: int = 250,
    max_leads: int | None = None,
    num_threads: int = 2,
) -> CloseDateTraining:
    """The close-date model alone on the time split (training/split.py): pipeline and models fitted on the
    snapshots before the cutoff, their outcomes censored there, judged on the snapshots from it on."""
    clock = {"start": time.perf_counter()}
    split = time_split(tables, make_snapshots(tables), test_share=test_share)
    train, test = split.train, split.test
    if max_leads is not None:  # for quick runs (tests): a random subset of leads, all their snapshots
        keep = tables["leads"]["lead_id"].sample(frac=1.0, random_state=0)[:max_leads]
        train = train[train["lead_id"].isin(keep)].reset_index(drop=True)
        test = test[test["lead_id"].isin(keep)].reset_index(drop=True)
    d_train, e_train = snapshot_outcomes(tables, train, until=split.cutoff)
    pipeline = FeaturePipeline()
    x_train = pipeline.fit_transform(tables, train, won_within(d_train, e_train))
    x_test = pipeline.transform(tables, test)
    d_test, e_test = snapshot_outcomes(tables, test)
    f_test = followup_days(tables, test)
    clock["features"] = time.perf_counter()
    params = {"num_threads": num_threads}
    model = CloseDateModel(num_rounds=num_rounds, params=params).fit(x_train, outcome_frame(d_train, e_train))
    clock["model"] = time.perf_counter()
    baselines = {
        "aalen_johansen": AalenJohansen().fit(None, d_train, e_train),
        "open_is_not_won": OpenIsNotWon(min(num_rounds, 200), num_threads).fit(x_train, d_train, e_train),
    }
    result = CloseDateTraining(model, pipeline, baselines, split.cutoff)
    for name, m in {"closedate": model, **baselines}.items():
        result.metrics[name] = evaluate_closedate(m, x_test, d_test, e_test, f_test)
    result.metrics["sizes"] = {
        "train_snapshots": len(train),
        "person_period_rows": model.person_period_rows_,
        "test_snapshots": len(test),
    }
    result.seconds = {
        "features": clock["features"] - clock["start"],
        "fit_closedate": clock["model"] - clock["features"],
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", required=True, help="export to train and time-split test on")
    parser.add_argument("--oracle", help="another simulated export (with truth/) for the oracle comparison")
    args = parser.parse_args()
    result = train_closedate(load_export(args.train).tables)
    report = {"cutoff": str(result.cutoff), "seconds": result.seconds, "time_split_test": result.metrics}
    if args.oracle:
        models = {"closedate": result.model, **result.baselines}
        report["oracle"] = compare_closedate_with_oracle(models, result.pipeline, args.oracle)
    print(json.dumps(report, indent=1, default=float))  # noqa: T201 - the command's output


if __name__ == "__main__":
    main()
