"""Funnels on planted data; every expected number is worked out in the comments."""

from __future__ import annotations

import json

import pytest

from platform_core.analytics import sql as analytics_sql
from tests.platform_core.analytics.conftest import at

URL = "/api/v1/analytics/funnel"
STEPS = [{"type": "view"}, {"type": "add_to_cart"}, {"type": "purchase"}]
RANGE = {"from": at(-1).isoformat(), "to": at(20).isoformat()}


def _post(client, **body):  # noqa: ANN001, ANN003, ANN202
    return client.post(URL, {"steps": STEPS, **RANGE, **body}, format="json")


def _users(body: dict) -> list[int]:
    return [s["users"] for s in body["steps"]]


@pytest.fixture
def ordered(tenant, plant):  # noqa: ANN001, ANN201
    """Window 1d. Reached: u1 all three; u2, u3 two; u5, u8 one; u4, u6, u7 none."""
    plant(tenant, "u1", "view", at(0))
    plant(tenant, "u1", "add_to_cart", at(0, hours=1))  # +3600 s
    plant(tenant, "u1", "purchase", at(0, hours=2))  # +3600 s
    plant(tenant, "u2", "view", at(1))
    plant(tenant, "u2", "purchase", at(1, hours=1))  # before the cart: not step 2
    plant(tenant, "u2", "add_to_cart", at(1, hours=2))  # +7200 s
    plant(tenant, "u3", "view", at(2))
    plant(tenant, "u3", "add_to_cart", at(3))  # exactly the window's end: inside, +86400 s
    plant(tenant, "u3", "purchase", at(3, seconds=1))  # one second past it: outside
    plant(tenant, "u4", "add_to_cart", at(4))  # no step 0
    plant(tenant, "u5", "view", at(5))
    plant(tenant, "u5", "add_to_cart", at(5))  # same timestamp as the view: not after it
    plant(tenant, "u6", "view", at(-2))  # step 0 before 'from'
    plant(tenant, "u6", "add_to_cart", at(-0.5))
    plant(tenant, "u7", "view", at(30))  # no events in range
    plant(tenant, "u8", "view", at(6))  # the first view anchors the window ...
    plant(tenant, "u8", "view", at(8))
    plant(tenant, "u8", "add_to_cart", at(8, hours=1))  # ... so this is 2 days late


def test_steps_are_ordered_within_the_window_of_the_first_step(api_client, ordered):
    r = _post(api_client, window="1d")
    assert r.status_code == 200, r.json()
    steps = r.json()["steps"]
    # step 0: u1 u2 u3 u5 u8 = 5; step 1: u1 u2 u3 = 3; step 2: u1 = 1
    assert _users(r.json()) == [5, 3, 1]
    assert [s["conversion"] for s in steps] == [1.0, 0.6, 0.2]
    # step 1 spans 3600, 7200, 86400 → median 7200; step 2: 3600 alone
    assert [s["median_seconds"] for s in steps] == [None, 7200.0, 3600.0]


def test_a_longer_window_lets_late_steps_count(api_client, ordered):
    # 3d: u3's purchase (+86401 s after its cart: 1 s) and u8's cart (+2d1h from its first view) count;
    # step 1: u1 u2 u3 u8 = 4 (3600, 7200, 86400, 176400 → median (7200 + 86400) / 2 = 46800)
    # step 2: u1 (3600) u3 (1) = 2 → median 1800.5
    body = _post(api_client, window="3d").json()
    assert _users(body) == [5, 4, 2]
    assert [s["median_seconds"] for s in body["steps"]] == [None, 46800.0, 1800.5]


def test_where_filters_on_event_context_and_item_attributes(api_client, tenant, plant):
    plant(tenant, "a", "view", at(0), item="shoe", item_attrs={"category": "shoes", "price": 30})
    plant(tenant, "a", "purchase", at(0, hours=1), item="shoe", amount=80.0)
    plant(tenant, "b", "view", at(0), item="bag", item_attrs={"category": "bags", "price": 90})
    plant(tenant, "b", "purchase", at(0, hours=1), item="bag", amount=20.0)
    plant(tenant, "c", "view", at(0), item=None)  # no item: an item test fails
    steps = [{"type": "view"}, {"type": "purchase", "where": "context_amount > 50"}]
    assert _users(_post(api_client, steps=steps).json()) == [3, 1]  # a only
    steps = [{"type": "view", "where": 'category = "bags" or price < 50'}, {"type": "purchase"}]
    assert _users(_post(api_client, steps=steps).json()) == [2, 2]  # a and b, not c
    steps = [{"type": "view", "where": "not price < 50"}, {"type": "purchase"}]
    assert _users(_post(api_client, steps=steps).json()) == [2, 1]  # b, and c (missing → test false → not)


def test_exclusion_between_steps_drops_the_user(api_client, tenant, plant):
    plant(tenant, "x", "view", at(0))
    plant(tenant, "x", "return", at(0, minutes=10), item="i1")  # between view and purchase: excluded
    plant(tenant, "x", "purchase", at(0, minutes=20))
    plant(tenant, "y", "view", at(0))
    plant(tenant, "y", "purchase", at(0, minutes=20))
    plant(tenant, "y", "return", at(0, minutes=30))  # after the last step: stays
    plant(tenant, "z", "view", at(0))
    plant(tenant, "z", "return", at(0, hours=1))  # never purchased, return inside the window: excluded
    steps = [{"type": "view"}, {"type": "purchase"}]
    assert _users(_post(api_client, steps=steps).json()) == [3, 2]
    body = _post(api_client, steps=steps, exclusions=[{"type": "return"}]).json()
    assert _users(body) == [1, 1]  # y only


def test_breakdown_by_user_attribute(api_client, tenant, plant):
    plant(tenant, "de1", "view", at(0), user_attrs={"country": "DE"})
    plant(tenant, "de1", "add_to_cart", at(0, minutes=5))
    plant(tenant, "de2", "view", at(0), user_attrs={"country": "DE"})
    plant(tenant, "fr1", "view", at(0), user_attrs={"country": "FR"})
    plant(tenant, "fr1", "add_to_cart", at(0, minutes=1))
    plant(tenant, "none", "view", at(0))
    body = _post(api_client, steps=STEPS[:2], breakdown="user.country").json()
    assert _users(body) == [4, 2]
    groups = {g["value"]: [s["users"] for s in g["steps"]] for g in body["groups"]}
    assert groups == {"DE": [2, 1], "FR": [1, 1], None: [1, 0]}
    assert [g["value"] for g in body["groups"]][0] == "DE"  # the largest group first
    de = next(g for g in body["groups"] if g["value"] == "DE")
    assert de["steps"][1]["conversion"] == 0.5 and de["steps"][1]["median_seconds"] == 300.0


def test_breakdown_by_item_attribute_uses_the_first_steps_item(api_client, tenant, plant):
    plant(tenant, "a", "view", at(0), item="s", item_attrs={"category": "shoes"})
    plant(tenant, "a", "add_to_cart", at(0, minutes=1), item="b", item_attrs={"category": "bags"})
    plant(tenant, "b", "view", at(0), item="b")
    body = _post(api_client, steps=STEPS[:2], breakdown="item.category").json()
    assert {g["value"]: [s["users"] for s in g["steps"]] for g in body["groups"]} == {
        "shoes": [1, 1],
        "bags": [1, 0],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": [{"type": "view"}, {"type": "teleport"}]}, "steps[1].type"),
        ({"window": "0d"}, "window"),
        ({"window": "-1d"}, "window"),
        ({"window": "5y"}, "window"),
        ({"from": at(5).isoformat(), "to": at(1).isoformat()}, "from"),
        ({"steps": [{"type": "view"}] * 11}, "steps"),
        ({"steps": []}, "steps"),
        ({"breakdown": "user.shoe_size"}, "breakdown"),
        ({"breakdown": "country"}, "breakdown"),
        ({"breakdown": "user.signed_up_at"}, "breakdown"),
        ({"steps": [{"type": "view", "where": "colour = 1"}]}, "steps[0].where"),
        ({"steps": [{"type": "view", "where": "(" * 300 + "price > 1" + ")" * 300}]}, "steps[0].where"),
        ({"steps": [{"type": "view", "where": "not " * 400 + "price > 1"}]}, "steps[0].where"),
        ({"steps": [{"type": "view"}], "exclusions": [{"type": "return"}]}, "exclusions[0]"),
        ({"exclusions": [{"type": "nope"}]}, "exclusions[0].type"),
        ({"from": "yesterday"}, "from"),
        ({"from": "0001-01-01T00:00:00Z"}, "from"),
        ({"to": "9999-12-31T23:59:59Z"}, "to"),
        ({"steps": "view"}, "steps"),
        ({"steps": [{"type": "view"}, {"type": None}]}, "steps[1].type"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client, tenant, body, field):
    r = api_client.post(URL, {"steps": STEPS, **RANGE, **body}, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["fields"], r.json()


@pytest.mark.parametrize("body", [[], "x", 5, None, {"steps": [None]}, {"steps": [{"type": None}]}])
def test_malformed_bodies_are_400s(api_client, tenant, body):
    assert api_client.post(URL, body, format="json").status_code == 400


def test_tenants_see_only_their_own_events(api_client, other_client, tenant, other_tenant, plant):
    plant(tenant, "u1", "view", at(0))
    plant(other_tenant, "u1", "view", at(0))
    plant(other_tenant, "u1", "add_to_cart", at(0, hours=1))
    plant(other_tenant, "u2", "view", at(0), user_attrs={"country": "DE"})
    assert _users(_post(api_client, steps=STEPS[:2]).json()) == [1, 0]
    assert _users(_post(other_client, steps=STEPS[:2]).json()) == [2, 1]
    groups = _post(api_client, steps=STEPS[:2], breakdown="user.country").json()["groups"]
    assert [g["value"] for g in groups] == [None]


def test_needs_the_read_scope(api_client_for, tenant):
    client = api_client_for(tenant, scopes=["ingest"])
    assert client.post(URL, {"steps": STEPS}, format="json").status_code == 403


def test_answers_are_cached_until_events_arrive_in_their_range(api_client, tenant, plant, monkeypatch):
    plant(tenant, "u1", "view", at(0))
    runs = []
    real = analytics_sql.analytics_sql_rows
    monkeypatch.setattr(
        "platform_core.analytics.selectors.analytics_sql_rows", lambda **kw: runs.append(1) or real(**kw)
    )
    assert _users(_post(api_client).json()) == [1, 0, 0]
    assert _users(_post(api_client).json()) == [1, 0, 0] and len(runs) == 1  # from the cache

    def ingest(ts):  # noqa: ANN001, ANN202
        event = {
            "event_id": f"late-{ts}",
            "user_id": "u1",
            "item_id": "i1",
            "type": "add_to_cart",
            "timestamp": ts,
        }
        assert api_client.post("/api/v1/events", {"events": [event]}, format="json").status_code in (200, 201)

    ingest(at(-400).isoformat())  # a year earlier: another month, the answer stays
    assert _users(_post(api_client).json()) == [1, 0, 0] and len(runs) == 1
    ingest(at(0, minutes=5).isoformat())  # inside the range: recomputed at once
    assert _users(_post(api_client).json()) == [1, 1, 0] and len(runs) == 2


@pytest.mark.parametrize(
    "where",
    [
        "price > 1e400",
        "price > 99999999999999999999999",
    ],
)
def test_values_a_database_would_refuse_are_400s(api_client, tenant, plant, where):
    plant(tenant, "u1", "view", at(0))
    body = {"steps": [{"type": "view", "where": where}], "filter_params": {"p": "__P__"}, **RANGE}
    r = api_client.post(URL, json.dumps(body), content_type="application/json")
    assert r.status_code == 400, r.content
    assert "steps[0].where" in r.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("where", "param"),
    [("price > $p", "1e400"), ("tags contains $p", "1e400"), ('category = "\\ud800"', "1")],
)
def test_values_the_json_parser_refuses_never_reach_a_query(api_client, tenant, plant, where, param):
    """JSON text a client may send: ``1e400`` is infinity as a double, ``\\ud800`` a lone surrogate."""
    plant(tenant, "u1", "view", at(0))
    body = {"steps": [{"type": "view", "where": where}], "filter_params": {"p": "__P__"}, **RANGE}
    raw = json.dumps(body).replace('"__P__"', param).replace("\\\\ud800", "\\ud800")
    r = api_client.post(URL, raw, content_type="application/json")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "parse_error"), r.content
