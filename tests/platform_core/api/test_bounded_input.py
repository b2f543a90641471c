"""Bounded input: JSON depth and size, attribute and context bytes, what an id may hold, filter depth.

Each bad input is made by hand; each answer is a 4xx in the one error shape
naming the field and the rule, and nothing is written. Run on SQLite and on
PostgreSQL (where a NUL used to be a 500).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event
from tests.factories import EndUserFactory, ItemFactory

pytestmark = pytest.mark.django_db
SHOE = {"category": "shoes"}
TS = "2026-01-01T10:00:00Z"


def _event(**over: object) -> dict[str, object]:
    return {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "view", "timestamp": TS, **over}


def _nested(depth: int, leaf: object = 1) -> object:
    """``{"a": {"a": … leaf}}``: ``depth`` objects inside one another."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def _nothing_written(tenant) -> bool:  # noqa: ANN001
    return not (
        Event.objects.for_tenant(tenant).exists()
        or EndUser.objects.for_tenant(tenant).exists()
        or Item.objects.for_tenant(tenant).exists()
    )


def _error(r) -> dict:  # noqa: ANN001
    assert r["Content-Type"] == "application/json", r.content[:200]
    return r.json()["error"]


# --------------------------------------------------------------------------- JSON bodies
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/events"),
        ("post", "/api/v1/users"),
        ("post", "/api/v1/items"),
        ("put", "/api/v1/users/alice"),
        ("put", "/api/v1/items/sku1"),
        ("post", "/api/v1/feedback"),
        ("post", "/api/v1/models/train"),
    ],
)
def test_every_json_body_has_a_depth_limit(api_client, tenant, method, path):
    # 31 objects inside the body's own: 32 levels pass the parser (the endpoint may refuse them).
    r = getattr(api_client, method)(path, {"x": _nested(31)}, format="json")
    assert r.status_code < 500 and "API_MAX_JSON_DEPTH" not in r.content.decode()
    r = getattr(api_client, method)(path, {"x": _nested(32)}, format="json")
    error = _error(r)
    assert r.status_code == 400 and error["code"] == "parse_error"
    assert error["fields"] == {"x" + ".a" * 31: ["must not nest deeper than 32 levels (API_MAX_JSON_DEPTH)"]}
    # Past orjson's own limit (1024) and Python's recursion limit: still a 400, never a 500.
    r = getattr(api_client, method)(path, "[" * 5000 + "]" * 5000, content_type="application/json")
    assert r.status_code == 400 and _error(r)["code"] == "parse_error"
    assert _nothing_written(tenant)


def test_a_body_over_the_size_limit_is_413_and_writes_nothing(api_client, tenant, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    events = [_event(event_id=f"e{n}", user_id=f"u{n}") for n in range(30)]
    r = api_client.post("/api/v1/events", {"events": events}, format="json")
    error = _error(r)
    assert r.status_code == 413 and error["code"] == "request_too_large"
    assert error["fields"] == {"body": ["must be at most 2000 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"]}
    assert _nothing_written(tenant)
    assert api_client.post("/api/v1/events", {"events": events[:5]}, format="json").status_code == 201


def test_nul_anywhere_in_a_body_is_refused_by_name(api_client, tenant):
    r = api_client.post(
        "/api/v1/events",
        {"events": [_event(), _event(event_id="e2", context={"query\x00": "x"})]},
        format="json",
    )
    error = _error(r)
    assert r.status_code == 400
    assert error["fields"] == {"events[1].context.query\x00": ["must not contain the NUL character (U+0000)"]}
    r = api_client.put(
        "/api/v1/items/sku1", {"attributes": {**SHOE, "tags": ["ok", "a\x00b"]}}, format="json"
    )
    assert r.status_code == 400 and list(_error(r)["fields"]) == ["attributes.tags[1]"]
    # A backslash followed by "u0000" is text, not NUL: accepted.
    r = api_client.put("/api/v1/items/sku2", {"attributes": {**SHOE, "title": "a\\u0000b"}}, format="json")
    assert r.status_code == 201 and r.json()["attributes"]["title"] == "a\\u0000b"
    assert not Event.objects.for_tenant(tenant).exists()
    assert list(Item.objects.for_tenant(tenant).values_list("external_id", flat=True)) == ["sku2"]


# --------------------------------------------------------------------------- attribute and context bytes
def test_attribute_strings_and_objects_have_byte_limits(api_client, tenant, settings):
    # 2,100 characters are 4,200 bytes as UTF-8: over ATTRIBUTE_MAX_VALUE_BYTES (4096) by bytes.
    r = api_client.put(
        "/api/v1/items/sku1", {"attributes": {**SHOE, "tags": ["ok", "é" * 2100]}}, format="json"
    )
    assert r.status_code == 400
    assert _error(r)["fields"] == {"attributes.tags[1]": ["must be at most 4096 bytes as UTF-8"]}
    r = api_client.put("/api/v1/users/alice", {"attributes": {"x" * 5000: 1}}, format="json")
    assert r.status_code == 400 and _error(r)["fields"][f"attributes.{'x' * 5000}"] == [
        "must be at most 4096 bytes as UTF-8"
    ]
    settings.ATTRIBUTES_MAX_BYTES = 300
    tags = [f"tag-{n:02d}-{'x' * 10}" for n in range(20)]  # each short, together over 300 bytes
    r = api_client.post(
        "/api/v1/items", {"items": [{"item_id": "sku3", "attributes": {**SHOE, "tags": tags}}]}, format="json"
    )
    assert r.status_code == 400 and _error(r)["code"] == "invalid_item"
    assert list(_error(r)["fields"]) == ["items[0].attributes"]
    assert "must be at most 300 bytes as JSON" in _error(r)["fields"]["items[0].attributes"][0]
    assert _nothing_written(tenant)
    assert (
        api_client.put(
            "/api/v1/items/sku1", {"attributes": {**SHOE, "tags": tags[:5]}}, format="json"
        ).status_code
        == 201
    )


def test_event_context_strings_have_byte_limits(api_client, tenant):
    r = api_client.post(
        "/api/v1/events", _event(type="search", item_id=None, context={"query": "é" * 2100}), format="json"
    )
    assert r.status_code == 400
    assert "must be at most 4096 bytes as UTF-8" in _error(r)["fields"]["context.query"]
    r = api_client.post("/api/v1/events", _event(context={"note": "x" * 9000}), format="json")
    assert r.status_code == 400 and "must be at most 8192 bytes as JSON" in _error(r)["fields"]["context"][0]
    assert _nothing_written(tenant)


# --------------------------------------------------------------------------- ids
REFUSED_IDS = {
    "a\x00b": "must not contain",  # the body's NUL rule answers first: "the NUL character (U+0000)"
    "a\x01b": "must not contain control characters",
    "a\nb": "must not contain control characters",
    "a\x7fb": "must not contain control characters",
    "a\x85b": "must not contain control characters",
    "x/y": "must not contain '/'",
    ".": "must not be '.' or '..'",
    "..": "must not be '.' or '..'",
}


@pytest.mark.parametrize("bad", list(REFUSED_IDS))
def test_ids_a_route_cannot_carry_are_refused_everywhere(api_client, tenant, bad):
    rule = REFUSED_IDS[bad]
    for field in ("user_id", "item_id"):
        r = api_client.post(
            "/api/v1/events", {"events": [_event(), _event(event_id="e2", **{field: bad})]}, format="json"
        )
        assert r.status_code == 400, (field, r.content)
        assert rule in _error(r)["fields"][f"events[1].{field}"][0]
    r = api_client.post("/api/v1/users", {"users": [{"user_id": bad}]}, format="json")
    assert r.status_code == 400 and rule in _error(r)["fields"]["users[0].user_id"][0]
    r = api_client.post("/api/v1/items", {"items": [{"item_id": bad, "attributes": SHOE}]}, format="json")
    assert r.status_code == 400 and rule in _error(r)["fields"]["items[0].item_id"][0]
    assert _nothing_written(tenant)


@pytest.mark.parametrize("bad", ["a\x00b", "x/y", ".."])
def test_services_refuse_the_same_ids_without_the_api(tenant, bad):
    """Commands and the console call the services directly: the same rules, the same words."""
    from platform_core.catalog.services import enduser_bulk_upsert
    from platform_core.common.errors import ValidationFailed
    from platform_core.events.services import event_ingest

    with pytest.raises(ValidationFailed) as caught:
        enduser_bulk_upsert(tenant=tenant, rows=[{"user_id": bad}])
    (rule,) = caught.value.fields["users[0].user_id"]
    assert rule.startswith(REFUSED_IDS[bad])
    with pytest.raises(ValidationFailed) as caught:
        event_ingest(tenant=tenant, payload=_event(user_id=bad, context={"q": "a\x00"}))
    assert set(caught.value.fields) == {"user_id", "context.q"}
    assert _nothing_written(tenant)


def test_event_ids_refuse_control_characters_but_may_hold_a_slash(api_client, tenant):
    r = api_client.post("/api/v1/events", _event(event_id="e\x01"), format="json")
    assert r.status_code == 400 and "control characters" in _error(r)["fields"]["event_id"][0]
    assert _nothing_written(tenant)
    assert api_client.post("/api/v1/events", _event(event_id="batch/1"), format="json").status_code == 201


@pytest.mark.parametrize(
    "odd", ["x y", "a?b#c&d=e", "100%", "%2F", "é😀", "...", "a.b", " lead", "a\\b", "+"]
)
def test_every_accepted_id_can_be_read_and_erased_through_the_api(api_client, tenant, odd):
    assert (
        api_client.post("/api/v1/events", _event(user_id=odd, item_id=odd), format="json").status_code == 201
    )
    user_url, item_url = f"/api/v1/users/{quote(odd, safe='')}", f"/api/v1/items/{quote(odd, safe='')}"
    assert api_client.get(user_url).json()["user_id"] == odd
    assert api_client.get(item_url).json()["item_id"] == odd
    assert api_client.get("/api/v1/events", {"user_id": odd}).json()["results"][0]["user_id"] == odd
    assert api_client.put(item_url, {"attributes": SHOE}, format="json").status_code == 200
    assert api_client.delete(user_url).json()["deleted"]["catalog.EndUser"] == 1
    assert api_client.delete(item_url).status_code == 200
    assert api_client.get(user_url).status_code == 404 and _nothing_written(tenant)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/users/a%00b", "path"),
        ("/api/v1/items/a%01b", "path"),
        ("/api/v1/users/a%C2%85b/recommendations", "path"),
        ("/api/v1/events?user_id=a%00b", "user_id"),
        ("/api/v1/users?external_id_prefix=%1F", "external_id_prefix"),
        ("/api/v1/popular?filter=category%20%3D%20%22a%00%22", "filter"),
    ],
)
def test_control_characters_in_the_url_are_400_on_every_database(api_client, tenant, url, field):
    EndUserFactory(tenant=tenant, external_id="a")
    r = api_client.get(url)
    assert r.status_code == 400
    assert _error(r)["fields"] == {
        field: ["must not contain control characters (U+0000 to U+001F, U+007F to U+009F)"]
    }
    assert api_client.delete(url.split("?")[0]).status_code in (400, 405)
    assert EndUser.objects.for_tenant(tenant).count() == 1


def test_a_user_put_with_a_control_character_in_the_url_writes_nothing(api_client, tenant):
    r = api_client.put("/api/v1/users/a%09b", {"attributes": {}}, format="json")
    assert r.status_code == 400 and _nothing_written(tenant)


# --------------------------------------------------------------------------- filters
@pytest.mark.parametrize(
    "path", ["/api/v1/users/u1/recommendations", "/api/v1/items/i1/similar", "/api/v1/popular"]
)
def test_filter_nesting_is_bounded_on_every_endpoint_that_takes_one(api_client, tenant, path):
    EndUserFactory(tenant=tenant, external_id="u1")
    ItemFactory(tenant=tenant, external_id="i1", attributes=SHOE)
    for expression in ("(" * 400 + 'category = "shoes"' + ")" * 400, "not " * 400 + 'category = "shoes"'):
        r = api_client.get(path, {"filter": expression})
        error = _error(r)
        assert r.status_code == 400 and error["code"] == "invalid_filter"
        assert "must not nest deeper than 32 levels" in error["fields"]["filter"][0]
    r = api_client.get(path, {"filter": "(" * 32 + 'category = "shoes"' + ")" * 32})
    assert r.status_code != 400 and r.status_code < 500
    r = api_client.get(path, {"filter": "category = 'shoes' or " * 100 + "category = 'x'"})
    assert r.status_code == 400 and "at most 2000 characters" in _error(r)["fields"]["filter"][0]
    params = json.dumps(_nested(40))
    r = api_client.get(path, {"filter": "category = $a", "filter_params": params})
    assert r.status_code == 400 and "API_MAX_JSON_DEPTH" in _error(r)["fields"]["filter_params"][0]


# --------------------------------------------------------------------------- the depth helpers agree
@pytest.mark.parametrize(
    "value",
    [
        1,
        "x",
        [],
        {"a": "[[[{{{"},  # brackets inside a string: the text shortcut gives way to the walk
        {"a": 'q"uote', "b": [[1]]},  # an escaped quote: likewise
        _nested(5, [[], [[{}]]]),
        [_nested(3), [_nested(7)], {"k": [1, {"z": _nested(2)}]}],
        _nested(32),
        _nested(33),
    ],
)
def test_the_text_shortcut_and_the_walk_agree_on_depth(value):
    from platform_core.common.limits import json_depth_exceeded, json_text_depth

    body = json.dumps(value).encode()
    walked = next(d for d in range(0, 40) if not json_depth_exceeded(value, d))
    known = json_text_depth(body)
    assert known in (None, walked)
    if "[[[{{{" not in body.decode() and "\\" not in body.decode():
        assert known == walked
