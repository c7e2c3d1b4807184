"""Issue 4's quality bars on the classic story, judged on a simulated world whose seed was never used in
development (issue 16's bars over drawn stories are in test_worlds.py).

The session's trained model (seed 11, 6,000 leads, the evaluation pass's models: tests/conftest.py), the
registry's champion, is judged by `evaluate_champion` on seed 62 against the oracle, the true stage and the true
intent (the true intent on 3,000 of its leads: training/intent.py). A bar this code does not reach is a strict
xfail stating the figure measured: if it is ever reached, the xfail fails and the bar becomes a plain assertion.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.tools.simulator import simulate
from tests.helpers import personal_data_in, scanned_files
from training.evaluate import evaluate_champion

EVAL_LEADS = 12_000  # the oracle's matured snapshots grow with the evaluation world
SMALL = "the session's 6k-lead training world, evaluation-pass models"


@pytest.fixture(scope="module")
def evaluation(trained, tmp_path_factory) -> dict:
    """`leadscore evaluate` of the registry's champion (the session's trained model) on the judging world: its
    figures, its report and its MLflow run."""
    judge = tmp_path_factory.mktemp("bars") / "eval"
    simulate(EVAL_LEADS, 62, judge, story="classic", progress=False)
    out = evaluate_champion(trained["settings"], judge)
    print("quality bars (train seed 11, judged on seed 62):\n  " + "\n  ".join(out["headline"]))
    return out


@pytest.fixture(scope="module")
def figures(evaluation) -> dict[str, float]:
    return evaluation["metrics"]


def test_the_evaluation_report_shows_the_oracle_and_no_personal_data(evaluation) -> None:
    report = Path(evaluation["report"])
    html = report.read_text()
    assert "oracle" in html and "<img" in html and "AUC" in html
    assert evaluation["metrics"]["oracle_oracle_share"] == pytest.approx(
        evaluation["evaluation"]["oracle"]["oracle_share"]
    )
    for days in (30, 60, 90):
        assert 0 < evaluation["metrics"][f"closedate_oracle_share_{days}d"] <= 1.05
    assert 0 <= evaluation["metrics"]["stage_macro_f1_true"] <= 1
    files = scanned_files(report.parent)
    assert files and personal_data_in(files, report.parent) == []


@pytest.fixture(scope="module")
def next_action_figures(figures) -> dict[str, float]:
    return {k.removeprefix("nextaction_"): v for k, v in figures.items() if k.startswith("nextaction_")}


def test_next_actions_come_within_a_point_of_the_oracle_policy(next_action_figures) -> None:
    assert next_action_figures["win_rate_leadscore"] >= next_action_figures["win_rate_oracle"] - 0.01


def test_next_actions_beat_the_playbook_order_and_doing_nothing(next_action_figures) -> None:
    f = next_action_figures
    assert f["win_rate_leadscore"] > f["win_rate_rules_only"], f
    assert f["win_rate_leadscore"] > f["win_rate_no_action"] + 0.005, f
    assert f["share_with_a_playable_action"] >= 0.8, f


@pytest.mark.xfail(
    strict=True, reason=f"0.82 measured ({SMALL}); 0.90 with a 12k world's served refit (docs/models.md)"
)
def test_health_reaches_85_percent_of_the_oracle(figures) -> None:
    assert figures["oracle_oracle_share"] >= 0.85, figures


def test_health_beats_every_customer_baseline_by_three_points(figures) -> None:
    assert figures["auc_gain_over_best_baseline"] >= 0.03, figures


@pytest.mark.xfail(strict=True, reason=f"0.027 measured ({SMALL}); 0.008 with a 12k world's served refit")
def test_health_is_calibrated_over_all_matured_snapshots(figures) -> None:
    assert figures["ece_all_matured"] <= 0.02, figures


@pytest.mark.xfail(
    strict=True,
    reason=f"later period only: ECE 0.090 measured ({SMALL}); 0.013-0.025 over six pairs of 12k -> 20k worlds "
    "(met in four): the judged world's last months win less often than its features say (docs/models.md)",
)
def test_health_is_calibrated_on_the_later_period(figures) -> None:
    assert figures["test_ece"] <= 0.02, figures


@pytest.mark.parametrize(
    "days", [30, 60, pytest.param(90, marks=pytest.mark.xfail(strict=True, reason=f"0.82 measured ({SMALL})"))]
)
def test_close_date_reaches_85_percent_of_the_oracle(figures, days: int) -> None:
    assert figures[f"closedate_oracle_share_{days}d"] >= 0.85, figures


@pytest.mark.xfail(strict=True, reason=f"0.023 / 0.040 / 0.032 measured at 30 / 60 / 90 days ({SMALL})")
@pytest.mark.parametrize("days", [30, 60, 90])
def test_close_date_is_calibrated_over_all_matured_snapshots(figures, days: int) -> None:
    assert figures[f"closedate_ece_all_{days}d"] <= 0.02, figures


def test_stage_macro_f1_and_mismatch_detection(figures) -> None:
    assert figures["stage_macro_f1_true"] >= 0.90, figures
    assert figures["stage_mismatch_f1_true"] >= 0.85, figures


def test_intent_accuracy_on_leads_with_a_form_text(figures) -> None:
    assert figures["intent_accuracy_non_empty"] >= 0.95, figures


@pytest.mark.xfail(
    strict=True, reason="13% of forms are empty and say nothing of intent: 0.876 measured (docs/models-intent.md)"
)
def test_intent_accuracy_on_all_leads(figures) -> None:
    assert figures["intent_accuracy_all"] >= 0.95, figures


def test_no_model_beats_the_oracle(figures) -> None:
    """A model above the oracle would mean leakage: the oracle knows everything the export could."""
    assert figures["oracle_model_auc"] < figures["oracle_oracle_auc"], figures
    for days in (30, 60, 90):
        assert figures[f"closedate_oracle_share_{days}d"] < 1.0, figures
