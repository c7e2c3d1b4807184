"""The published OpenAPI document (BentoML's, from serving/service.py) must stay one a client generator and the
fuzzer can read: every operation yields a valid and an invalid request. Checked here from the service class, in
seconds, so a schema construct OpenAPI 3.0 lacks (a numeric `exclusiveMinimum` from pydantic's `gt=`) fails
here and not an hour into CI, in the fuzzing test of tests/integration/test_reliability.py."""

import schemathesis
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from serving.service import LeadScoring


def test_every_operation_of_the_openapi_document_can_be_generated() -> None:
    spec = LeadScoring.openapi_spec.asdict()
    operations = [result.ok() for result in schemathesis.openapi.from_dict(spec).get_all_operations()]
    assert {"POST /score", "POST /assign", "POST /assign/overdue"} <= {o.label for o in operations}
    unreadable = {}
    for operation in operations:
        for mode in GenerationMode:
            try:
                operation.as_strategy(generation_mode=mode).example()
            except Unsatisfiable:  # an operation without parameters or body has no invalid form
                assert mode is GenerationMode.NEGATIVE
            except Exception as error:  # noqa: BLE001 - what the fuzzer would stop on, reported per operation
                unreadable[f"{operation.label} ({mode.value})"] = f"{type(error).__name__}: {str(error)[:300]}"
    assert not unreadable
