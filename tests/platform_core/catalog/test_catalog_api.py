"""/api/v1/users and /api/v1/items: upserts, reads, lists, erasure, isolation."""

from __future__ import annotations

import pytest

from platform_core.catalog.models import EndUser, Item
from platform_core.catalog.signals import user_erased
from platform_core.events.models import Event
from tests.factories import EndUserFactory, EventFactory, ItemFactory

pytestmark = pytest.mark.django_db
SHOE = {"category": "shoes", "price": 59.0}


def test_put_creates_then_replaces_a_user(api_client, tenant):
    r = api_client.put("/api/v1/users/alice", {"attributes": {"country": "FR"}}, format="json")
    assert r.status_code == 201
    assert r.json()["user_id"] == "alice" and r.json()["attributes"] == {"country": "FR"}
    r = api_client.put("/api/v1/users/alice", {"attributes": {"loyalty_tier": "gold"}}, format="json")
    assert r.status_code == 200
    assert api_client.get("/api/v1/users/alice").json()["attributes"] == {"loyalty_tier": "gold"}
    assert EndUser.objects.for_tenant(tenant).count() == 1


def test_put_validates_against_the_domain_schema(api_client, tenant):
    r = api_client.put("/api/v1/items/sku1", {"attributes": {"price": -1}}, format="json")
    assert r.status_code == 400
    fields = r.json()["error"]["fields"]
    assert set(fields) == {"attributes.price", "attributes.category"}
    r = api_client.put("/api/v1/items/sku1", {"attributes": SHOE, "colour": "red"}, format="json")
    assert r.json()["error"]["fields"] == {"colour": ["is not a known field"]}
    assert Item.objects.for_tenant(tenant).count() == 0


def test_item_put_get_and_active_flag(api_client, tenant):
    r = api_client.put("/api/v1/items/sku1", {"attributes": SHOE, "active": False}, format="json")
    assert r.status_code == 201
    body = api_client.get("/api/v1/items/sku1").json()
    assert (body["item_id"], body["attributes"], body["active"]) == ("sku1", SHOE, False)


def test_bulk_upsert_counts_created_and_updated_and_is_all_or_nothing(api_client, tenant):
    ItemFactory(tenant=tenant, external_id="a", attributes={"category": "old"})
    rows = [{"item_id": "a", "attributes": SHOE}, {"item_id": "b", "attributes": SHOE}]
    r = api_client.post("/api/v1/items", {"items": rows}, format="json")
    assert r.json() == {"created": 1, "updated": 1}
    assert Item.objects.for_tenant(tenant).get(external_id="a").attributes == SHOE
    bad = [{"item_id": "c", "attributes": SHOE}, {"item_id": "d", "attributes": {}}, {"item_id": 5}]
    r = api_client.post("/api/v1/items", {"items": bad}, format="json")
    assert r.status_code == 400
    assert set(r.json()["error"]["fields"]) == {
        "items[1].attributes.category",
        "items[2].item_id",
        "items[2].attributes.category",
    }
    assert Item.objects.for_tenant(tenant).count() == 2
    r = api_client.post("/api/v1/users", {"users": [{"user_id": "x"}, {"user_id": "x"}]}, format="json")
    assert r.json()["error"]["fields"] == {"users[1].user_id": ["appears twice in this batch"]}


def test_lists_are_paginated_by_cursor_and_filtered(api_client, tenant, other_tenant):
    for n in range(5):
        EndUserFactory(tenant=tenant, external_id=f"vip-{n}")
    EndUserFactory(tenant=tenant, external_id="other")
    EndUserFactory(tenant=other_tenant, external_id="vip-9")
    page1 = api_client.get("/api/v1/users", {"limit": 3, "external_id_prefix": "vip-"}).json()
    assert [u["user_id"] for u in page1["results"]] == ["vip-4", "vip-3", "vip-2"]
    page2 = api_client.get(page1["next"]).json()
    assert [u["user_id"] for u in page2["results"]] == ["vip-1", "vip-0"] and page2["next"] is None
    ItemFactory(tenant=tenant, external_id="on")
    ItemFactory(tenant=tenant, external_id="off", active=False)
    r = api_client.get("/api/v1/items", {"active": "false"}).json()
    assert [i["item_id"] for i in r["results"]] == ["off"]
    assert api_client.get("/api/v1/items", {"active": "maybe"}).status_code == 400
    assert api_client.get("/api/v1/users", {"updated_since": "soon"}).json()["error"]["fields"] == {
        "updated_since": ["must be an ISO 8601 datetime with a time zone"]
    }


def test_erasure_removes_the_user_and_their_events_and_reports_counts(
    api_client, tenant, django_capture_on_commit_callbacks
):
    user = EndUserFactory(tenant=tenant, external_id="bob")
    kept = EventFactory(tenant=tenant)
    EventFactory(tenant=tenant, user=user)
    EventFactory(tenant=tenant, user=user)
    seen = []
    user_erased.connect(lambda **kw: seen.append(kw["external_id"]), weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            r = api_client.delete("/api/v1/users/bob")
    finally:
        user_erased.disconnect(dispatch_uid="t")
    assert r.status_code == 200
    body = r.json()
    assert body["deleted"] == {"catalog.EndUser": 1, "events.Event": 2}
    assert body["erasure_id"] > 0
    assert list(Event.objects.for_tenant(tenant).values_list("pk", flat=True)) == [kept.pk]
    assert api_client.get("/api/v1/users/bob").status_code == 404
    assert seen == ["bob"]


def test_delete_item_needs_admin_and_cascades_to_its_events(api_client_for, tenant):
    item = ItemFactory(tenant=tenant, external_id="sku")
    EventFactory(tenant=tenant, item=item)
    assert api_client_for(tenant, scopes=["ingest", "read"]).delete("/api/v1/items/sku").status_code == 403
    r = api_client_for(tenant, scopes=["admin"]).delete("/api/v1/items/sku")
    assert r.json() == {"deleted": {"catalog.Item": 1, "events.Event": 1}}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/users/{u}", None),
        ("delete", "/api/v1/users/{u}", None),
        ("get", "/api/v1/items/{i}", None),
        ("delete", "/api/v1/items/{i}", None),
    ],
)
def test_another_tenants_id_gives_the_same_404_as_a_missing_one(
    api_client, other_client, tenant, method, path, body
):
    user = EndUserFactory(tenant=tenant, external_id="alice")
    item = ItemFactory(tenant=tenant, external_id="sku1")
    EventFactory(tenant=tenant, user=user, item=item)
    theirs = getattr(other_client, method)(path.format(u="alice", i="sku1"))
    missing = getattr(api_client, method)(path.format(u="nobody", i="nothing"))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    # nothing of tenant A changed
    assert EndUser.objects.for_tenant(tenant).count() == 1 and Event.objects.for_tenant(tenant).count() == 1


def test_tenant_b_put_and_lists_never_touch_tenant_a(api_client, other_client, tenant, other_tenant):
    api_client.put("/api/v1/users/alice", {"attributes": {"country": "FR"}}, format="json")
    r = other_client.put("/api/v1/users/alice", {"attributes": {"country": "DE"}}, format="json")
    assert r.status_code == 201  # B's own, new alice
    assert EndUser.objects.for_tenant(tenant).get().attributes == {"country": "FR"}
    assert [u["user_id"] for u in other_client.get("/api/v1/users").json()["results"]] == ["alice"]
    ItemFactory(tenant=tenant)
    assert other_client.get("/api/v1/items").json()["results"] == []
