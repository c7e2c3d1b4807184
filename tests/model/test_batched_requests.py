"""Requests batched together by the service get exactly the answers they would get alone."""

from __future__ import annotations

import copy

from features.contract import ContractError
from leadscore.tools.demo import example_request


def test_requests_scored_together_answer_as_if_alone(trained, sim_dir) -> None:
    artifact = trained["result"].artifact
    leads = example_request(sim_dir, n_leads=10)["leads"]
    as_of = example_request(sim_dir, n_leads=1)["as_of"]
    twin = copy.deepcopy(leads[0]) | {"lead_id": "twin-of-first"}  # same phone: a duplicate within its request
    requests = [
        {"as_of": as_of, "leads": leads[:3]},
        {"leads": "not a list"},
        {"as_of": "2026-06-01T09:00:00", "leads": leads[2:8] + [leads[-1]]},  # shares a lead; has the bad one
        {"as_of": as_of, "leads": [leads[0], twin]},
    ]
    together = artifact.score_requests(requests, all_factors=[False, False, True, False])
    assert isinstance(together[1], ContractError) and "leads" in str(together[1])
    assert together[0] == artifact.score_request(requests[0])
    assert together[2] == artifact.score_request(requests[2], all_factors=True)
    assert together[3] == artifact.score_request(requests[3])
    # The duplicate screen and the owner figures see only the request's own leads.
    assert [r.screening.duplicate_of for r in together[3].results] == [None, leads[0]["lead_id"]]
    assert all(r.screening.duplicate_of is None for r in together[0].results)
    assert together[2].errors[0].lead_id == "bad-example"
    assert together[2].results[0].explanation.factors
