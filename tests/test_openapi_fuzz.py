"""Issue 11, "No 5xx from bad input": schemathesis fuzzes every operation of the published OpenAPI
document (/api/v1/openapi.json) through the in-process WSGI app, with a management key and an
inference key, valid and invalid inputs alike. No response may be a 5xx, and no request moves credit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from billing.selectors import org_ledger_snapshot
from billing.services import credits_grant
from organizations.services import IssuedKey
from tests.support import Triad

MAX_EXAMPLES = 25


@pytest.fixture
def wsgi_app() -> Iterator[Any]:
    # The WSGI handler closes (at start and finish) "obsolete" connections after each request, and inside the test's
    # transaction that would be ours; Django's own test client disconnects the same receiver.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_the_schema_is_published_without_a_key(client: Any) -> None:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/keys/", "/api/v1/keys/{key_hash}/", "/api/v1/credits/", "/api/v1/key"} <= set(doc["paths"])
    create = doc["paths"]["/api/v1/keys/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create == {"$ref": "#/components/schemas/KeyCreateInput"}
    assert doc["components"]["schemas"]["KeyCreateInput"]["properties"]["limit"]["type"] == "number"
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def _fuzz(strategy: st.SearchStrategy[Case[Any]], headers: dict[str, str], codes: set[int]) -> None:
    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case: Case[Any]) -> None:
        response = case.call(headers=headers)
        codes.add(response.status_code)
        # Raises (with a curl reproduction) on any 5xx.
        case.validate_response(response, checks=[not_a_server_error])

    exercise()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("which", ["management", "inference"])
def test_no_operation_answers_5xx_and_no_failure_moves_credit(
    wsgi_app: Any,
    triad: Triad,
    api_key: IssuedKey,
    management_key: IssuedKey,
    which: str,
    mode: GenerationMode,
) -> None:
    credits_grant(organization=triad.org, amount_nanos=10_000_000_000, reason="fuzz")
    key = management_key if which == "management" else api_key
    headers = {"Authorization": f"Bearer {key.key}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)
    before = org_ledger_snapshot(triad.org.pk)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "every operation in the document must be valid"
    assert len(operations) >= 8
    statuses: dict[str, set[int]] = {}

    for operation in operations:
        strategies = [operation.as_strategy(generation_mode=mode)]
        if "{key_hash}" in operation.path:
            # Random hashes only ever find nothing (404): also aim at a real key, so bodies reach validation.
            pinned = {"key_hash": api_key.api_key.hash}
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=pinned))
        codes = statuses.setdefault(operation.label, set())
        _fuzz(st.one_of(*strategies), headers, codes)
        # Nothing these endpoints do may touch the ledger: a failed (or a management) call moves no credit.
        assert org_ledger_snapshot(triad.org.pk) == before, operation.label

    assert all(code < 500 for codes in statuses.values() for code in codes), statuses
    # The fuzzer reached the views, not just the authentication layer.
    reached = {code for codes in statuses.values() for code in codes}
    assert 200 in reached or 201 in reached, statuses
    assert reached & {400, 404}, statuses
