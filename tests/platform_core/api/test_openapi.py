"""The OpenAPI document describes every /api/v1 route fully (what the fuzzer holds answers to)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.platform_core.api.test_route_matrix import METHODS, ROUTES

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def document(django_db_blocker) -> dict:  # noqa: ANN001
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_the_document_is_valid_openapi_without_warnings(tmp_path):
    # drf-spectacular's own validation against the OpenAPI 3 meta-schema; a view it cannot
    # describe is a warning, and --fail-on-warn turns it into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_route_and_method_is_documented(document):
    missing = [
        (route.template, method)
        for route in ROUTES
        for method in METHODS
        if method not in ("HEAD", "OPTIONS")
        and route.implements(method)
        and method.lower() not in document["paths"].get(route.template, {})
    ]
    assert not missing


def test_every_operation_documents_its_success_body_and_the_error_shape(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success, (method, path)
            for code in success:
                assert "application/json" in responses[code].get("content", {}), (method, path, code)
            for code in ("400", "401", "403", "404", "429"):
                schema = responses[code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, code)
            assert "Retry-After" in responses["429"]["headers"]
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "fields"]


@pytest.mark.parametrize(
    ("path", "names"),
    [
        (
            "/api/v1/users/{external_id}/recommendations",
            {"k", "filter", "filter_params", "explain", "explore", "context", "lat", "hour"},
        ),
        ("/api/v1/items/{external_id}/similar", {"k", "filter", "filter_params", "user", "explain"}),
        ("/api/v1/popular", {"window", "k", "filter", "filter_params"}),
        ("/api/v1/users/{external_id}/profile", {"embedding"}),
        ("/api/v1/models", {"limit"}),
        ("/api/v1/events", {"user_id", "item_id", "type", "since", "until", "limit", "cursor"}),
    ],
)
def test_query_parameters_are_documented(document, path, names):
    documented = {p["name"] for p in document["paths"][path]["get"]["parameters"] if p["in"] == "query"}
    assert names <= documented


def test_answers_that_differ_from_the_defaults_are_documented_as_they_are(document):
    paths = document["paths"]
    assert set(paths["/api/v1/users/{external_id}"]["put"]["responses"]) >= {"200", "201"}
    assert "200" in paths["/api/v1/users/{external_id}"]["delete"]["responses"]  # a body, not 204
    assert {"200", "201"} <= set(paths["/api/v1/feedback"]["post"]["responses"])
    assert "requestBody" in paths["/api/v1/feedback"]["post"]
    assert "409" in paths["/api/v1/models/train"]["post"]["responses"]
