"""Odoo's predictive lead scoring (PLS), as the crm module computes it, as a baseline.

Read from odoo/odoo addons/crm/models/crm_lead.py (the `_pls_*` methods; the version that clamps the
result to [0.01, 99.99]):

- Frequency table (`_pls_prepare_frequencies`, `_pls_update_frequency_table`, rebuild mode): per sales team
  (no team = team 0), per field and value (compared as strings), the number of won and of lost leads, each
  created with +0.1 ("should be +1 but it weights too much on small recordset"). A won lead counts in
  every stage; a lost lead in its stage and every stage of lower sequence. A field counts when its value is
  set, except phone_state / email_state, whose unset value counts as 'False'. Tags count one by one.
- Probability (`_pls_get_naive_bayes_probabilities`): per team, the frequencies of that team; a lead with
  no team, or a team without frequencies, uses all teams' frequencies added up (team -1). The team's won
  and lost totals are the counts of the first stage (lowest sequence). For each of the lead's (field,
  value) pairs present in the table: S(won) *= won(value) / won_total(field) (won_total = the team's won
  total for the stage), the same for lost; starting from P(won) = team_won / team_total. A tag value with
  fewer than 50 won + lost is ignored. P = S(won) / (S(won) + S(lost)), rounded to 0.01 % and clamped to
  [0.01 %, 99.99 %]. A lead in a won stage scores 100 %, a lead without a stage 0 %.
- Which leads: every won lead and every lost lead (archived, probability 0) since crm.pls_start_date. Here:
  the leads closed before the cutoff, so the table is point in time.

Odoo's fields on our contract (the frequency fields Odoo offers, crm_lead_prediction_data.xml):
  stage_id    <- the recorded stage at as_of (stage_changes; none yet = the first stage, 新线索, as Odoo
                 puts every new lead in its first stage); the ladder's order is the sequence, 赢单 is_won;
                 a lost lead's stage is its last recorded one before the loss
  team_id     <- leads.team when the export has it (Odoo, Maven: the manager), else no team
  phone_state <- 'correct' / 'incorrect' / unset from leads.phone (mainland numbers checked as the
                 screening does; others by their E.164 length, where Odoo uses the phonenumbers library)
  email_state <- 'correct' / 'incorrect' / unset from leads.email (an address pattern)
  source_id   <- leads.channel       state_id <- leads.province      country_id <- leads.country
  tag_ids     <- a column named by the caller (e.g. Maven's product), values split on ','
Odoo's default crm.pls_fields is phone_state and email_state; a team that turns scoring on picks more of
them. `DEFAULT_FIELDS` uses every one the export can fill; the bench states which it used.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.contract import OPEN_STAGES, WON_STAGE
from features.screening import LANDLINE, MOBILE, normalize_phone

STATE_FIELDS = ("phone_state", "email_state")  # their unset value counts (as 'False')
TAG_FIELD = "tag_ids"
TAG_MIN_COUNT = 50
LADDER = [*OPEN_STAGES, WON_STAGE]
CONTRACT_FIELDS = {"source_id": "channel", "state_id": "province", "country_id": "country"}
DEFAULT_FIELDS = ("phone_state", "email_state", "source_id", "state_id", "country_id", TAG_FIELD)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _is_set(value: object) -> bool:
    if value is None or value is False or value == "" or value == 0:
        return False
    return not (isinstance(value, float) and value != value)


@dataclass
class OdooPLS:
    """`fit(values, won)` on closed leads; `predict_proba(values)` -> (n, 2) like sklearn.

    values: one row per lead with a `stage` column (one of `stages`), an optional `team` column and one
    column per entry of `fields` (tag_ids: a list of tags or a comma-separated string).
    `stages` is the stage order (Odoo's sequence); `won_stages` those with is_won.
    """

    fields: Sequence[str] = STATE_FIELDS
    stages: Sequence[str] = tuple(LADDER)
    won_stages: Sequence[str] = ("赢单",)
    frequencies_: list[dict] = field(default_factory=list, init=False, repr=False)

    def fit(self, values: pd.DataFrame, won: np.ndarray) -> OdooPLS:
        won = np.asarray(won, dtype=bool)
        sequence = {s: i for i, s in enumerate(self.stages)}
        counts: dict = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # (team, field) -> value -> [won, lost]
        for row, is_won in zip(self._rows(values), won, strict=True):
            team = row["team"]
            w, lost = (1, 0) if is_won else (0, 1)
            stage = row["stage"]
            if _is_set(stage):
                # A won lead counts in every stage, a lost one in its stage and the earlier ones.
                reached = list(self.stages) if is_won else [s for s in self.stages if sequence[s] <= sequence[stage]]
                for s in reached:
                    counts[(team, "stage_id")][str(s)][0] += w
                    counts[(team, "stage_id")][str(s)][1] += lost
            for name in self.fields:
                for value in self._field_values(row, name):
                    counts[(team, name)][str(value)][0] += w
                    counts[(team, name)][str(value)][1] += lost
        # One record per (team, field, value), created with +0.1 on both counts.
        self.frequencies_ = [
            {"team": team, "variable": name, "value": value, "won": c[0] + 0.1, "lost": c[1] + 0.1}
            for (team, name), by_value in counts.items()
            for value, c in by_value.items()
        ]
        self._tables = self._result()
        return self

    def _rows(self, values: pd.DataFrame) -> list[dict]:
        team = values["team"] if "team" in values else pd.Series([None] * len(values), index=values.index)
        out = []
        for i, row in enumerate(values.to_dict("records")):
            t = team.iloc[i]
            row["team"] = t if _is_set(t) else 0  # no team = team 0 (team_id None in the table)
            out.append(row)
        return out

    def _field_values(self, row: dict, name: str) -> list:
        value = row.get(name)
        if name == TAG_FIELD:
            tags = value if isinstance(value, list) else str(value).split(",") if _is_set(value) else []
            return [t.strip() if isinstance(t, str) else t for t in tags if _is_set(t)]
        if _is_set(value):
            return [value]
        return [False] if name in STATE_FIELDS else []

    def _result(self) -> dict:
        """Odoo's `result`: per team with frequencies, and -1 for all teams added up; tags under 50 dropped."""
        result: dict = {}

        def slot(team):
            return result.setdefault(team, defaultdict(lambda: {"won_total": 0.0, "lost_total": 0.0}))

        everyone = slot(-1)
        for f in self.frequencies_:
            if f["variable"] == TAG_FIELD and f["won"] + f["lost"] < TAG_MIN_COUNT:
                continue
            if f["team"] != 0:
                mine = slot(f["team"])[f["variable"]]
                mine[f["value"]] = {"won": f["won"], "lost": f["lost"]}
                mine["won_total"] += f["won"]
                mine["lost_total"] += f["lost"]
            agg = everyone[f["variable"]]
            agg.setdefault(f["value"], {"won": 0.0, "lost": 0.0})
            agg[f["value"]]["won"] += f["won"]
            agg[f["value"]]["lost"] += f["lost"]
            agg["won_total"] += f["won"]
            agg["lost_total"] += f["lost"]
        first = str(self.stages[0])
        for table in result.values():
            counts = table["stage_id"].get(first) if "stage_id" in table else None
            table["_team"] = (counts["won"], counts["lost"]) if counts else (0.0, 0.0)
        return result

    def predict_proba(self, values: pd.DataFrame) -> np.ndarray:
        if not self.frequencies_:
            raise ValueError("OdooPLS is not fitted (or had no closed leads to learn from)")
        p = np.array([self._one(row) for row in self._rows(values)], dtype=float)
        return np.column_stack([1 - p, p])

    def _one(self, row: dict) -> float:
        stage = row["stage"]
        if not _is_set(stage):
            return 0.0
        if stage in self.won_stages:
            return 1.0
        team = row["team"] if row["team"] in self._tables and row["team"] != 0 else -1
        table = self._tables[team]
        team_won, team_lost = table["_team"]
        if not team_won or not team_lost:  # Odoo leaves such a lead's probability as it was
            return float("nan")
        s_won, s_lost = team_won / (team_won + team_lost), team_lost / (team_won + team_lost)
        pairs = [("stage_id", stage)] + [(n, v) for n in self.fields for v in self._field_values(row, n)]
        for name, value in pairs:
            field_result = table.get(name) if name in table else None
            counts = field_result.get(str(value)) if field_result else None
            if not counts or str(value) in ("won_total", "lost_total"):
                continue
            total_won = team_won if name == "stage_id" else field_result["won_total"]
            total_lost = team_lost if name == "stage_id" else field_result["lost_total"]
            if not total_won or not total_lost:
                continue
            s_won *= counts["won"] / total_won
            s_lost *= counts["lost"] / total_lost
        percent = min(max(round(100 * s_won / (s_won + s_lost), 2), 0.01), 99.99)
        return percent / 100


# ------------------------------------------------------------------------------- the contract, point in time


def phone_state(phone: pd.Series) -> pd.Series:
    digits = normalize_phone(phone)
    china = digits.str.match(r"^(?:1\d{10}|0\d{9,11})$").fillna(False)
    valid = digits.str.match(MOBILE).fillna(False) | digits.str.match(LANDLINE).fillna(False)
    valid = valid.where(china, digits.str.len().between(7, 15).fillna(False))
    return pd.Series(
        np.where(digits.isna(), None, np.where(valid, "correct", "incorrect")), index=phone.index, dtype=object
    )


def email_state(email: pd.Series) -> pd.Series:
    text = email.astype("string").str.strip()
    valid = text.str.match(_EMAIL).fillna(False)
    return pd.Series(
        np.where(text.isna(), None, np.where(valid, "correct", "incorrect")), index=email.index, dtype=object
    )


def _stages_of(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The ladder, with any stage name the export uses that is not on it placed before 赢单."""
    recorded = set(tables["stage_changes"]["stage"].dropna().astype(str)) - set(LADDER) - {"丢单"}
    return LADDER[:-1] + sorted(recorded) + [LADDER[-1]]


def _ns(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(pd.Series(times), utc=True).dt.tz_localize(None).to_numpy("datetime64[ns]")


def _recorded_stage(tables: dict[str, pd.DataFrame], lead_ids: pd.Series, at: pd.Series, first: str) -> np.ndarray:
    """The latest recorded stage at or before each time (丢单 is not a stage in Odoo: the one before it);
    the first stage if none."""
    changes = tables["stage_changes"]
    changes = changes[changes["stage"].notna() & (changes["stage"] != "丢单")]
    if not len(changes):
        return np.full(len(lead_ids), first, dtype=object)
    left = pd.DataFrame({"lead_id": lead_ids.astype(str).to_numpy(), "t": _ns(at), "_row": np.arange(len(lead_ids))})
    right = pd.DataFrame({"lead_id": changes["lead_id"].astype(str).to_numpy(), "t": _ns(changes["ts"]),
                          "stage": changes["stage"].to_numpy(object)})  # fmt: skip
    merged = pd.merge_asof(left.sort_values("t"), right.sort_values("t"), on="t", by="lead_id")
    stage = merged.sort_values("_row")["stage"].to_numpy(object)
    return np.where(pd.isna(stage), first, stage)


def odoo_values(tables: dict[str, pd.DataFrame], lead_ids: pd.Series, at: pd.Series, tag_column: str | None = None,
                stages: list[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """Odoo's PLS values of each lead at each time: stage then, team and the lead's fields."""
    stages = stages or _stages_of(tables)
    leads = tables["leads"].set_index("lead_id")
    rows = leads.reindex(lead_ids.astype(str).to_numpy())
    out = pd.DataFrame(index=range(len(lead_ids)))
    out["stage"] = _recorded_stage(tables, lead_ids, at, stages[0])
    out["team"] = rows["team"].to_numpy(object) if "team" in rows else None
    out["phone_state"] = phone_state(rows["phone"].reset_index(drop=True))
    out["email_state"] = email_state(rows["email"].reset_index(drop=True))
    for odoo_field, contract_field in CONTRACT_FIELDS.items():
        out[odoo_field] = rows[contract_field].to_numpy(object) if contract_field in rows else None
    out[TAG_FIELD] = rows[tag_column].to_numpy(object) if tag_column and tag_column in rows else None
    return out


def usable_fields(tables: dict[str, pd.DataFrame], tag_column: str | None = None) -> tuple[str, ...]:
    """The frequency fields this export can fill (a field with no value anywhere is left out)."""
    leads = tables["leads"]
    present = {"phone_state": "phone", "email_state": "email", **CONTRACT_FIELDS, TAG_FIELD: tag_column}
    return tuple(f for f in DEFAULT_FIELDS if present[f] in leads and leads[present[f]].notna().any())


def fit_pls(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, fields: Sequence[str] | None = None,
            tag_column: str | None = None) -> OdooPLS:  # fmt: skip
    """Odoo's frequency table from the leads won or lost before `cutoff` (their stage when they closed)."""
    outcomes = tables["outcomes"]
    closed = outcomes[outcomes["status"].isin(["won", "lost"]) & (outcomes["closed_at"] < cutoff)]
    if not len(closed):
        raise ValueError(f"Odoo's scoring needs leads won or lost before {cutoff}; there are none")
    # Without any lost lead (an export that never dates a loss) Odoo still scores: every lost count is 0.1.
    stages = _stages_of(tables)
    values = odoo_values(tables, closed["lead_id"], closed["closed_at"], tag_column, stages)
    values.loc[(closed["status"] == "won").to_numpy(), "stage"] = "赢单"
    fields = tuple(fields) if fields is not None else usable_fields(tables, tag_column)
    return OdooPLS(fields=fields, stages=tuple(stages)).fit(values, (closed["status"] == "won").to_numpy())


def score_snapshots(model: OdooPLS, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame,
                    tag_column: str | None = None) -> np.ndarray:  # fmt: skip
    """P(won) of Odoo's scoring for (lead_id, as_of) snapshots, from what was recorded by as_of."""
    values = odoo_values(tables, snapshots["lead_id"], snapshots["as_of"], tag_column, list(model.stages))
    return model.predict_proba(values)[:, 1]
