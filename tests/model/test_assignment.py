"""Assignment (issue 18): the rep segment model's shrinkage and point in time, the ranking of candidate reps with
rules, caps and fallbacks, and duplicates found across requests through the lead store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.labels import export_time
from models.assignment import RoutingRules, RulesError, rank
from models.registry import MODELS
from models.reps import RepSegmentModel, prior_strength
from serving.store import LeadStore
from tests.helpers import at, make_tables

NEW_LEAD = {"lead_id": "n1", "created_at": "2026-06-01T09:00:00", "channel": "官网表单", "industry": "医疗器械",
            "province": "浙江", "city": "杭州", "customer_type": "终端用户", "company_size": 300, "budget_cny": 800000,
            "form_text": "想询问DR设备报价，预算80万左右"}  # fmt: skip
AS_OF = "2026-06-01T09:05:00"


@pytest.fixture(scope="module")
def artifact(trained):
    return trained["result"].artifact


@pytest.fixture(scope="module")
def team(artifact) -> list[dict]:
    """Eight reps of the training history with different loads, all covering everything."""
    reps = artifact.models["rep_segments"].reps_.sort_values("n", ascending=False).index[:8]
    return [{"rep_id": r, "open_leads": float(3 * i), "capacity": 30.0} for i, r in enumerate(reps)]


def test_the_segment_model_is_one_registered_class_fitted_by_training(artifact) -> None:
    assert RepSegmentModel in MODELS
    model = artifact.models["rep_segments"]
    assert set(model.cells_) == {"industry", "region", "channel"}
    assert 0 < model.team_rate_ < 1 and model.strength_["main"] >= model.min_strength
    assert artifact.describe_models()["rep_segments"]


def _history(rows: list[tuple[str, str, str]]) -> dict[str, pd.DataFrame]:
    """Leads (owner, industry, status) created on 2026-01-01, closed a week later unless open."""
    leads = [{"lead_id": f"h{i}", "created_at": "2026-01-01", "owner_id": owner, "industry": industry,
              "city": "杭州", "channel": "百度"} for i, (owner, industry, _) in enumerate(rows)]  # fmt: skip
    outcomes = [{"lead_id": f"h{i}", "status": status, "closed_at": None if status == "open" else "2026-01-08"}
                for i, (_, _, status) in enumerate(rows)]  # fmt: skip
    return make_tables(leads=leads, outcomes=outcomes)


def test_a_rep_with_three_leads_is_not_a_genius() -> None:
    rows = [(f"r{k}", "教育", "won" if j < 2 else "lost") for k in range(10) for j in range(10)]  # 20 % each
    rows += [("lucky", "教育", "won"), ("lucky", "教育", "won"), ("lucky", "教育", "lost")]  # 2 of 3
    model = RepSegmentModel().fit(_history(rows), at("2026-06-01"))
    lucky = model.figures(["lucky", "r0"], {"industry": "教育", "region": "杭州", "channel": "百度"})
    assert lucky["rate"].iat[0] < 0.3 < 2 / 3  # shrunk most of the way back to the team's 20 %
    assert lucky["rate"].iat[0] > lucky["rate"].iat[1]  # but still above an average rep
    unknown = model.figures(["newcomer"], {"industry": "教育", "region": None, "channel": None})
    assert unknown["lift"].iat[0] == 0 and unknown["rate"].iat[0] == pytest.approx(model.team_rate_)


def test_the_prior_strength_follows_the_spread_of_true_rates() -> None:
    rng = np.random.default_rng(0)
    n = np.full(200, 400)
    alike = rng.binomial(n, 0.2)
    spread = rng.binomial(n, rng.beta(2, 8, 200))  # beta(2, 8): mean 0.2, strength 10
    assert prior_strength(n, alike, np.full(200, 0.2), 2, 500) == 500  # only binomial noise: shrink all the way
    assert 6 < prior_strength(n, spread, np.full(200, 0.2), 2, 500) < 16


def test_segment_figures_are_point_in_time() -> None:
    """An outcome after the cutoff is unknown to the model fitted at the cutoff."""
    rows = [("a", "教育", "lost")] * 5 + [("b", "教育", "lost")] * 5
    tables = _history(rows)
    tables["outcomes"].loc[0, ["status", "closed_at"]] = ["won", at("2026-03-01")]  # won later
    before = RepSegmentModel().fit(tables, at("2026-02-01"))
    after = RepSegmentModel().fit(tables, at("2026-06-01"))
    assert before.reps_.loc["a", "wins"] == 0 and after.reps_.loc["a", "wins"] == 1
    young = _history([("a", "教育", "open")])
    assert RepSegmentModel().fit(young, at("2026-02-01")).reps_.empty  # open and under 90 days: unknown


def test_reps_are_ranked_by_expected_win_probability_within_room(artifact, team) -> None:
    full = team[0]["rep_id"]
    reps = [{**r, "open_leads": 30.0} if r["rep_id"] == full else r for r in team]
    answer = rank(artifact, {"as_of": AS_OF, "lead": NEW_LEAD, "reps": reps}, RoutingRules())
    assert answer.status == "assigned" and answer.chosen_rep == answer.ranking[0].rep_id
    with_room = [r for r in answer.ranking if r.has_room]
    assert [r.ranking_score for r in with_room] == sorted((r.ranking_score for r in with_room), reverse=True)
    assert answer.ranking[-1].rep_id == full and not answer.ranking[-1].has_room  # no rep above capacity first
    assert answer.chosen_rep in answer.reason and "预计90天赢单概率" in answer.reason
    probabilities = {r.expected_win_probability for r in answer.ranking}
    assert len(probabilities) > 1  # the rep changes the expected probability
    for r in answer.ranking:
        assert r.reasons and any("待跟进" in s for s in r.reasons)
        assert r.expected_win_probability == pytest.approx(
            1 / (1 + np.exp(-(np.log(r.health_win_probability / (1 - r.health_win_probability)) + r.segment_lift))),
            abs=2e-4,
        )


def test_the_health_probability_per_rep_is_the_re_scored_lead(artifact, team) -> None:
    """Each rep's health probability equals scoring the lead with that rep as its owner_id."""
    answer = rank(artifact, {"as_of": AS_OF, "lead": NEW_LEAD, "reps": team}, RoutingRules())
    for r in answer.ranking[:3]:
        scored = artifact.score_request({"as_of": AS_OF, "leads": [NEW_LEAD | {"owner_id": r.rep_id}]})
        assert scored.results[0].win_probability == pytest.approx(r.health_win_probability, abs=1e-4)


def test_bad_input_gets_per_item_errors_or_documented_fallbacks(artifact, team) -> None:
    reps = [*team[:3], {"rep_id": "nobody-knows"}, {"open_leads": 2}, {"rep_id": team[0]["rep_id"]},
            {"rep_id": "r-bad", "open_leads": -1}]  # fmt: skip
    answer = rank(artifact, {"as_of": AS_OF, "lead": NEW_LEAD, "reps": reps}, RoutingRules())
    assert answer.status == "assigned"
    problems = {(p.rep_id, p.field) for p in answer.rep_errors}
    assert ("#4", "rep_id") in problems and ("r-bad", "open_leads") in problems
    assert any(p.rep_id == team[0]["rep_id"] and "repeated" in p.reason for p in answer.rep_errors)
    newcomer = next(r for r in answer.ranking if r.rep_id == "nobody-knows")
    assert newcomer.segment_lift == 0 and any("按团队先验" in s for s in newcomer.reasons)

    nobody = [{**r, "available": False} for r in team]
    answer = rank(artifact, {"as_of": AS_OF, "lead": NEW_LEAD, "reps": nobody}, RoutingRules())
    assert answer.status == "unassigned" and answer.chosen_rep is None and answer.errors
    assert all("当前不可用" in r.reasons[0] for r in answer.ranking)

    broken = rank(
        artifact, {"as_of": AS_OF, "lead": {"lead_id": "x", "created_at": "昨天"}, "reps": team}, RoutingRules()
    )
    assert broken.status == "rejected" and broken.errors[0].problems[0].field == "created_at"
    assert rank(artifact, {"lead": NEW_LEAD, "reps": "all"}, RoutingRules()).status == "unassigned"


def test_rules_set_the_pool_and_the_cap(artifact, team, tmp_path) -> None:
    pool = [team[5]["rep_id"], team[6]["rep_id"]]
    path = tmp_path / "rules.toml"
    path.write_text(
        f'max_open = 100\n[[rule]]\nname = "浙江医疗"\nindustries = ["医疗器械"]\nregions = ["浙江"]\n'
        f"budget_min = 500000\npool = {pool!r}\nmax_open = {team[5]['open_leads'] + 1}\n".replace("'", '"'),
        encoding="utf-8",
    )
    rules = RoutingRules.from_file(path)
    answer = rank(artifact, {"as_of": AS_OF, "lead": NEW_LEAD, "reps": team}, rules)
    assert answer.pool == "规则「浙江医疗」" and answer.chosen_rep == team[5]["rep_id"]  # team[6] is over the cap
    assert {r.rep_id for r in answer.ranking if r.eligible} == set(pool)
    other = rank(artifact, {"as_of": AS_OF, "lead": NEW_LEAD | {"budget_cny": 1000}, "reps": team}, rules)
    assert other.pool.startswith("按销售") and all(r.cap == 30.0 for r in other.ranking)
    # a pool of unavailable reps widens to every available candidate, and says so
    gone = [{**r, "available": False} if r["rep_id"] in pool else r for r in team]
    widened = rank(artifact, {"as_of": AS_OF, "lead": NEW_LEAD, "reps": gone}, rules)
    assert widened.status == "assigned" and widened.chosen_rep not in pool and widened.fallback
    path.write_text('[[rule]]\nname = "x"\nindustry = ["教育"]\n', encoding="utf-8")
    with pytest.raises(RulesError, match="unknown keys.*industry"):
        RoutingRules.from_file(path)


def test_a_duplicate_is_found_across_requests_through_the_store(artifact, tmp_path) -> None:
    """The first request's lead is remembered; a second request days later with the same phone and company is
    answered as its duplicate, naming the original and its owner; /assign routes it to that owner."""
    store = LeadStore(f"sqlite:///{tmp_path / 'store.db'}")
    first = NEW_LEAD | {"lead_id": "first", "phone": "13800138000", "company_name": "华康医疗科技有限公司",
                        "owner_id": "rep0003"}  # fmt: skip
    leads, earlier = store.complete([first], AS_OF)
    answer = artifact.score_request({"as_of": AS_OF, "leads": leads, "earlier": earlier})
    assert not answer.results[0].screening.duplicate
    store.remember(leads)

    second = NEW_LEAD | {"lead_id": "second", "phone": "+86 138 0013 8000", "company_name": "华康医疗科技有限公司",
                         "created_at": "2026-06-06T09:00:00"}  # fmt: skip
    alone = artifact.score_request({"as_of": "2026-06-06T10:00:00", "leads": [second]})
    assert not alone.results[0].screening.duplicate  # without the store it is not caught
    leads, earlier = store.complete([second], "2026-06-06T10:00:00")
    answer = artifact.score_request({"as_of": "2026-06-06T10:00:00", "leads": leads, "earlier": earlier})
    screening = answer.results[0].screening
    assert screening.duplicate and screening.duplicate_of == "first" and screening.duplicate_owner == "rep0003"

    reps = [{"rep_id": r, "open_leads": 1.0} for r in ("rep0001", "rep0002", "rep0003")]
    routed = rank(artifact, {"as_of": "2026-06-06T10:00:00", "lead": second, "reps": reps, "earlier": earlier},
                  RoutingRules())  # fmt: skip
    assert routed.chosen_rep == "rep0003" and routed.duplicate_of == "first" and "重复线索" in routed.reason
    # outside the window (30 days) it is a new lead again
    late = second | {"lead_id": "late", "created_at": "2026-08-01T09:00:00"}
    leads, earlier = store.complete([late], "2026-08-01T10:00:00")
    answer = artifact.score_request({"as_of": "2026-08-01T10:00:00", "leads": leads, "earlier": earlier})
    assert not answer.results[0].screening.duplicate


def test_channel_quality_is_learned_per_month(artifact, tables) -> None:
    channels = artifact.models["rep_segments"].channels_
    assert set(channels["channel"]) <= set(tables["leads"]["channel"].dropna()) | {"未知"}
    latest = artifact.models["rep_segments"].channel_weights()
    assert not latest.empty and latest["complete"].all() and latest["month"].nunique() == 1
    # the weights average to about 1 over the month's leads (quality relative to the month)
    weighted = np.average(latest["weight"], weights=latest["leads"])
    assert 0.7 < weighted < 1.3
    assert pd.Timestamp(latest["month"].iat[0] + "-01", tz="Asia/Shanghai") < export_time(tables)
