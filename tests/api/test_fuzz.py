"""Property-based fuzz of the whole OpenAPI schema with schemathesis, with valid and invalid
inputs: whatever a client sends, the API never answers with a server error. Requests carry a
valid key, so the fuzz reaches the routes' own checks; only invalid cases that leave the key
out on purpose (schemathesis' negative security cases) meet a 401. Bounded so it fits CI."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey

EXAMPLES_PER_OPERATION = 30


@schemathesis.serializer("application/x-ndjson")
def _jsonl_body(ctx: object, value: object) -> bytes:
    # The schema gives a JSONL upload as a string; send its text as the body.
    return value.encode() if isinstance(value, str) else bytes(str(value), "utf-8")


@pytest.mark.timeout(600)
def test_no_server_errors_on_any_operation(settings: Settings, team: TeamKey) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10
    failures = []
    statuses: dict[GenerationMode, Counter[int]] = {mode: Counter() for mode in GenerationMode}
    cases = [(op, mode) for op in operations for mode in GenerationMode]
    for operation, mode in cases:

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same examples on every run: a failure reproduces
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=team.headers, checks=[not_a_server_error])
            # Run at once below, within this iteration: `mode` is this iteration's.
            statuses[mode][response.status_code] += 1  # noqa: B023

        try:
            fuzz()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing invalid to send: no constraints
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The key was accepted on every valid call, and valid inputs got through to be served.
    valid = statuses[GenerationMode.POSITIVE]
    assert 401 not in valid, statuses
    assert any(200 <= status < 300 for status in valid), statuses
