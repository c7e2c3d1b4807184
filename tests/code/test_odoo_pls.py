"""Odoo's predictive lead scoring reproduced on examples computed by hand from its formula
(addons/crm/models/crm_lead.py, _pls_prepare_frequencies / _pls_update_frequency_table /
_pls_get_naive_bayes_probabilities), and its point-in-time use on contract tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import empty_table, validate_table
from training.odoo_pls import OdooPLS, fit_pls, phone_state, score_snapshots

STAGES = ("New", "Qualified", "Won")


def _training() -> tuple[pd.DataFrame, np.ndarray]:
    # W1, W2 won; L1 lost in Qualified; L2 lost in New without a phone.
    values = pd.DataFrame(
        {
            "stage": ["Won", "Won", "Qualified", "New"],
            "phone_state": ["correct", "incorrect", "correct", None],
            "source_id": ["A", "B", "A", "A"],
        }
    )
    return values, np.array([True, True, False, False])


def _model() -> OdooPLS:
    values, won = _training()
    return OdooPLS(fields=("phone_state", "source_id"), stages=STAGES, won_stages=("Won",)).fit(values, won)


def test_frequency_table_counts_every_stage_for_a_won_lead_and_stages_up_to_the_last_for_a_lost_one() -> None:
    table = {(f["variable"], f["value"]): (round(f["won"], 6), round(f["lost"], 6)) for f in _model().frequencies_}
    # By hand, +0.1 on each count: New won 2 lost 2 (L1 passed it, L2 lost in it); Qualified won 2 lost 1;
    # Won won 2 lost 0; phone correct 1/1, incorrect 1/0, unset ('False') 0/1; source A 1/2, B 1/0.
    assert table == {
        ("stage_id", "New"): (2.1, 2.1),
        ("stage_id", "Qualified"): (2.1, 1.1),
        ("stage_id", "Won"): (2.1, 0.1),
        ("phone_state", "correct"): (1.1, 1.1),
        ("phone_state", "incorrect"): (1.1, 0.1),
        ("phone_state", "False"): (0.1, 1.1),
        ("source_id", "A"): (1.1, 2.1),
        ("source_id", "B"): (1.1, 0.1),
    }


def test_probabilities_match_the_hand_computed_naive_bayes() -> None:
    leads = pd.DataFrame(
        {
            "stage": ["Qualified", "New", "Won", None],
            "phone_state": ["correct", None, "correct", "correct"],
            "source_id": ["B", "A", "A", "A"],
        }  # fmt: skip
    )
    p = _model().predict_proba(leads)[:, 1]
    # Lead 1: P(won) = P(lost) = 2.1 / 4.2 (the first stage's counts). S(won)/S(lost) =
    # (2.1/2.1)/(1.1/2.1) * (1.1/2.3)/(1.1/2.3) * (1.1/2.2)/(0.1/2.2) = 21, so p = 21/22 = 95.45 %.
    # Lead 2: (2.1/2.1)/(2.1/2.1) * (0.1/2.3)/(1.1/2.3) * (1.1/2.2)/(2.1/2.2) = 1/21, so p = 1/22 = 4.55 %.
    # A lead in a won stage scores 100 %, a lead without a stage 0 %.
    assert p[0] == pytest.approx(0.9545) and p[1] == pytest.approx(0.0455)
    assert p[2] == 1.0 and p[3] == 0.0


def test_a_team_uses_its_own_table_and_a_lead_without_one_uses_all_teams() -> None:
    values = pd.DataFrame(
        {
            "stage": ["Won", "New", "Won", "New", "New"],
            "team": ["T1", "T1", "T2", "T2", "T2"],
            "source_id": ["A", "B", "B", "A", "A"],
        }  # fmt: skip
    )
    model = OdooPLS(fields=("source_id",), stages=STAGES, won_stages=("Won",)).fit(
        values, [True, False, True, False, False]
    )
    leads = pd.DataFrame({"stage": ["New", "New", "New"], "team": ["T1", "T2", None], "source_id": ["A", "A", "A"]})
    p = model.predict_proba(leads)[:, 1]
    # T1 (W: A, L: B): P(won) = 1.1/2.2; source A won 1.1 of 1.2, lost 0.1 of 1.2 -> ratio 11 -> 11/12.
    # T2 (W: B, L: A, A): P(won)/P(lost) = 1.1/2.1; source A won 0.1 of 1.2, lost 2.1 of 2.2
    #     -> S(won)/S(lost) = (1.1/2.1) * (0.1/1.2) / (2.1/2.2) = 0.04573 -> 4.37 %.
    # No team: both teams added up: New 2.2 / 3.2; source A won 1.2 of 2.4, lost 2.2 of 3.4
    #     -> (2.2/3.2) * (1.2/2.4) / (2.2/3.4) = 0.53125 -> 34.69 %.
    assert p == pytest.approx([0.9167, 0.0437, 0.3469], abs=1e-6)


def test_a_tag_seen_on_fewer_than_50_leads_is_ignored() -> None:
    values = pd.DataFrame({"stage": ["Won"] * 60 + ["New"] * 60, "tag_ids": ["big"] * 60 + ["big,rare"] + ["big"] * 59})
    model = OdooPLS(fields=("tag_ids",), stages=STAGES, won_stages=("Won",)).fit(values, [True] * 60 + [False] * 60)
    with_rare = model.predict_proba(pd.DataFrame({"stage": ["New"], "tag_ids": ["big,rare"]}))[:, 1]
    without = model.predict_proba(pd.DataFrame({"stage": ["New"], "tag_ids": ["big"]}))[:, 1]
    assert with_rare == pytest.approx(without)


def test_phone_state_reads_mainland_numbers_strictly_and_others_by_length() -> None:
    states = phone_state(pd.Series(["13800000000", "12345", "+1 660-485-0224", None, "11111111111"]))
    assert states.tolist() == ["correct", "incorrect", "correct", None, "incorrect"]


def _tables(closed_after_cutoff: str) -> dict[str, pd.DataFrame]:
    leads = pd.DataFrame(
        {
            "lead_id": ["a", "b", "c", "d", "e"],
            "created_at": ["2024-01-01T00:00:00+08:00"] * 5,
            "channel": ["web", "web", "fair", "fair", "web"],
            "phone": ["13800000001"] * 5,
        }  # fmt: skip
    )
    outcomes = pd.DataFrame(
        {
            "lead_id": ["a", "b", "c", "d"],
            "status": ["won", "lost", "won", closed_after_cutoff],
            "closed_at": [
                "2024-02-01T00:00:00+08:00",
                "2024-02-02T00:00:00+08:00",
                "2024-02-03T00:00:00+08:00",
                "2024-05-01T00:00:00+08:00",
            ],
        }  # fmt: skip
    )
    stages = pd.DataFrame({"lead_id": ["b", "e"], "ts": ["2024-01-10T00:00:00+08:00", "2024-04-10T00:00:00+08:00"],
                           "stage": ["需求确认", "报价"]})  # fmt: skip
    tables = {"leads": validate_table("leads", leads).tables["leads"]}
    known = pd.Index(tables["leads"]["lead_id"])
    tables["outcomes"] = validate_table("outcomes", outcomes, known).tables["outcomes"]
    tables["stage_changes"] = validate_table("stage_changes", stages, known).tables["stage_changes"]
    tables["activities"], tables["web_events"] = empty_table("activities"), empty_table("web_events")
    return tables


def test_the_table_is_point_in_time_and_stages_are_read_as_of_each_snapshot() -> None:
    cutoff = pd.Timestamp("2024-03-01", tz="Asia/Shanghai")
    won_later, lost_later = (fit_pls(_tables(s), cutoff, fields=("source_id",)) for s in ("won", "lost"))
    # d closes after the cutoff: whether it was won or lost cannot change the table.
    assert won_later.frequencies_ == lost_later.frequencies_
    snapshots = pd.DataFrame(
        {"lead_id": ["e", "e"], "as_of": pd.to_datetime(["2024-04-01", "2024-04-20"]).tz_localize("Asia/Shanghai")}
    )
    before, after = score_snapshots(won_later, _tables("won"), snapshots)
    # Before 2024-04-10, e is in the first stage; after it, in 报价, where no lost lead ever was.
    assert after > before
