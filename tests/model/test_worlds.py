"""Issue 16's quality bars over five randomised worlds (mean and worst case), at a size CI can afford.

For each seed, a story drawn from it (leadscore/tools/simulator/story.py) tells a training world and a judging
world (`bench.worlds.world_figures`); the models trained on the first, model selection included, are judged
on the second. `python -m bench.worlds` runs the same at 8,000 leads per world (bench/results/worlds.md).
A bar this size does not reach is a strict xfail stating the figure measured: if it is ever reached, the
xfail fails and the bar becomes a plain assertion.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from bench.worlds import world_figures

SEEDS = (71, 72, 73, 74, 75)  # never used to tune the simulator or the candidates
TRAIN_LEADS = JUDGE_LEADS = 2000
NOISE = 0.005  # training/gate.py's BASELINE_NOISE: the "beyond noise"
pytestmark = pytest.mark.timeout(3600)  # the first test waits for every world


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[int, dict]:
    """Every world's figures, two worlds at a time: much of a world's work (simulation, features) runs on one
    core. The models train with a fixed thread count (models/health.py), so the figures do not depend on it.
    Spawned, not forked: this process has LightGBM's OpenMP threads running already."""
    root = tmp_path_factory.mktemp("worlds")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = {seed: pool.submit(world_figures, seed, TRAIN_LEADS, JUDGE_LEADS, root=root) for seed in SEEDS}
        return {seed: run.result() for seed, run in runs.items()}


def _all(worlds: dict[int, dict]) -> dict[str, np.ndarray]:
    rows = [worlds[seed] for seed in SEEDS]
    print("\n".join(f"{r['world']}: {r['served']} AUC {r['auc']:.3f} (best baseline {r['best_baseline_auc']:.3f}) "
                    f"share {r['oracle_share']:.3f} ECE {r['ece_all_matured']:.3f}" for r in rows))  # fmt: skip
    return {k: np.array([r[k] for r in rows]) for k in rows[0] if isinstance(rows[0][k], float)}


@pytest.mark.parametrize("seed", SEEDS)
def test_selection_serves_a_model_that_beats_the_baselines_on_its_own_folds(seed: int, worlds: dict) -> None:
    """Selection inside the training export: the served model is never below the best baseline there."""
    figures = worlds[seed]
    assert figures["fold_auc_margin_over_best_baseline"] >= -NOISE, figures


@pytest.mark.parametrize("seed", SEEDS)
def test_the_served_model_is_no_worse_than_a_coin_on_the_judging_world(seed: int, worlds: dict) -> None:
    """A floor every world must clear: the model ranks the judging world's later period and its close-date
    probabilities stay calibrated within 0.1."""
    figures = worlds[seed]
    assert figures["auc"] > 0.7 and figures["closedate_ece_all_30d"] <= 0.1, figures


def test_on_average_the_served_model_is_not_below_the_best_baseline(worlds: dict) -> None:
    figures = _all(worlds)
    assert figures["gain_over_best_baseline"].mean() >= -NOISE, figures


def test_close_date_reaches_three_fifths_of_the_oracle_on_every_world(worlds: dict) -> None:
    figures = _all(worlds)
    for days in (30, 60, 90):
        assert figures[f"closedate_oracle_share_{days}d"].min() >= 0.6, figures


@pytest.mark.xfail(strict=True, reason="2,000-lead worlds: worst gain -0.028 (world 73), mean +0.013")
def test_health_beats_the_best_baseline_on_every_world_and_by_two_points_on_average(worlds: dict) -> None:
    gain = _all(worlds)["gain_over_best_baseline"]
    assert gain.min() >= -NOISE and gain.mean() >= 0.02, gain


@pytest.mark.xfail(strict=True, reason="2,000-lead worlds: oracle share mean 0.73, worst 0.65")
def test_health_reaches_the_oracle_share_bars(worlds: dict) -> None:
    share = _all(worlds)["oracle_share"]
    assert share.mean() >= 0.90 and share.min() >= 0.85, share


@pytest.mark.xfail(strict=True, reason="2,000-lead worlds: ECE over all matured snapshots 0.050 on average")
def test_health_is_calibrated_on_average_over_worlds(worlds: dict) -> None:
    assert _all(worlds)["ece_all_matured"].mean() <= 0.02


@pytest.mark.xfail(strict=True, reason="2,000-lead worlds: close-date oracle share worst 0.83 / 0.68 / 0.65 and ECE "
                   "worst 0.047 / 0.077 / 0.094 at 30 / 60 / 90 days")  # fmt: skip
def test_close_date_meets_the_classic_worlds_bars_on_every_world(worlds: dict) -> None:
    figures = _all(worlds)
    for days in (30, 60, 90):
        assert figures[f"closedate_oracle_share_{days}d"].min() >= 0.85, figures
        assert figures[f"closedate_ece_all_{days}d"].max() <= 0.02, figures
