"""Trending items: growth of the event count in the window against the preceding windows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from platform_core.catalog.models import Item

URL = "/api/v1/trending"


def _ago(minutes: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=minutes)


@pytest.fixture
def counts(tenant, plant):  # noqa: ANN001, ANN201
    """Window 1h, 3 preceding windows (1h..4h ago)."""

    def events(item: str, current: int, previous: int, attrs: dict) -> None:  # noqa: ANN001
        for n in range(current):
            plant(tenant, f"u{n}", "view", _ago(30), item=item, item_attrs=attrs)
        for n in range(previous):
            plant(tenant, f"u{n}", "view", _ago(120 + n % 100), item=item, item_attrs=attrs)

    events("a", 6, 3, {"category": "shoes", "price": 20})  # mean before 1 → (6 + 1) / (1 + 1) = 3.5
    events("b", 5, 0, {"category": "bags", "price": 80})  # (5 + 1) / (0 + 1) = 6.0
    events("c", 2, 0, {"category": "shoes", "price": 5})  # below min_count 5
    events("d", 10, 30, {"category": "shoes", "price": 50})  # mean 10 → 11 / 11 = 1.0
    plant(tenant, "old", "view", _ago(60 * 5), item="a")  # before the first window: not counted


def _items(client, **params):  # noqa: ANN001, ANN003, ANN202
    r = client.get(URL, {"window": "1h", "periods": 3, "min_count": 5, **params})
    assert r.status_code == 200, r.json()
    return [(i["item_id"], i["count"], i["previous_mean"], i["growth"]) for i in r.json()["items"]]


def test_items_ranked_by_growth(api_client, counts):
    assert _items(api_client) == [("b", 5, 0.0, 6.0), ("a", 6, 1.0, 3.5), ("d", 10, 10.0, 1.0)]
    assert _items(api_client, k=1) == [("b", 5, 0.0, 6.0)]
    assert [i[0] for i in _items(api_client, min_count=1)] == ["b", "a", "c", "d"]  # c: 3 / 1


def test_category_and_filter(api_client, counts):
    assert [i[0] for i in _items(api_client, category="shoes")] == ["a", "d"]
    assert [i[0] for i in _items(api_client, filter="price >= $p", filter_params='{"p": 50}')] == ["b", "d"]


def test_inactive_items_and_other_types_are_left_out(api_client, tenant, counts):
    Item.objects.for_tenant(tenant).filter(external_id="b").update(active=False)
    assert [i[0] for i in _items(api_client)] == ["a", "d"]
    assert _items(api_client, type="purchase") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"window": "0h"}, "window"),
        ({"window": "soon"}, "window"),
        ({"k": 0}, "k"),
        ({"k": "many"}, "k"),
        ({"type": "teleport"}, "type"),
        ({"filter": "price <"}, "filter"),
        ({"filter_params": "[1]", "filter": "price > 1"}, "filter_params"),
        ({"filter_params": "{bad json"}, "filter_params"),
        ({"filter_params": '{"a":' * 3000 + "1" + "}" * 3000, "filter": "price > 1"}, "filter_params"),
        ({"filter_params": '{"a":' * 40 + "1" + "}" * 40, "filter": "price > 1"}, "filter_params"),
        ({"category": "x" * 201}, "category"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client, tenant, params, field):
    r = api_client.get(URL, params)
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["fields"]


def test_tenants_see_only_their_own_events(api_client, other_client, tenant, other_tenant, plant):
    for n in range(3):
        plant(other_tenant, f"u{n}", "view", _ago(10), item="theirs")
    plant(tenant, "u1", "view", _ago(10), item="ours")
    assert _items(api_client, min_count=1) == [("ours", 1, 0.0, 2.0)]
    assert _items(other_client, min_count=1) == [("theirs", 3, 0.0, 4.0)]


def test_deeply_nested_filter_params_are_a_400(api_client, tenant):
    deep = '{"a": ' * 5000 + "1" + "}" * 5000  # json.loads recurses once per level
    r = api_client.get("/api/v1/trending", {"filter_params": deep})
    assert r.status_code == 400 and "filter_params" in r.json()["error"]["fields"]
