"""Keys, scopes, throttling, /healthz and the locally served API docs."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from platform_core.events.models import Event
from platform_core.tenancy.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db
EVENT = {
    "event_id": "e1",
    "user_id": "u1",
    "item_id": "i1",
    "type": "view",
    "timestamp": "2026-01-01T00:00:00Z",
}


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


@pytest.mark.parametrize(
    "header",
    [None, "Bearer abc", "Api-Key ", "Api-Key nodot", "Api-Key 0123456789ab.wrong-secret"],
)
def test_missing_or_wrong_keys_get_401_and_write_nothing(tenant, header):
    r = client_with(header).post("/api/v1/events", EVENT, format="json")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert Event.objects.for_tenant(tenant).count() == 0


def test_revoked_key_is_refused(tenant):
    created = api_key_create(tenant=tenant, scopes=["read"])
    client = client_with(f"Api-Key {created.raw_key}")
    assert client.get("/api/v1/users").status_code == 200
    api_key_revoke(api_key=created.api_key)
    r = client.get("/api/v1/users")
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("scopes", "method", "path", "allowed"),
    [
        (["read"], "post", "/api/v1/events", False),
        (["ingest"], "post", "/api/v1/events", True),
        (["ingest"], "get", "/api/v1/events", False),
        (["read"], "get", "/api/v1/users", True),
        (["read"], "put", "/api/v1/users/u9", False),
        (["ingest"], "delete", "/api/v1/users/u9", False),
        (["admin"], "post", "/api/v1/events", True),
    ],
)
def test_scopes_are_enforced(tenant, api_client_for, scopes, method, path, allowed):
    client = api_client_for(tenant, scopes=scopes)
    body = EVENT if path.endswith("events") else {"attributes": {}}
    r = getattr(client, method)(path, body, format="json")
    if allowed:
        assert r.status_code in (200, 201, 404)
    else:
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "permission_denied" and "scope" in r.json()["error"]["message"]
    if not allowed:
        assert Event.objects.for_tenant(tenant).count() == 0


def test_throttling_is_per_key(tenant, api_client_for, two_requests_a_minute):
    first, second = api_client_for(tenant, scopes=["read"]), api_client_for(tenant, scopes=["read"])
    assert [first.get("/api/v1/users").status_code for _ in range(3)] == [200, 200, 429]
    r = first.get("/api/v1/users")
    assert r.json()["error"]["code"] == "throttled" and "Retry-After" in r.headers
    assert second.get("/api/v1/users").status_code == 200


def test_healthz_touches_no_database(client):
    with CaptureQueriesContext(connection) as queries:
        r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert len(queries) == 0


def test_openapi_schema_and_swagger_ui_are_served_locally(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/events", "/api/v1/users", "/api/v1/users/{external_id}", "/api/v1/items"} <= set(paths)
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui-bundle.js" in page
    # Every script and stylesheet from this server (the page also holds a random CSRF token,
    # so a plain "no 'cdn' anywhere" check would fail now and then).
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(src.startswith("/") for src in sources), sources
    static_url = next(src for src in sources if "swagger-ui-bundle.js" in src)
    assert static_url.startswith("/static/")


def test_swagger_ui_static_files_come_from_this_server(client):
    r = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert r.status_code == 200
    body = b"".join(r.streaming_content) if r.streaming else r.content
    assert len(body) > 100_000
