"""Paths of event types within sessions (30 min inactivity gap by default)."""

from __future__ import annotations

import pytest

from tests.platform_core.analytics.conftest import at

URL = "/api/v1/analytics/paths"
RANGE = {"from": at(-1).isoformat(), "to": at(5).isoformat()}


def _paths(client, **body):  # noqa: ANN001, ANN003, ANN202
    r = client.post(URL, {**RANGE, **body}, format="json")
    assert r.status_code == 200, r.json()
    return [(p["path"], p["sessions"]) for p in r.json()["paths"]]


@pytest.fixture
def sessions(tenant, plant):  # noqa: ANN001, ANN201
    for user in ("u1", "u3"):
        plant(tenant, user, "view", at(0))
        plant(tenant, user, "add_to_cart", at(0, minutes=5))
        plant(tenant, user, "purchase", at(0, minutes=10))
    plant(tenant, "u1", "view", at(0, minutes=41))  # 31 min idle: a new session
    plant(tenant, "u1", "add_to_cart", at(0, minutes=71))  # exactly 30 min idle: same session
    plant(tenant, "u2", "view", at(1), item="shoe", item_attrs={"category": "shoes"})
    plant(tenant, "u2", "add_to_cart", at(1, minutes=1), item="bag", item_attrs={"category": "bags"})
    plant(tenant, "u2", "view", at(1, minutes=2), item="bag")  # a second view: only the first anchors


def test_top_paths_after_an_event(api_client, sessions):
    # Sessions anchored at their first view: u1 and u3 [view cart purchase], u1's second [view cart],
    # u2 [view cart view]. Ties by count are ordered by the path.
    assert _paths(api_client, event="view", steps=2) == [
        (["view", "add_to_cart", "purchase"], 2),
        (["view", "add_to_cart"], 1),
        (["view", "add_to_cart", "view"], 1),
    ]
    assert _paths(api_client, event="view", steps=1, k=1) == [(["view", "add_to_cart"], 4)]


def test_paths_before_an_event(api_client, sessions):
    assert _paths(api_client, event="purchase", direction="before", steps=3) == [
        (["view", "add_to_cart", "purchase"], 2),
    ]


def test_a_shorter_gap_splits_sessions(api_client, sessions):
    # 4 min: every u1/u3 event (5 min apart) is its own session; u2's events are 1 min apart.
    assert _paths(api_client, event="view", steps=2, session_gap="4m") == [
        (["view"], 3),
        (["view", "add_to_cart", "view"], 1),
    ]


def test_paths_of_item_categories(api_client, sessions):
    # After the anchor, each event is named by its item's category: u1/u3's items are shoes,
    # u2 puts a bag in the cart and views it.
    assert _paths(api_client, event="view", steps=2, by="item.category") == [
        (["view", "shoes", "shoes"], 2),
        (["view", "bags", "bags"], 1),
        (["view", "shoes"], 1),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "teleport"}, "event"),
        ({"event": "view", "session_gap": "0m"}, "session_gap"),
        ({"event": "view", "steps": 11}, "steps"),
        ({"event": "view", "by": "user.country"}, "by"),
        ({"event": "view", "direction": "sideways"}, "direction"),
        ({"event": "view", "from": at(5).isoformat(), "to": at(1).isoformat()}, "from"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client, tenant, body, field):
    r = api_client.post(URL, {**RANGE, **body}, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["fields"]


def test_tenants_see_only_their_own_events(api_client, other_client, tenant, other_tenant, plant):
    plant(tenant, "u1", "view", at(0))
    plant(other_tenant, "u1", "view", at(0))
    plant(other_tenant, "u1", "purchase", at(0, minutes=1))
    assert _paths(api_client, event="view") == [(["view"], 1)]
    assert _paths(other_client, event="view") == [(["view", "purchase"], 1)]
