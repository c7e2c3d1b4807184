"""Hostile input: whatever a client sends, the loaders and the feature code answer with a per-lead error
or a score, never a crash, a NaN in the JSON or a lost lead; and a lead that breaks the code costs only
its own answer."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import features.pipeline
from features.contract import TABLES, ContractError, validate_table

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),  # control characters, surrogates excluded
    st.just("价格" * 50_000),  # 100,000 characters
    st.sampled_from(["\x00\x01\x1b[31m", "'; DROP TABLE predictions; --", "<script>alert(1)</script>", "\u202e"]),
)
HOSTILE_SCALAR = st.one_of(
    HOSTILE_TEXT,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["9999-12-31T23:59:59", "0001-01-01", "1e400", "2026-02-30", "NaN", "inf", "-0"]),
)
HOSTILE_VALUE = st.one_of(
    HOSTILE_SCALAR,
    st.lists(HOSTILE_SCALAR, max_size=3),
    st.dictionaries(st.text(max_size=5), HOSTILE_SCALAR, max_size=3),
)


def _row(table: str):
    names = [f.name for f in TABLES[table].fields]
    return st.dictionaries(st.sampled_from(names), HOSTILE_VALUE, max_size=len(names))


VALID_LEAD = {"lead_id": "L-ok", "created_at": "2026-05-01T10:00:00+08:00", "form_text": "想了解一下价格，请联系我"}


@st.composite
def hostile_requests(draw):
    leads = []
    for i in range(draw(st.integers(1, 4))):
        lead = draw(_row("leads"))
        if draw(st.booleans()):  # most have a plausible id and time, so the deeper code gets to run
            lead.setdefault("lead_id", draw(st.sampled_from([f"L{i}", "L0", "L-ok"])))  # duplicated ids too
            lead.setdefault("created_at", "2026-04-01T09:00:00")
        for name in ("web_events", "activities", "stage_changes"):
            if draw(st.booleans()):
                lead[name] = draw(st.one_of(st.lists(_row(name), max_size=4), HOSTILE_SCALAR))
        leads.append(lead)
    return {
        "as_of": draw(st.one_of(st.none(), st.just("2026-06-01T00:00:00"), HOSTILE_SCALAR)),
        "leads": [*leads, VALID_LEAD],
    }


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
@given(request=hostile_requests())
def test_any_request_gets_answers_or_errors_never_a_crash(trained, request) -> None:
    artifact = trained["result"].artifact
    try:
        answer = artifact.score_request(request).model_dump(mode="json")
    except ContractError as exc:  # the request as a whole is unreadable (e.g. as_of): a clear message
        assert str(exc)
        return
    text = json.dumps(answer, ensure_ascii=False, allow_nan=False)  # valid JSON: no NaN or inf anywhere
    assert text
    sent_ids = {str(lead.get("lead_id")) for lead in request["leads"] if isinstance(lead, dict)}
    answered = {r["lead_id"] for r in answer["results"]} | {str(e["lead_id"]) for e in answer["errors"]}
    assert "L-ok" in {r["lead_id"] for r in answer["results"]} or any(e["lead_id"] == "L-ok" for e in answer["errors"])
    # An entry names the lead by its id, by its place when it has no usable id, or "*" for a whole table.
    places = {f"#{i}" for i in range(len(request["leads"]))} | {
        f"line {i + 1}" for i in range(len(request["leads"]) + 1)
    }
    assert answered <= sent_ids | {"None", "*"} | places
    for result in answer["results"]:
        assert 0 <= result["health_score"] <= 100 and math.isfinite(result["win_probability"])


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
@given(table=st.sampled_from(list(TABLES)), rows=st.data())
def test_the_loader_reports_hostile_cells_and_never_raises_for_a_row(table, rows) -> None:
    """A CSV reads every cell as text: any text in any column is a reported problem or a kept value."""
    names = [f.name for f in TABLES[table].fields]
    drawn = rows.draw(
        st.lists(st.fixed_dictionaries({n: st.one_of(HOSTILE_TEXT, st.just("")) for n in names}), max_size=6)
    )
    raw = pd.DataFrame(drawn, columns=names, dtype=object).astype(str)
    known = pd.Index(raw["lead_id"]) if table != "leads" else None
    result = validate_table(table, raw, known)
    kept = result.tables[table]
    assert len(kept) <= len(raw)
    assert len(kept) == len(raw) or result.errors  # a dropped row is always reported
    for field in TABLES[table].fields:
        if field.type in ("number", "integer") and field.name in kept:
            values = pd.to_numeric(kept[field.name], errors="coerce").to_numpy(float)
            assert not np.isinf(values).any(), f"{table}.{field.name} kept an infinite number"


def test_a_lead_that_breaks_the_features_gets_an_error_and_the_others_are_scored(trained, tables, monkeypatch) -> None:
    """Fault injection: the feature code fails whenever it is asked about one lead."""
    from leadscore.tools.demo import lead_request

    artifact = trained["result"].artifact
    ids = tables["leads"]["lead_id"].head(5).tolist()
    request = lead_request(tables, ids, tables["leads"]["created_at"].max())
    expected = {r.lead_id: r.health_score for r in artifact.score_request(request).results}
    broken_id = ids[2]
    original = features.pipeline.raw_features

    def breaks_on_one_lead(tables_, snapshots, *args, **kwargs):
        if snapshots["lead_id"].astype(str).str.endswith(broken_id).any():
            raise RuntimeError("injected fault")
        return original(tables_, snapshots, *args, **kwargs)

    monkeypatch.setattr(features.pipeline, "raw_features", breaks_on_one_lead)
    answer = artifact.score_request(request).model_dump(mode="json")
    scored = {r["lead_id"]: r["health_score"] for r in answer["results"]}
    assert set(scored) == set(ids) - {broken_id}
    assert scored == pytest.approx({k: v for k, v in expected.items() if k != broken_id})  # as if nothing broke
    [error] = answer["errors"]
    assert error["lead_id"] == broken_id and "could not be scored" in error["problems"][0]["reason"]
    assert "injected fault" not in json.dumps(answer)  # internals stay in the log, not the answer
