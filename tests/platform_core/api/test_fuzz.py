"""schemathesis against /api/schema/: no 5xx, and every answer matches the OpenAPI document.

Runs in the PostgreSQL stage of ``.ci/run`` (on SQLite it is skipped unless
``API_FUZZ=1``): the Django app is called in process through its WSGI
handler, so it sees this test's transaction, with a key holding every scope
of a tenant with seeded users, items and events. Fixed seed, bounded examples
per operation (``API_FUZZ_EXAMPLES``, default 40), plus a sweep of hostile values
(NUL, deep nesting, huge strings…) through every path and query parameter:
about a minute on 2 cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi import checks as oas

from tests.factories import EventFactory, TenantFactory, api_key_raw

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

SEED = 20261206
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "40"))


def _raw(case: Any) -> str:
    return repr((case.path_parameters, case.query, case.body))


def _enabled() -> bool:
    return connection.vendor == "postgresql" or os.environ.get("API_FUZZ") == "1"


#: Seeded ids by the first segment of a path: a share of the generated requests of an operation
#: with an id in its path use one, so the fuzzer reaches past "no such user" too.
SEEDED_IDS = {"users": "fuzz-user-0", "items": "fuzz-item-0"}


@pytest.fixture
def fuzz_key(db: None) -> str:
    tenant = TenantFactory(slug="fuzz", domain="ecommerce")
    for n in range(5):
        EventFactory(tenant=tenant, user__external_id=f"fuzz-user-{n}", item__external_id=f"fuzz-item-{n}")
    return api_key_raw(tenant=tenant)


#: Values a generic generator seldom makes and attackers always try: the sweep puts each into
#: each path and query parameter of every operation, one at a time.
HOSTILE = (
    "a\x00b",  # NUL: PostgreSQL refuses it in text
    "\x1f\x7f",
    "(" * 400 + "price < 1" + ")" * 400,  # filter nesting
    '{"a": ' * 3000 + "1" + "}" * 3000,  # JSON nesting in a JSON-valued query parameter
    "[" * 3000 + "]" * 3000,
    "x" * 20_000,
    "../../etc/passwd",
    "a/b",
    "😀\u202e",
    "' or 1=1 --",
    "-1",
    "1e309",
    "NaN",
)


def _strategy(operation: Any) -> Any:
    """Valid requests by the document and requests breaking it (which must get a 4xx, not a 5xx)."""
    generated = st.one_of(operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE))
    resource = operation.path.removeprefix("/api/v1/").split("/")[0]
    if "{external_id}" in operation.path and resource in SEEDED_IDS:
        seeded = operation.as_strategy(path_parameters={"external_id": SEEDED_IDS[resource]})
        generated = st.one_of(generated, seeded)
    return generated


@pytest.fixture
def fuzz_schema(db: None) -> Iterator[Any]:
    if not _enabled():
        pytest.skip("the API fuzzer runs in the PostgreSQL stage of .ci/run (or with API_FUZZ=1)")
    # The test client does the same: closing "old" connections at request boundaries would end
    # this test's transaction, and with it the seeded data.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


#: What "matches the schema" means here. Not positive_data_acceptance: a generated id is
#: rarely one of the seeded ones, and "no such user" is a documented 404.
CHECKS = (
    checks.not_a_server_error,
    oas.status_code_conformance,
    oas.content_type_conformance,
    oas.response_headers_conformance,
    oas.response_schema_conformance,
)


def _failure(case: Any, key: str) -> str | None:
    """Send one case with the fuzz key; what broke, or None (a known 5xx counts as None)."""
    case.headers = {**(case.headers or {}), "Authorization": f"Api-Key {key}"}
    response = case.call()
    try:
        case.validate_response(response, checks=list(CHECKS))
    except Exception as exc:  # schemathesis raises a group of its check failures
        return f"{case.operation.label} {_raw(case)[:300]} → {response.status_code}: {str(exc)[:600]}"
    return None


def _fuzz(operation: Any, key: str) -> list[str]:
    """Up to EXAMPLES generated requests of one operation; the first broken rule, if any."""
    failures: list[str] = []

    @given(case=_strategy(operation))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # the same requests every run: SEED below only names it
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as generated
    )
    def run(case: Any) -> None:
        if not failures:
            failures.extend(filter(None, [_failure(case, key)]))

    seed(SEED)(run)()
    return failures


def _sweep(operation: Any, key: str) -> list[str]:
    """Each HOSTILE value in each path and query parameter, the others left plain."""
    resource = operation.path.removeprefix("/api/v1/").split("/")[0]
    plain = {p.name: SEEDED_IDS.get(resource, "1") for p in operation.path_parameters}
    body = {} if operation.body else NOT_SET
    slots = [("path", p.name) for p in operation.path_parameters] + [
        ("query", p.name) for p in operation.query
    ]
    failures = []
    for where, name in slots:
        for value in HOSTILE:
            path, query = dict(plain), {}
            (path if where == "path" else query)[name] = value
            case = operation.Case(path_parameters=path, query=query, body=body, media_type="application/json")
            failures.extend(filter(None, [_failure(case, key)]))
    return failures


@pytest.fixture
def operations(fuzz_schema: Any) -> list[Any]:
    found = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(found) >= 20
    return found


def test_generated_requests_get_documented_answers_and_never_5xx(
    operations: list[Any], fuzz_key: str
) -> None:
    failures = [f for operation in operations for f in _fuzz(operation, fuzz_key)]
    assert not failures, "\n\n".join(failures)


def test_hostile_values_in_any_parameter_get_documented_answers(operations: list[Any], fuzz_key: str) -> None:
    failures = [f for operation in operations for f in _sweep(operation, fuzz_key)]
    assert not failures, "\n\n".join(failures[:20])
