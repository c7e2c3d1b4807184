"""The simulator: deterministic, realistic within documented ranges, and its truth consistent with the export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import load_export
from leadscore.tools.simulator import simulate
from leadscore.tools.simulator.realism import REALISM_RANGES, realism_figures

TABLE_NAMES = ["leads", "web_events", "activities", "stage_changes", "outcomes"]


def test_same_seed_gives_identical_export_and_truth(tmp_path: Path) -> None:
    simulate(400, 5, tmp_path / "a", progress=False)
    simulate(400, 5, tmp_path / "b", progress=False)
    simulate(400, 6, tmp_path / "c", progress=False)
    for name in TABLE_NAMES + ["truth/snapshots", "truth/counterfactuals", "truth/leads"]:
        a = pd.read_parquet(tmp_path / "a" / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, pd.read_parquet(tmp_path / "b" / f"{name}.parquet"))
    a = pd.read_parquet(tmp_path / "a" / "leads.parquet")
    c = pd.read_parquet(tmp_path / "c" / "leads.parquet")
    assert not a["form_text"].equals(c["form_text"])


@pytest.fixture(scope="module")
def figures(sim_dir: Path) -> dict[str, float]:
    return realism_figures(sim_dir)


@pytest.mark.parametrize("name", list(REALISM_RANGES))
def test_realism_figure_within_documented_range(figures: dict[str, float], name: str) -> None:
    low, high = REALISM_RANGES[name]
    assert low <= figures[name] <= high, f"{name} = {figures[name]:.3f}, documented range [{low}, {high}]"


def test_oracle_is_informative_but_not_deterministic(sim_dir: Path, figures: dict[str, float]) -> None:
    snapshots = pd.read_parquet(sim_dir / "truth" / "snapshots.parquet")
    assert 0.75 <= figures["oracle_auc_90d"] <= 0.95
    assert snapshots["matured"].sum() >= 300
    # Probabilities, not verdicts: most snapshots are genuinely uncertain.
    assert ((snapshots["p_won_90"] > 0.05) & (snapshots["p_won_90"] < 0.95)).mean() > 0.5
    assert (snapshots["p_won_30"] <= snapshots["p_won_60"]).all() and (
        snapshots["p_won_60"] <= snapshots["p_won_90"]
    ).all()


def test_form_text_has_real_variety(tables) -> None:
    text = tables["leads"]["form_text"].dropna()
    assert text.nunique() > 0.5 * len(text)
    assert text.str.contains(r"[\uff01-\uff5e]").any(), "full-width characters"
    assert text.str.contains(r"[a-zA-Z]{2,}").any(), "English words and product codes"
    assert text.str.contains("[😊👍🙏🔥💰]").any(), "emoji"
    assert text.str.contains(r"\d").any(), "numbers and budgets"
    assert text.str.contains("抱价|设被|连系|价个|参素|为修").any(), "typos"


def test_hidden_intent_and_spam_show_in_text_and_channels(tables, sim_dir: Path) -> None:
    truth = pd.read_parquet(sim_dir / "truth" / "leads.parquet").set_index("lead_id")
    leads = tables["leads"].set_index("lead_id").join(truth)
    spam_by_channel = leads.groupby("channel")["is_spam"].mean()
    assert spam_by_channel["短信"] > 2 * spam_by_channel["转介绍"]
    job = leads[leads["invalid_kind"] == "job_seeker"]["form_text"].dropna()
    assert job.str.contains("简历|招|应聘|岗位|实习").mean() > 0.9


def test_recorded_stage_often_differs_from_the_true_stage(figures: dict[str, float]) -> None:
    assert figures["stage_mismatch_share"] > 0.2


def test_duplicates_share_phone_and_company_within_30_days(tables, sim_dir: Path) -> None:
    truth = pd.read_parquet(sim_dir / "truth" / "leads.parquet")
    leads = tables["leads"].set_index("lead_id")
    dups = truth.dropna(subset=["duplicate_of"])
    assert 0.02 < len(dups) / len(truth) < 0.06
    later, earlier = leads.loc[dups["lead_id"]], leads.loc[dups["duplicate_of"]]
    both = later["phone"].notna().to_numpy() & earlier["phone"].notna().to_numpy()
    assert both.mean() > 0.8
    assert (later["phone"].to_numpy() == earlier["phone"].to_numpy())[both].all()
    gap = later["created_at"].to_numpy() - earlier["created_at"].to_numpy()
    assert (gap >= pd.Timedelta(0)).all() and (gap <= pd.Timedelta(days=30)).all()


def test_export_contains_rows_stamped_after_the_outcome(tables) -> None:
    acts = tables["activities"].merge(tables["outcomes"], on="lead_id")
    after = acts[acts["ts"] > acts["closed_at"]]
    assert (after[after["status"] == "won"]["attachment_type"] == "付款凭证").any()
    assert after[after["status"] == "lost"]["note"].str.contains("竞品|取消|关闭|丢单").any()


def test_true_stage_process_is_non_linear(sim_dir: Path) -> None:
    timeline = pd.read_parquet(sim_dir / "truth" / "stage_timeline.parquet")
    truth = pd.read_parquet(sim_dir / "truth" / "leads.parquet").set_index("lead_id")
    sample_stage = timeline[timeline["true_stage"] == "样品验证"]["lead_id"].unique()
    assert truth.loc[sample_stage, "requires_sample"].all(), "样品验证 only where the deal needs a sample"
    order = {
        s: i
        for i, s in enumerate(
            ["新线索", "初步接触", "需求确认", "方案沟通", "样品验证", "报价", "招标比价", "合同谈判"]
        )
    }
    rank = timeline["true_stage"].map(order)
    steps_back = (rank.groupby(timeline["lead_id"]).diff() < 0).sum()
    assert steps_back > 0, "deals sometimes step back"


def test_actions_have_positive_true_effects(sim_dir: Path) -> None:
    cf = pd.read_parquet(sim_dir / "truth" / "counterfactuals.parquet")
    fresh = cf[~cf["already_done"]]
    mean_effect = fresh.groupby("action")["effect"].mean()
    assert (mean_effect[["demo", "finance", "decision_maker"]] > 0).all()
    assert np.isclose(cf["p_won_90_with"] - cf["p_won_90_without"], cf["effect"]).all()


def test_export_is_valid_under_the_contract_and_truth_is_separate(sim_dir: Path) -> None:
    assert sorted(p.name for p in sim_dir.iterdir() if p.is_file()) == sorted(f"{n}.parquet" for n in TABLE_NAMES)
    result = load_export(sim_dir)
    assert result.problems == []
    hidden = {"true_intent", "urgency", "hidden_fit", "duplicate_of"}
    assert not hidden & {c for frame in result.tables.values() for c in frame.columns}


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 10"):
        simulate(3, 1, tmp_path)
    with pytest.raises(ValueError, match="parquet or csv"):
        simulate(100, 1, tmp_path, table_format="xlsx")
