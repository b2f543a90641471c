"""No input makes an analytics endpoint answer 5xx: cases generated from their OpenAPI description."""

from __future__ import annotations

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.core import NotSet

from tests.platform_core.analytics.conftest import at


def _schema() -> dict:
    import django

    django.setup()
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


schema = schemathesis.openapi.from_dict(_schema()).include(
    path_regex=r"^/api/v1/(analytics/|trending|users/\{external_id\}/trajectory)"
)


@pytest.fixture
def client(tenant, plant, api_client_for):  # noqa: ANN001, ANN201
    plant(tenant, "u1", "view", at(0), user_attrs={"country": "DE"})
    plant(tenant, "u1", "purchase", at(0, minutes=5), amount=5.0)
    return api_client_for(tenant, scopes=["read"])


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_never_a_server_error(case, client):  # noqa: ANN001
    if case.method == "GET":
        response = client.get(case.formatted_path, case.query or {})
    else:
        body = case.body
        if not isinstance(body, bytes):  # generated bodies: JSON values, raw bytes, or none
            body = "" if isinstance(body, NotSet) else json.dumps(body)
        response = client.generic(case.method, case.formatted_path, body, content_type="application/json")
    assert response.status_code < 500, (case.body, case.query, response.content[:500])
