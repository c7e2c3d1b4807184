"""The close-date model: person-period labels, censoring at the cutoff, monotone horizons, beats Aalen-Johansen."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from features.labels import LOST, OPEN, WON, snapshot_outcomes
from features.snapshots import make_snapshots
from models.closedate import person_period
from training.closedate import AalenJohansen, concordance, train_closedate


def test_person_period_rows_stop_at_the_event_and_censoring_is_not_a_loss() -> None:
    durations = np.array([20.0, 5.0, 20.0, 200.0, 30.0, 95.0])
    events = np.array([WON, LOST, OPEN, WON, WON, OPEN])
    row, k, label, weight = person_period(durations, events, bin_days=15, n_bins=6)
    rows = pd.DataFrame({"row": row, "k": k, "label": label, "weight": weight})
    by_row = {r: g[["k", "label", "weight"]].values.tolist() for r, g in rows.groupby("row")}
    assert by_row[0] == [[0, OPEN, 1.0], [1, WON, 1.0]]  # won on day 20: open in bin 0, won in bin 1
    assert by_row[1] == [[0, LOST, 1.0]]
    # censored on day 20: never a loss, bin 1 counts for the third of it that was observed
    assert by_row[2] == [[0, OPEN, 1.0], [1, OPEN, pytest.approx(1 / 3)]]
    assert by_row[3] == [[i, OPEN, 1.0] for i in range(6)]  # won after the 90-day window: open throughout
    assert by_row[4] == [[0, OPEN, 1.0], [1, WON, 1.0]]  # day 30 is the end of bin 1
    assert by_row[5] == [[i, OPEN, 1.0] for i in range(6)]
    assert (rows["label"] == LOST).sum() == 1


def test_aalen_johansen_matches_a_hand_computation() -> None:
    # at risk 4: day 10 one win (S 3/4), day 20 one loss (S 3/4 * 2/3), day 30 one win of the last two
    aj = AalenJohansen().fit(None, np.array([10.0, 20.0, 25.0, 30.0]), np.array([WON, LOST, OPEN, WON]))
    assert aj.cif(9) == 0.0 and aj.cif(10) == pytest.approx(0.25)
    assert aj.cif(30) == pytest.approx(0.25 + 0.5 * 1.0)  # at day 30 only one snapshot is at risk


def test_concordance_counts_pairs_by_hand() -> None:
    # events at 1 (risk 3) and 2 (risk 1); censored at 3 (risk 2). Pairs: (1,2) yes, (1,3) yes, (2,3) no.
    assert concordance(np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0]), np.array([1, 1, 0])) == pytest.approx(
        2 / 3
    )


def test_training_labels_are_censored_at_the_cutoff(tables) -> None:
    snapshots = make_snapshots(tables)
    cutoff = snapshots["as_of"].quantile(0.6)
    train = snapshots[snapshots["as_of"] < cutoff].reset_index(drop=True)
    durations, events = snapshot_outcomes(tables, train, until=cutoff)
    # Rewriting every outcome after the cutoff (status and time) must not change a single training label.
    rewritten = dict(tables)
    outcomes = tables["outcomes"].copy()
    late = outcomes["closed_at"] > cutoff
    outcomes.loc[late, "status"] = "won"
    outcomes.loc[late, "closed_at"] = outcomes.loc[late, "closed_at"] + pd.Timedelta(days=3)
    rewritten["outcomes"] = outcomes
    assert late.sum() > 100
    d2, e2 = snapshot_outcomes(rewritten, train, until=cutoff)
    np.testing.assert_array_equal(events, e2)
    np.testing.assert_allclose(durations, d2)
    ends = pd.to_datetime(train["as_of"], utc=True) + pd.to_timedelta(durations, unit="D")
    assert (ends <= cutoff + pd.Timedelta(seconds=1)).all()
    # leads that closed after the cutoff are censored there, not lost
    closed_late = train["lead_id"].isin(outcomes.loc[late, "lead_id"]).to_numpy()
    assert (events[closed_late] == OPEN).all() and closed_late.sum() > 50
    # person-period rows never reach past the cutoff
    row, k, _, _ = person_period(durations, events, 15, 6)
    assert (k * 15 < durations[row]).all()


@pytest.fixture(scope="module")
def trained(tables):
    return train_closedate(tables, num_rounds=150, max_leads=3000, num_threads=2)  # half the world: fast


def test_horizons_are_monotone_probabilities(trained, tables) -> None:
    snaps = make_snapshots(tables).sample(500, random_state=1).reset_index(drop=True)
    pred = trained.model.predict(trained.pipeline.transform(tables, snaps))
    p30, p60, p90 = (pred[f"p_won_{d}"].to_numpy() for d in (30, 60, 90))
    assert ((p30 >= 0) & (p90 <= 1)).all()
    assert (p30 <= p60 + 1e-12).all() and (p60 <= p90 + 1e-12).all()
    assert ((pred["expected_close_days"] > 0) & (pred["expected_close_days"] < 90)).all()
    again = pickle.loads(pickle.dumps(trained.model)).predict(trained.pipeline.transform(tables, snaps.head(50)))
    pd.testing.assert_frame_equal(again, pred.head(50))


def test_model_beats_aalen_johansen_on_the_later_period(trained) -> None:
    m, aj = trained.metrics["closedate"], trained.metrics["aalen_johansen"]
    print(f"closedate on seed 11's later period: {m}")
    assert m["h90"]["n"] >= 300 and m["h30"]["n"] >= 1000
    assert aj["h90"]["auc"] == pytest.approx(0.5)  # no covariates, no ranking
    assert m["h90"]["auc"] >= 0.75 and m["h30"]["auc"] >= 0.75
    assert m["c_index_90"] >= aj["c_index_90"] + 0.2
    # not grossly miscalibrated (half a 6k world: ~1,300 matured 90-day snapshots, a few hundred wins)
    assert abs(m["h30"]["mean_predicted"] - m["h30"]["observed_rate"]) < 0.04
    assert abs(m["h90"]["mean_predicted"] - m["h90"]["observed_rate"]) < 0.08


def test_loss_within_is_the_competing_risks_incidence_at_bin_edges(trained, tables) -> None:
    snaps = make_snapshots(tables).sample(300, random_state=2).reset_index(drop=True)
    x = trained.pipeline.transform(tables, snaps)
    model = trained.model  # train_closedate's model is not anchored
    won, lost = model.cumulative_incidence(x)
    p = model.loss_within(x, (7, 14, 15, 30, 90))
    np.testing.assert_allclose(p[:, 2], np.minimum(lost[:, 0], 1 - won[:, 0]), atol=1e-9)
    np.testing.assert_allclose(p[:, 3], np.minimum(lost[:, 1], 1 - won[:, 1]), atol=1e-9)
    np.testing.assert_allclose(p[:, 4], model.predict(x)["p_lost_90"], atol=1e-9)
    assert (np.diff(p, axis=1) >= -1e-12).all()
    assert ((p[:, 0] > 0) & (p[:, 0] < p[:, 1]) & (p[:, 1] < p[:, 2])).all(), "inside the first bin, by time"
    with pytest.raises(ValueError, match="loss horizon 120 days"):
        model.loss_within(x.head(2), (120,))


def test_an_anchored_win_curve_caps_the_loss(trained, tables) -> None:
    class Sure:
        def predict(self, features):
            return np.full(len(features), 0.97)

    snaps = make_snapshots(tables).sample(50, random_state=3).reset_index(drop=True)
    x = trained.pipeline.transform(tables, snaps)
    model = pickle.loads(pickle.dumps(trained.model)).anchor_to(Sure())
    p = model.loss_within(x, (30, 90))
    assert (p[:, 1] <= 0.03 + 1e-9).all()
    assert (p[:, 0] <= 1 - model.predict(x)["p_won_30"].to_numpy() + 1e-9).all()
