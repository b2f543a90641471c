"""Interest trajectories on planted data (weights of ecommerce: view 1, add_to_cart 3, favorite 2,
purchase 5, return 0). Months are UTC; ``to`` = 2026-05-01 makes April the last month."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.platform_core.analytics.conftest import at

URL = "/api/v1/analytics/trajectories"
TO = "2026-05-01T00:00:00Z"
SHOES, HATS, BOOKS = {"category": "shoes"}, {"category": "hats"}, {"category": "books"}


def _when(y: int, m: int, d: int, h: int = 12, minute: int = 0, s: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, minute, s, tzinfo=dt.UTC)


@pytest.fixture
def planted(tenant, other_tenant, plant):  # noqa: ANN001, ANN201
    p = plant
    p(tenant, "u1", "view", _when(2026, 2, 10), item="s1", item_attrs=SHOES)  # Feb: shoes 1
    # March: shoes 1 + 5, hats 1 + 3, books 1 (the last second of March) = 11
    p(tenant, "u1", "view", _when(2026, 3, 5), item="s1")
    p(tenant, "u1", "purchase", _when(2026, 3, 5, 13), item="s1")
    p(tenant, "u1", "view", _when(2026, 3, 5, 14), item="h1", item_attrs=HATS)
    p(tenant, "u1", "add_to_cart", _when(2026, 3, 5, 15), item="h1")
    p(tenant, "u1", "return", _when(2026, 3, 6), item="s1")  # weight 0: not counted
    p(tenant, "u1", "view", _when(2026, 3, 6), item="n1", item_attrs={"brand": "x"})  # no category
    p(tenant, "u1", "search", _when(2026, 3, 6), item=None, query="hat")  # no item
    p(tenant, "u1", "view", _when(2026, 3, 31, 23, 59, 59), item="b1", item_attrs=BOOKS)
    # April (from its first second): hats 1 + 5, books 2 = 8
    p(tenant, "u1", "view", _when(2026, 4, 1, 0), item="h1")
    p(tenant, "u1", "favorite", _when(2026, 4, 2), item="b1")
    p(tenant, "u1", "purchase", _when(2026, 4, 3), item="h1")
    p(tenant, "u1", "view", _when(2026, 5, 1, 0), item="s1")  # May: after the last month
    p(tenant, "u2", "view", _when(2026, 4, 20), item="s1")  # April: shoes 1
    # Tenant B: its own u1 buys only shoes in April; it never shows in A's answers.
    p(other_tenant, "u1", "purchase", _when(2026, 4, 9), item="s1", item_attrs=SHOES)
    p(other_tenant, "b-only", "purchase", _when(2026, 4, 9), item="s1")


def _get(client, user="u1", **params):  # noqa: ANN001, ANN003, ANN202
    return client.get(f"/api/v1/users/{user}/trajectory", {"months": 3, "to": TO, **params})


def _shares(month):  # noqa: ANN001, ANN202
    return {s["value"]: s["share"] for s in month["shares"]}


def test_user_trajectory_by_month(api_client, planted):
    r = _get(api_client)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["attribute"] == "category" and body["users"] == "u1"
    months = body["months"]
    assert [m["month"] for m in months] == ["2026-02", "2026-03", "2026-04"]
    assert [m["total_weight"] for m in months] == [1.0, 11.0, 8.0]
    assert _shares(months[0]) == {"shoes": 1.0}
    assert _shares(months[1]) == {"shoes": 0.545455, "hats": 0.363636, "books": 0.090909}  # 6/11, 4/11, 1/11
    assert [s["value"] for s in months[1]["shares"]] == ["shoes", "hats", "books"]  # heaviest first
    assert _shares(months[2]) == {"hats": 0.75, "books": 0.25}  # 6/8, 2/8


def test_risers_and_fallers_between_the_last_two_months(api_client, planted):
    changes = _get(api_client).json()["changes"]
    assert (changes["from"], changes["to"]) == ("2026-03", "2026-04")
    # hats 0.75 - 4/11 = 0.386364, books 0.25 - 1/11 = 0.159091; shoes 0 - 6/11
    assert [(c["value"], c["delta"]) for c in changes["risers"]] == [("hats", 0.386364), ("books", 0.159091)]
    assert changes["fallers"] == [
        {"value": "shoes", "share_from": 0.545455, "share_to": 0.0, "delta": -0.545455}
    ]
    one = _get(api_client, k=1).json()["changes"]
    assert [c["value"] for c in one["risers"]] == ["hats"]


def test_a_chosen_pair_of_months(api_client, planted):
    changes = _get(api_client, compare_from="2026-02", compare_to="2026-04").json()["changes"]
    assert [(c["value"], c["delta"]) for c in changes["risers"]] == [("hats", 0.75), ("books", 0.25)]
    assert [(c["value"], c["delta"]) for c in changes["fallers"]] == [("shoes", -1.0)]


def test_group_of_all_users_and_of_listed_users(api_client, planted):
    r = api_client.post(URL, {"months": 3, "to": TO}, format="json")
    assert r.status_code == 200, r.json()
    april = r.json()["months"][2]
    # u1: hats 6, books 2; u2: shoes 1 → 9 in all, pooled
    assert (april["users"], april["total_weight"]) == (2, 9.0)
    assert _shares(april) == {"hats": 0.666667, "books": 0.222222, "shoes": 0.111111}
    r = api_client.post(URL, {"months": 3, "to": TO, "users": ["u2", "nobody"]}, format="json")
    body = r.json()
    assert body["users"] == "2 listed users"
    assert [m["total_weight"] for m in body["months"]] == [0.0, 0.0, 1.0]
    assert body["months"][1]["shares"] == []  # a month without events: no shares
    assert body["changes"]["risers"] == [{"value": "shoes", "share_from": 0.0, "share_to": 1.0, "delta": 1.0}]


def test_group_of_a_segments_members(api_client, tenant, other_tenant, planted):
    from platform_core.analytics.models import Segment, SegmentMember
    from platform_core.catalog.models import EndUser

    seg = Segment.objects.for_tenant(tenant).create(tenant=tenant, name="late", kind="rule", definition={})
    u2 = EndUser.objects.for_tenant(tenant).get(external_id="u2")
    SegmentMember.objects.for_tenant(tenant).create(tenant=tenant, segment=seg, user=u2)
    body = api_client.post(URL, {"months": 3, "to": TO, "segment": "late"}, format="json").json()
    assert body["users"] == "segment late"
    # u2 alone: April shoes 1 (u1's 11 and 8 are not members)
    assert [m["total_weight"] for m in body["months"]] == [0.0, 0.0, 1.0]
    both = api_client.post(URL, {"months": 3, "to": TO, "segment": "late", "users": ["u1"]}, format="json")
    assert both.status_code == 400 and "segment" in both.json()["error"]["fields"]
    other = Segment.objects.for_tenant(other_tenant).create(
        tenant=other_tenant, name="theirs", kind="rule", definition={}
    )
    for ref in ("theirs", str(other.pk), "nothing"):
        r = api_client.post(URL, {"months": 3, "to": TO, "segment": ref}, format="json")
        assert r.status_code == 400 and "segment" in r.json()["error"]["fields"], ref


def test_tenant_isolation(api_client, other_client, planted):
    b = _get(other_client).json()  # B's own u1
    assert [m["total_weight"] for m in b["months"]] == [0.0, 0.0, 5.0]
    assert _shares(b["months"][2]) == {"shoes": 1.0}
    missing, foreign = _get(api_client, user="nobody"), _get(api_client, user="b-only")
    assert missing.status_code == foreign.status_code == 404
    assert missing.json()["error"]["code"] == foreign.json()["error"]["code"]
    everyone = other_client.post(URL, {"months": 3, "to": TO, "users": ["u2"]}, format="json").json()
    assert [m["total_weight"] for m in everyone["months"]] == [0.0, 0.0, 0.0]  # A's u2 is not B's


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"months": 1}, "months"),
        ({"months": 37}, "months"),
        ({"compare_to": "2026-07"}, "compare_to"),
        ({"compare_to": "2026-13"}, "compare_to"),
        ({"compare_from": "2026-04", "compare_to": "2026-03"}, "compare_from"),
        ({"attribute": "price"}, "attribute"),
        ({"attribute": "nope"}, "attribute"),
        ({"to": "2300-01-01T00:00:00Z"}, "to"),
    ],
)
def test_bad_input_names_the_field(api_client, planted, params, field):
    r = _get(api_client, **params)
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["fields"]
    r = api_client.post(URL, {"months": 3, "to": TO, **params}, format="json")
    assert r.status_code == 400 and field in r.json()["error"]["fields"]


def test_bad_user_list(api_client, planted):
    for users, field in (([], "users"), ("u1", "users"), ([1, {"a": 1}], "users[1]")):
        r = api_client.post(URL, {"users": users}, format="json")
        assert r.status_code == 400 and field in r.json()["error"]["fields"], users


def test_default_range_ends_this_month(api_client, tenant, plant):
    plant(tenant, "u1", "view", at(0))  # any time: the default 'to' is now
    months = api_client.get("/api/v1/users/u1/trajectory").json()["months"]
    assert len(months) == 6
    now = dt.datetime.now(dt.UTC)
    assert months[-1]["month"] == f"{now.year:04d}-{now.month:02d}"
