"""The published OpenAPI document (BentoML's, from serving/service.py) must stay one a client generator and the
fuzzer can read: every operation yields a valid and an invalid request. Checked here from the service class, in
seconds, so a schema construct OpenAPI 3.0 lacks (a numeric `exclusiveMinimum` from pydantic's `gt=`) fails
here and not an hour into CI, in the fuzzing test of tests/integration/test_reliability.py."""

import json

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


def test_optional_top_level_fields_are_published_nullable() -> None:
    """BentoML inlines an endpoint's body and answer keeping one branch of each anyOf: a field that may be null
    must still say so (OpenAPI 3.0 `nullable`), or clients reject the answers the service really sends."""
    spec = json.loads(json.dumps(LeadScoring.openapi_spec.asdict()))  # as /docs.json serves it
    components = spec["components"]["schemas"]
    wrong = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            bodies = [("request", operation.get("requestBody", {}))]
            bodies += [("answer", operation.get("responses", {}).get("200", {}))]
            for role, body in bodies:
                schema = body.get("content", {}).get("application/json", {}).get("schema", {})
                full = components.get(schema.get("title"), {}).get("properties", {})
                for name, field in schema.get("properties", {}).items():
                    may_be_null = {"type": "null"} in full.get(name, {}).get("anyOf", []) or (
                        "default" in field and field["default"] is None
                    )
                    if may_be_null and not field.get("nullable") and {"type": "null"} not in field.get("anyOf", []):
                        wrong.append(f"{method.upper()} {path} {role}: {name}")
    assert not wrong
    answer = spec["paths"]["/assign"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["chosen_rep"]["nullable"] is True
