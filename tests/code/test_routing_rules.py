"""The routing rules file: the shipped example parses, the first matching rule wins, and a malformed file is
refused with the rule and key named (the service then does not start: serving/service.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.assignment import RoutingRules, RulesError, parse_candidates

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "assignment_rules.toml"


def test_the_example_rules_parse_and_the_first_match_wins() -> None:
    rules = RoutingRules.from_file(EXAMPLE)
    assert rules.max_open == 40 and [r.name for r in rules.rules] == ["华东医疗大单", "个人创业者"]
    big = {"industry": "医疗器械", "province": "江苏", "city": "苏州", "budget_cny": 500000.0}
    assert rules.match(big).name == "华东医疗大单" and rules.match(big).max_open == 8
    assert rules.match(big | {"budget_cny": 499999.0}) is None
    assert rules.match(big | {"budget_cny": None}) is None  # a budget rule needs a budget
    assert rules.match({"customer_type": "个人创业者", "industry": "医疗器械"}).name == "个人创业者"
    assert RoutingRules().match(big) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_open = -1", "max_open must be a non-negative number"),
        ('[[rule]]\nname = "a"\npool = "rep1"', "rule #1 \\(a\\): pool must be a list of strings"),
        ('[[rule]]\nname = "a"\nbudget_min = "many"', "budget_min must be a non-negative number"),
        ("caps = 3", "unknown top-level keys"),
        ("[[rule]\n", "cannot read"),
    ],
)
def test_a_malformed_rules_file_names_what_is_wrong(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match=message):
        RoutingRules.from_file(path)


def test_candidates_are_checked_one_by_one() -> None:
    good, problems = parse_candidates(
        [{"rep_id": "a", "open_leads": 3}, {"rep_id": "a"}, {"rep_id": " "}, {"rep_id": "b", "capacity": 0}, None]
    )
    assert [c.rep_id for c in good] == ["a"]
    assert [(p.rep_id, p.field) for p in problems] == [("a", "rep_id"), (" ", "rep_id"), ("b", "capacity"), ("#4", "*")]
