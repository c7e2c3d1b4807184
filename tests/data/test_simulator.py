"""The simulator: deterministic, realistic within documented ranges, and its truth consistent with the export."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import load_export
from leadscore.tools.cli import main
from leadscore.tools.simulator import simulate
from leadscore.tools.simulator.assignment import load_world, true_win_probability
from leadscore.tools.simulator.realism import (
    REALISM_RANGES,
    out_of_range,
    ranges_for,
    realism_figures,
    signal_family_auc,
    won_within,
)
from leadscore.tools.simulator.simulate import DAY
from leadscore.tools.simulator.story import FAMILIES, draw, preset, resolve

TABLE_NAMES = ["leads", "web_events", "activities", "stage_changes", "outcomes"]
# Content hashes of simulate(400, 5) before stories existed (commit a443834): the classic story must keep them.
CLASSIC_400_5 = {
    "leads": "83a77cc26fa1f1d6",
    "web_events": "9754c2f9d5278dad",
    "activities": "2ef3bbd102366787",
    "stage_changes": "6d1e02f854e78315",
    "outcomes": "af2801beaafc2322",
}


def _content_hash(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:16]


def test_same_seed_gives_identical_export_and_truth(tmp_path: Path) -> None:
    simulate(400, 5, tmp_path / "a", progress=False, oracle_replicates=30)
    simulate(400, 5, tmp_path / "b", progress=False, oracle_replicates=30)
    simulate(400, 6, tmp_path / "c", progress=False, oracle_replicates=30)
    for name in TABLE_NAMES + ["truth/snapshots", "truth/counterfactuals", "truth/leads", "truth/reps"]:
        a = pd.read_parquet(tmp_path / "a" / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, pd.read_parquet(tmp_path / "b" / f"{name}.parquet"))
    a = pd.read_parquet(tmp_path / "a" / "leads.parquet")
    c = pd.read_parquet(tmp_path / "c" / "leads.parquet")
    assert not a["form_text"].equals(c["form_text"])
    # The default story is drawn from the seed, recorded, and replays from its story.json.
    story = json.loads((tmp_path / "a" / "truth" / "story.json").read_text())
    assert story["name"] == "random-5" and story["seed"] == 5
    assert json.loads((tmp_path / "c" / "truth" / "story.json").read_text())["name"] == "random-6"
    simulate(
        400, 5, tmp_path / "d", story=tmp_path / "a" / "truth" / "story.json", progress=False, oracle_replicates=30
    )
    for name in TABLE_NAMES:
        a = pd.read_parquet(tmp_path / "a" / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, pd.read_parquet(tmp_path / "d" / f"{name}.parquet"))


def test_classic_story_keeps_the_classic_export(tmp_path: Path) -> None:
    simulate(400, 5, tmp_path / "w", story="classic", progress=False, oracle_replicates=10)  # oracle: own stream
    hashes = {name: _content_hash(pd.read_parquet(tmp_path / "w" / f"{name}.parquet")) for name in TABLE_NAMES}
    assert hashes == CLASSIC_400_5
    story = json.loads((tmp_path / "w" / "truth" / "story.json").read_text())
    assert story["name"] == "classic" and story["market_offset"] == -0.8 and story["load_penalty"] == 0.0


def test_stories_are_drawn_from_the_seed_and_presets_are_fixed() -> None:
    assert draw(21) == draw(21) and draw(21) != draw(22)
    assert resolve(None, 21) == draw(21) and resolve("random", 21) == draw(21)
    assert resolve("notes", 3) == resolve("notes", 4) == preset("notes")
    stories = [draw(seed) for seed in range(21, 41)]
    # Random draws really vary the functional forms, not only effect sizes.
    assert {s.size_form for s in stories} == {"log", "sweet_spot"}
    assert {s.budget_form for s in stories} == {"distance", "threshold"}
    assert any(len(s.budget_industries) < 6 for s in stories) and any(len(s.budget_industries) == 6 for s in stories)
    assert any(np.abs(s.channel_customer_effect).max() > 0 for s in stories)
    assert len({round(s.load_penalty, 3) for s in stories}) > 10 and min(s.skill_region_sd for s in stories) > 0
    with pytest.raises(ValueError, match="unknown story 'bogus'"):
        resolve("bogus", 1)


def test_cli_rejects_an_unknown_story_with_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--leads", "100", "--out", str(tmp_path / "x"), "--story", "bogus"]) == 2
    assert "unknown story 'bogus'" in capsys.readouterr().err


STORY_LEADS = 3000


@pytest.fixture(scope="module")
def story_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 3,000-lead world per non-classic preset (seed 23), with a small oracle to stay fast."""
    root = tmp_path_factory.mktemp("stories")
    for name in FAMILIES:
        simulate(STORY_LEADS, 23, root / name, story=name, progress=False, n_snapshots=300, oracle_replicates=30)
    return {name: root / name for name in FAMILIES}


def test_every_preset_stays_within_the_realism_ranges(story_worlds: dict[str, Path]) -> None:
    outside = {name: out_of_range(realism_figures(path), ranges_for(path)) for name, path in story_worlds.items()}
    assert not any(outside.values()), outside


def test_the_family_that_carries_the_outcome_changes_with_the_story(story_worlds: dict[str, Path]) -> None:
    auc = pd.DataFrame({name: signal_family_auc(path) for name, path in story_worlds.items()})  # family x story
    print(auc.round(3))
    for story in FAMILIES:
        # Within a story, its own family's signal ranks first; across stories, it is strongest in its own.
        assert auc[story].idxmax() == story, auc[story]
        assert auc.loc[story].idxmax() == story, auc.loc[story]
    assert (auc.to_numpy().diagonal() > 0.65).all()


def test_story_json_and_hidden_rep_skills_are_in_truth(story_worlds: dict[str, Path]) -> None:
    path = story_worlds["rep"]
    story = json.loads((path / "truth" / "story.json").read_text())
    assert story["name"] == "rep" and set(story["variance"]) >= set(FAMILIES) | {"intent", "noise", "total"}
    assert max(story["variance"], key=lambda k: story["variance"][k] if k in FAMILIES else -1) == "rep"
    reps = pd.read_parquet(path / "truth" / "reps.parquet").set_index("rep_id")
    truth = pd.read_parquet(path / "truth" / "leads.parquet")
    leads = pd.read_parquet(path / "leads.parquet").set_index("lead_id").loc[truth["lead_id"]]
    industry = reps.filter(like="skill_industry:")
    region = reps.filter(like="skill_region:")
    assert industry.shape[1] == 6 and region.shape[1] == 14
    assert industry.std().min() > 0.1 and region.std().min() > 0.1, "skills differ between reps"
    owned = leads["owner_id"].notna().to_numpy()
    owner = leads["owner_id"].to_numpy()[owned]
    expected = (
        industry.to_numpy()[
            reps.index.get_indexer(owner),
            industry.columns.get_indexer("skill_industry:" + truth["true_industry"][owned]),
        ]
        + region.to_numpy()[
            reps.index.get_indexer(owner), region.columns.get_indexer("skill_region:" + truth["true_city"][owned])
        ]
    )
    np.testing.assert_allclose(truth["rep_skill"].to_numpy()[owned], expected)
    assert (truth["owner_load"] >= 0).all() and truth["owner_load"].max() > story["capacity"], "some reps overloaded"


def test_true_win_probability_agrees_with_the_simulated_outcomes(story_worlds: dict[str, Path]) -> None:
    path = story_worlds["rep"]
    w = load_world(path)
    leads = pd.read_parquet(path / "leads.parquet")
    outcomes = pd.read_parquet(path / "outcomes.parquet")
    created_day = (w.leads.loc[leads["lead_id"], "created_t"].to_numpy() // DAY).astype(int)
    sample = leads[leads["owner_id"].notna().to_numpy() & (created_day <= 365 - 91)]
    p = true_win_probability(
        path, sample["lead_id"], sample["owner_id"], w.leads.loc[sample["lead_id"], "owner_load"], replicates=60
    )
    # The world's own outcome: won before the end of the 90th day counted from the creation day.
    observed = won_within(outcomes, sample["lead_id"], pd.to_datetime(sample["created_at"]).dt.floor("D"), 90)
    se = np.sqrt(p.mean() * (1 - p.mean()) / len(p))
    assert abs(p.mean() - observed.mean()) < 3 * se + 0.005, (p.mean(), observed.mean(), se)


def test_stronger_rep_and_lighter_load_give_a_higher_true_probability(
    story_worlds: dict[str, Path], tmp_path: Path
) -> None:
    source = story_worlds["rep"]
    w = load_world(source)
    valid = w.leads[~w.leads["is_spam"] & w.leads["duplicate_of"].isna() & (w.leads["true_industry"] == "医疗器械")]
    lead_ids = valid.index[:150]
    rep = w.reps.index[0]
    reps = np.full(len(lead_ids), rep, dtype=object)
    capacity = w.story.capacity
    light = true_win_probability(source, lead_ids, reps, np.zeros(len(lead_ids)), replicates=80)
    heavy = true_win_probability(source, lead_ids, reps, np.full(len(lead_ids), 3 * capacity), replicates=80)
    assert heavy.mean() < light.mean() - 0.01 and (heavy <= light + 1e-12).mean() > 0.95
    # The same world with this rep made stronger in 医疗器械 (everything else equal, same random numbers).
    stronger = tmp_path / "stronger"
    shutil.copytree(source, stronger)
    table = pd.read_parquet(stronger / "truth" / "reps.parquet")
    table.loc[table["rep_id"] == rep, "skill_industry:医疗器械"] += 1.0
    table.to_parquet(stronger / "truth" / "reps.parquet", index=False)
    better = true_win_probability(stronger, lead_ids, reps, np.zeros(len(lead_ids)), replicates=80)
    assert better.mean() > light.mean() + 0.01 and (better >= light - 1e-12).mean() > 0.95
    with pytest.raises(ValueError, match="not in this world"):
        true_win_probability(source, ["L9999999"], [rep], [0])


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
