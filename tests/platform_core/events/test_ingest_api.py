"""POST /api/v1/events: idempotency, atomicity, every bad-input rule, isolation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"


def ev(n: int, **over):
    base = {
        "event_id": f"e{n}",
        "user_id": f"u{n % 3}",
        "item_id": f"i{n % 2}",
        "type": "view",
        "timestamp": "2026-01-01T12:00:00Z",
    }
    base.update(over)
    return base


def count(tenant) -> int:
    return Event.objects.for_tenant(tenant).count()


def test_batch_is_stored_and_entities_created_on_the_fly(api_client, tenant):
    batch = [ev(n) for n in range(5)] + [
        ev(5, type="purchase", value=19.5, context={"amount": 19.5, "quantity": 1})
    ]
    r = api_client.post(URL, {"events": batch}, format="json")
    assert r.status_code == 201, r.json()
    # 6 events; users u0,u1,u2; items i0,i1
    assert r.json() == {"received": 6, "inserted": 6, "duplicates": 0, "users_created": 3, "items_created": 2}
    assert count(tenant) == 6
    purchase = Event.objects.for_tenant(tenant).get(event_id="e5")
    assert (purchase.type, purchase.value, purchase.context) == (
        "purchase",
        19.5,
        {"amount": 19.5, "quantity": 1},
    )
    assert purchase.timestamp == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    assert purchase.user.external_id == "u2" and purchase.item.external_id == "i1"


def test_single_event_object_and_optional_item(api_client, tenant):
    r = api_client.post(URL, ev(1, item_id=None, type="view"), format="json")
    # the placeholder ecommerce 'view' requires an item; domain errors are merged into the 400
    assert r.status_code == 400
    assert "item_id" in r.json()["error"]["fields"]
    r = api_client.post(URL, ev(1), format="json")
    assert r.status_code == 201 and r.json()["inserted"] == 1


def test_same_batch_twice_gives_same_rows_and_all_duplicates(api_client, tenant):
    batch = {"events": [ev(n) for n in range(10)]}
    first = api_client.post(URL, batch, format="json").json()
    rows_after_first = sorted(Event.objects.for_tenant(tenant).values_list("event_id", "user_id", "item_id"))
    second = api_client.post(URL, batch, format="json")
    assert second.status_code == 200
    assert first["inserted"] == 10
    assert second.json() == {
        "received": 10,
        "inserted": 0,
        "duplicates": 10,
        "users_created": 0,
        "items_created": 0,
    }
    assert (
        sorted(Event.objects.for_tenant(tenant).values_list("event_id", "user_id", "item_id"))
        == rows_after_first
    )


def test_duplicates_within_one_batch_count_once(api_client, tenant):
    r = api_client.post(URL, {"events": [ev(1), ev(2), ev(1, type="favorite")]}, format="json")
    assert r.json()["inserted"] == 2 and r.json()["duplicates"] == 1
    # the first occurrence wins
    assert Event.objects.for_tenant(tenant).get(event_id="e1").type == "view"


def test_one_bad_row_writes_nothing_and_every_bad_row_is_listed(api_client, tenant):
    batch = [ev(0), ev(1, timestamp="yesterday"), ev(2), ev(3, value="big", type=7)]
    r = api_client.post(URL, {"events": batch}, format="json")
    assert r.status_code == 400
    body = r.json()["error"]
    assert body["code"] == "invalid_events"
    assert set(body["fields"]) == {"events[1].timestamp", "events[3].value", "events[3].type"}
    assert "ISO 8601" in body["fields"]["events[1].timestamp"][0]
    assert count(tenant) == 0
    assert EndUser.objects.for_tenant(tenant).count() == 0 and Item.objects.for_tenant(tenant).count() == 0


@pytest.mark.parametrize(
    ("row", "path", "rule"),
    [
        ({"event_id": None}, "event_id", "is required"),
        ({"user_id": 17}, "user_id", "must be a string"),
        ({"event_id": "x" * 129}, "event_id", "at most 128"),
        ({"colour": "red"}, "colour", "is not a known field"),
        ({"timestamp": "2026-01-01T12:00:00"}, "timestamp", "time zone"),
        ({"timestamp": "1969-12-31T23:59:59Z"}, "timestamp", "before 1970"),
        ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp", "in the future"),
        ({"value": True}, "value", "finite number"),
        ({"context": [1, 2]}, "context", "must be an object"),
        ({"context": {"blob": "x" * 9000}}, "context", "at most 8192 bytes"),
        ({"type": "teleport"}, "type", "unknown event type"),
    ],
)
def test_each_bad_field_names_its_path_and_rule(api_client, tenant, row, path, rule):
    r = api_client.post(URL, {"events": [ev(0), ev(1, **row)]}, format="json")
    assert r.status_code == 400, r.json()
    fields = r.json()["error"]["fields"]
    assert rule in " ".join(fields[f"events[1].{path}"])
    assert count(tenant) == 0


def test_missing_field_is_reported(api_client, tenant):
    row = ev(1)
    del row["user_id"]
    r = api_client.post(URL, {"events": [row]}, format="json")
    assert r.json()["error"]["fields"] == {"events[0].user_id": ["is required"]}


@override_settings(EVENTS_MAX_BATCH=3)
def test_batch_over_the_limit_is_refused(api_client, tenant):
    r = api_client.post(URL, {"events": [ev(n) for n in range(4)]}, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "batch_too_large"
    assert "at most 3" in r.json()["error"]["fields"]["events"][0]
    assert count(tenant) == 0


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"events": []}, "events"),
        ({"events": {}}, "events"),
        ({"events": [ev(1)], "extra": 1}, "extra"),
        ([1], "non_field_errors"),
    ],
)
def test_bad_envelopes(api_client, tenant, body, path):
    r = api_client.post(URL, body, format="json")
    assert r.status_code == 400 and path in r.json()["error"]["fields"]


def test_malformed_json_is_a_parse_error(api_client, tenant):
    r = api_client.post(URL, data=b'{"events": [', content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "parse_error"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_json_constants_are_a_parse_error_and_write_nothing(api_client, tenant, literal):
    body = b'{"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "purchase", '
    body += b'"timestamp": "2026-01-01T12:00:00Z", "context": {"amount": ' + literal + b', "quantity": 1}}'
    r = api_client.post(URL, data=body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "parse_error"
    assert count(tenant) == 0


def test_non_ascii_context_is_stored_as_sent(api_client, tenant):
    context = {"query": 'búsqueda ✓ "zapatos"', "results": 3}
    r = api_client.post(URL, ev(1, type="search", context=context), format="json")
    assert r.status_code == 201, r.json()
    assert Event.objects.for_tenant(tenant).get(event_id="e1").context == context


def test_tenant_refusing_unknown_entities_names_them(api_client, tenant):
    tenant.auto_create_entities = False
    tenant.save(update_fields=["auto_create_entities"])
    EndUser.objects.create  # noqa: B018 - the scoped manager cannot create without a tenant filter
    EndUser.unscoped.create(tenant=tenant, external_id="u0")
    Item.unscoped.create(tenant=tenant, external_id="i0")
    r = api_client.post(URL, {"events": [ev(0), ev(1)]}, format="json")  # ev(1): u1, i1 unknown
    assert r.status_code == 400
    assert set(r.json()["error"]["fields"]) == {"events[1].user_id", "events[1].item_id"}
    assert count(tenant) == 0
    assert api_client.post(URL, {"events": [ev(0)]}, format="json").status_code == 201


def test_event_ids_are_per_tenant(api_client, other_client, tenant, other_tenant):
    assert api_client.post(URL, ev(1), format="json").json()["inserted"] == 1
    # tenant B may use the same idempotency key: it is its own event
    assert other_client.post(URL, ev(1), format="json").json()["inserted"] == 1
    assert count(tenant) == 1 and count(other_tenant) == 1
    assert EndUser.objects.for_tenant(other_tenant).get().external_id == "u1"


def test_list_events_is_tenant_scoped_and_filtered(api_client, other_client, tenant, other_tenant):
    EventFactory(tenant=tenant, type="view")
    mine = EventFactory(tenant=tenant, type="purchase")
    EventFactory(tenant=other_tenant, type="purchase")
    r = api_client.get(URL, {"type": "purchase"})
    assert r.status_code == 200
    assert [e["event_id"] for e in r.json()["results"]] == [mine.event_id]
    r = other_client.get(URL, {"user_id": mine.user.external_id})
    assert r.json()["results"] == []
