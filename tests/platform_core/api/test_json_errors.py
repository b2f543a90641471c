"""Every answer under /api/ is JSON in the one error shape: unknown paths, trailing slashes, 404, 405, 500."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _error(response) -> dict:  # noqa: ANN001
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    "path", ["/api/nothing", "/api/v1/", "/api/v1/no/such/route", "/api/v2/events", "/api/"]
)
def test_unknown_api_paths_answer_a_json_404_with_any_method(client, method, path):
    r = getattr(client, method)(path)
    assert r.status_code == 404
    assert _error(r)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/events/", "/api/v1/users/alice/", "/api/v1/models/"])
def test_a_trailing_slash_answers_a_json_404_naming_the_route_without_it(api_client, path):
    r = api_client.get(path)
    assert r.status_code == 404
    assert f"Did you mean {path.rstrip('/')} " in _error(r)["message"]


def test_a_wrong_method_answers_a_json_405(api_client):
    r = api_client.patch("/api/v1/events", {}, format="json")
    assert r.status_code == 405 and _error(r)["code"] == "method_not_allowed"


def test_a_server_error_under_api_answers_json_500(api_client, monkeypatch):
    from platform_core.catalog import selectors

    def broken(**kwargs):  # noqa: ANN003, ANN202
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "enduser_get_for_tenant", broken)
    api_client.raise_request_exception = False
    r = api_client.get("/api/v1/users/u1")
    assert r.status_code == 500
    error = _error(r)
    assert error["code"] == "server_error" and "boom" not in error["message"]


def test_pages_outside_the_api_keep_djangos_html_404():
    r = Client().get("/admin-nothing/here")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")


def test_schema_and_docs_still_answer(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("name", ["filter_params", "context"])
def test_json_query_parameters_nested_past_the_stack_answer_400(api_client, name):
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    r = api_client.get(
        "/api/v1/popular" if name == "filter_params" else "/api/v1/users/u1/recommendations", {name: deep}
    )
    assert r.status_code == 400
    assert _error(r)["fields"] == {name: ["must be a JSON object"]}
