"""The lean GET path of the recommendation and similar-item endpoints (platform_core/api/lean.py).

Every answer must be the one DRF's own dispatch gives for the same request:
the same status, body and headers that matter; what the lean path does not
handle itself (no key, a bad key, a missing scope, a throttled key) goes
through DRF.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.views import APIView

from platform_core.api.lean import LeanGetMixin
from tests.factories import EndUserFactory
from tests.platform_core.serving.conftest import Shop, events_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def drf_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths that went through DRF's ``initial`` (authentication, permissions, throttles)."""
    calls: list[str] = []
    original = APIView.initial

    def initial(self: APIView, request: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(request.path)
        original(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "initial", initial)
    return calls


def _stable(response: Any) -> Any:
    body = response.json()
    if isinstance(body, dict):
        body.pop("recommendation_id", None)
        body.pop("generated_at", None)
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users/carol/recommendations?k=5",
        "/api/v1/users/carol/recommendations?k=5&explain=true",
        "/api/v1/users/carol/recommendations?filter=category%20%3D%20%22bags%22",
        "/api/v1/users/carol/recommendations?k=0",
        "/api/v1/users/carol/recommendations?explain=maybe",
        "/api/v1/users/carol/recommendations?filter=category%20in",
        "/api/v1/users/carol/recommendations?context=%5B1%5D",
        "/api/v1/users/nobody/recommendations",
        "/api/v1/items/i3/similar?k=3",
        "/api/v1/items/i3/similar?k=3&user=carol",
        "/api/v1/items/nope/similar",
    ],
)
def test_the_lean_path_answers_as_drf_does(
    api_client_for, shop: Shop, drf_calls: list[str], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    carol = EndUserFactory(tenant=shop.tenant, external_id="carol")
    events_make(shop.tenant, carol, ["i2", "i5", "i8"], types=["view", "purchase", "view"])
    client = api_client_for(shop.tenant, scopes=["read"])
    lean = client.get(path)
    assert drf_calls == []  # answered without DRF's dispatch
    monkeypatch.setattr(LeanGetMixin, "_lean_principal", lambda self, request: None)
    drf = client.get(path)
    assert len(drf_calls) == 1
    assert lean.status_code == drf.status_code
    assert _stable(lean) == _stable(drf)
    assert lean["Content-Type"] == drf["Content-Type"] == "application/json"
    if lean.status_code >= 400:
        assert lean.json()["error"]["code"] == drf.json()["error"]["code"]


def test_what_the_lean_path_does_not_handle_goes_through_drf(
    api_client_for, shop: Shop, other_tenant, drf_calls: list[str]
) -> None:
    from rest_framework.test import APIClient

    EndUserFactory(tenant=shop.tenant, external_id="carol")
    path = "/api/v1/users/carol/recommendations"
    anonymous = APIClient()
    assert anonymous.get(path).status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Api-Key pk_nope.nope")
    assert anonymous.get(path).json()["error"]["code"] == "unauthenticated"
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer something")
    assert anonymous.get(path).status_code == 401
    ingest_only = api_client_for(shop.tenant, scopes=["ingest"])
    r = ingest_only.get(path)
    assert r.status_code == 403 and "'read' scope" in r.json()["error"]["message"]
    assert len(drf_calls) == 4
    # Another tenant's key sees none of this tenant's users (its own lookups, through the lean path).
    r = api_client_for(other_tenant, scopes=["read"]).get(path)
    assert r.status_code == 404 and len(drf_calls) == 4


def test_the_throttle_counts_lean_requests_once_and_refuses_through_drf(
    api_client_for, shop: Shop, drf_calls: list[str], two_requests_a_minute: None
) -> None:
    EndUserFactory(tenant=shop.tenant, external_id="carol")
    client = api_client_for(shop.tenant, scopes=["read"])
    path = "/api/v1/users/carol/recommendations"
    assert [client.get(path).status_code for _ in range(2)] == [200, 200]
    assert drf_calls == []
    r = client.get(path)
    assert r.status_code == 429 and r.json()["error"]["code"] == "throttled" and "Retry-After" in r
    # An error answered on the lean path counts like any request, once.
    other = api_client_for(shop.tenant, scopes=["read"])
    assert other.get("/api/v1/users/nobody/recommendations").status_code == 404
    assert other.get(path).status_code == 200
    assert other.get(path).status_code == 429


def test_the_lean_path_writes_what_drf_would_also_for_values_orjson_cannot() -> None:
    from decimal import Decimal

    from platform_core.api.lean import _json
    from platform_core.api.renderers import OrjsonRenderer

    body = {"items": [{"item_id": "a", "flags": {"dose_mg": Decimal("2.5")}}]}
    response = _json(body)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert (
        response.content
        == OrjsonRenderer().render(body)
        == b'{"items":[{"item_id":"a","flags":{"dose_mg":2.5}}]}'
    )
