"""GET /api/v1/users/{id}/recommendations against a real artifact and the real ecommerce plugin."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from platform_core.catalog.models import Item
from platform_core.events.models import Event
from platform_core.serving.models import ModelVersionServingStats, RecommendationFeedback
from tests.factories import EndUserFactory, ItemFactory
from tests.platform_core.serving.conftest import Shop, events_make

pytestmark = pytest.mark.django_db

HISTORY = ["i2", "i5", "i8", "i3"]


def url(user: str, **params: object) -> str:
    from urllib.parse import urlencode

    params.setdefault("explain", "true")
    return f"/api/v1/users/{user}/recommendations" + (f"?{urlencode(params)}" if params else "")


@pytest.fixture
def alice(shop: Shop):
    user = EndUserFactory(tenant=shop.tenant, external_id="alice")
    events_make(shop.tenant, user, HISTORY)
    return user


def expected_ranking(
    shop: Shop, history: list[str], types: list[str] | None = None
) -> list[tuple[str, float]]:
    """Brute force over every item: the model's ranking when no rule changes anything."""
    q = shop.built.user_vector(history, types or ["view"] * len(history))
    scores = shop.built.vectors @ q
    order = np.argsort(-scores, kind="stable")
    return [(shop.item_ids[i], float(scores[i])) for i in order]


def test_top_k_is_the_model_ranking(api_client, shop: Shop, alice) -> None:
    r = api_client.get(url("alice", k=5))
    assert r.status_code == 200, r.json()
    body = r.json()
    want = expected_ranking(shop, HISTORY)[:5]
    assert [i["item_id"] for i in body["items"]] == [i for i, _ in want]
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    for item, (_, score) in zip(body["items"], want, strict=True):
        assert item["score"] == pytest.approx(score, abs=1e-5)
        assert item["explanation"]["model_score"] == pytest.approx(score, abs=1e-5)
        assert item["explanation"]["source"] == "model"
    assert body["model_version"] == shop.built.version.pk
    assert body["strategy"] == "model"
    assert body["recommendation_id"]


def test_explanation_is_truthful_removing_the_cited_event_changes_the_score(api_client, shop, alice) -> None:
    body = api_client.get(url("alice", k=3)).json()
    top = body["items"][0]
    cited = top["explanation"]["events"]
    assert cited, "the top item must cite the events that drove it"
    assert {e["item_id"] for e in cited} <= set(HISTORY)
    assert all(e["contribution"] > 0 for e in cited)
    first = cited[0]
    # Remove the most-cited event and recompute: the item's model score drops by the cited amount.
    Event.objects.for_tenant(shop.tenant).filter(event_id=first["event_id"]).delete()
    rest = [e for e in HISTORY if e != first["item_id"]]
    q = shop.built.user_vector(rest)
    new_score = shop.built.score(q, top["item_id"])
    assert new_score != pytest.approx(top["explanation"]["model_score"], abs=1e-6)
    assert top["explanation"]["model_score"] - new_score == pytest.approx(first["contribution"], abs=1e-4)
    after = api_client.get(url("alice", k=20)).json()
    served = next(i for i in after["items"] if i["item_id"] == top["item_id"])
    assert served["explanation"]["model_score"] == pytest.approx(new_score, abs=1e-5)


def test_a_new_event_counts_at_once(api_client, shop, alice) -> None:
    before = api_client.get(url("alice", k=5)).json()
    r = api_client.post(
        "/api/v1/events",
        {
            "events": [
                {
                    "event_id": "fresh-1",
                    "user_id": "alice",
                    "item_id": "i17",
                    "type": "add_to_cart",
                    "timestamp": "2026-01-02T00:00:00Z",
                    "context": {"quantity": 1},
                }
            ]
        },
        format="json",
    )
    assert r.status_code in (200, 201), r.json()
    after = api_client.get(url("alice", k=5)).json()
    want = expected_ranking(shop, [*HISTORY, "i17"], ["view"] * 4 + ["add_to_cart"])[:5]
    assert [i["item_id"] for i in after["items"]] == [i for i, _ in want]
    assert [i["score"] for i in after["items"]] != [i["score"] for i in before["items"]]
    assert any(e["event_id"] == "fresh-1" for i in after["items"] for e in i["explanation"]["events"])


def test_filter_restricts_the_items(api_client, shop, alice) -> None:
    body = api_client.get(url("alice", k=5, filter='category = "bags"')).json()
    bags = [i for i, _ in expected_ranking(shop, HISTORY) if int(i[1:]) % 2 == 1][:5]
    assert [i["item_id"] for i in body["items"]] == bags
    body = api_client.get(url("alice", k=3, filter="category in [$c]", filter_params='{"c": "shoes"}')).json()
    assert all(int(i["item_id"][1:]) % 2 == 0 for i in body["items"]) and len(body["items"]) == 3


def test_rules_apply_out_of_stock_and_purchased_items_never_served(api_client, shop) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="bob")
    events_make(shop.tenant, user, ["i2", "i5", "i9"], ["view", "view", "purchase"])
    top = expected_ranking(shop, ["i2", "i5", "i9"], ["view", "view", "purchase"])[0][0]
    Item.objects.for_tenant(shop.tenant).filter(external_id=top).update(
        attributes={"category": "shoes", "in_stock": False}
    )
    body = api_client.get(url("bob", k=20)).json()
    served = {i["item_id"] for i in body["items"]}
    assert top not in served  # ecommerce.out_of_stock
    assert "i9" not in served  # ecommerce.already_purchased (bags are not a repeat category)
    assert len(served) == 20 - 2


def test_exploration_gives_the_last_slots_to_long_tail_items(api_client, tenant, model_version_make) -> None:
    ids = [f"i{n}" for n in range(20)]
    for item_id in ids:
        ItemFactory(tenant=tenant, external_id=item_id, attributes={"category": "shoes"})
    # Popularity 20…1: the 10 least popular (i10…i19) are the long tail (≤ median).
    built = model_version_make(tenant, ids, seed=3, popularity=list(range(20, 0, -1)))
    user = EndUserFactory(tenant=tenant, external_id="carol")
    events_make(tenant, user, ["i1", "i2"])
    client = api_client
    plain = client.get(url("carol", k=10, explore=0)).json()["items"]
    explored = client.get(url("carol", k=10, explore=0.2)).json()["items"]
    assert [i["item_id"] for i in explored[:8]] == [i["item_id"] for i in plain[:8]]
    q = built.user_vector(["i1", "i2"])
    ranking = sorted(ids, key=lambda i: -built.score(q, i))
    tail_outside = [i for i in ranking if i not in [x["item_id"] for x in plain[:8]] and int(i[1:]) >= 10]
    assert sorted(i["item_id"] for i in explored[8:]) == sorted(tail_outside[:2])
    for item in explored[8:]:
        assert item["explanation"]["rules"][-1]["rule"] == "serving.exploration"


@pytest.mark.parametrize(
    ("params", "field", "status"),
    [
        ({"k": 0}, "k", 400),
        ({"k": 101}, "k", 400),
        ({"k": "ten"}, "k", 400),
        ({"k": -3}, "k", 400),
        ({"filter": "price <"}, "filter", 400),
        ({"filter": "colour = 'red'"}, "filter", 400),
        ({"filter": "in_stock = 'yes'"}, "filter", 400),
        ({"filter": "price < $p", "filter_params": "[1]"}, "filter_params", 400),
        ({"explain": "maybe"}, "explain", 400),
        ({"explore": 2}, "explore", 400),
        ({"lat": "north"}, "lat", 400),
    ],
)
def test_bad_parameters_are_refused_in_the_one_shape(api_client, shop, alice, params, field, status) -> None:
    r = api_client.get(url("alice", **params))
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"code", "message", "fields"}
    assert field in err["fields"], err
    assert field in err["message"] or err["fields"][field][0] in err["message"]
    assert not RecommendationFeedback.unscoped.exists()
    assert not ModelVersionServingStats.unscoped.exists()


def test_explanations_are_opt_in(api_client, shop, alice) -> None:
    body = api_client.get("/api/v1/users/alice/recommendations?k=2").json()
    assert "explanation" not in body["items"][0]


def test_unknown_user_is_404(api_client, shop) -> None:
    r = api_client.get(url("nobody"))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert "nobody" in r.json()["error"]["message"]


def test_read_scope_is_required(api_client_for, shop, alice) -> None:
    r = api_client_for(shop.tenant, scopes=("ingest",)).get(url("alice"))
    assert r.status_code == 403
    assert "read" in r.json()["error"]["message"]


def test_user_without_history_gets_popular_items_of_their_segment(api_client, shop) -> None:
    now = dt.datetime.now(dt.UTC)
    young = EndUserFactory(tenant=shop.tenant, external_id="young-1", attributes={"age_band": "18-24"})
    other = EndUserFactory(tenant=shop.tenant, external_id="old-1", attributes={"age_band": "65+"})
    # 18-24: i4 bought once (weight 5) beats i6 viewed three times (3); 65+: i7 viewed ten times.
    events_make(shop.tenant, young, ["i4", "i6", "i6", "i6"], ["purchase", "view", "view", "view"], start=now)
    events_make(shop.tenant, other, ["i7"] * 10, start=now)
    EndUserFactory(tenant=shop.tenant, external_id="newbie", attributes={"age_band": "18-24"})
    body = api_client.get(url("newbie", k=3)).json()
    assert body["strategy"] == "popular_in_age_band:18-24"
    assert [i["item_id"] for i in body["items"]] == ["i4", "i6", "i7"]  # then everyone's popular
    assert body["items"][0]["explanation"]["source"] == "popular_in_age_band:18-24"
    assert body["items"][0]["explanation"]["events"] == []
    # No attributes at all: everyone's popular (i7: 10, i4: 5, i6: 3).
    EndUserFactory(tenant=shop.tenant, external_id="anon")
    body = api_client.get(url("anon", k=3)).json()
    assert body["strategy"] == "popular"
    assert [i["item_id"] for i in body["items"]] == ["i7", "i4", "i6"]


def test_a_tenant_without_a_model_still_answers_with_popular_items(api_client, tenant) -> None:
    now = dt.datetime.now(dt.UTC)
    for n in range(3):
        ItemFactory(tenant=tenant, external_id=f"p{n}", attributes={"category": "hats"})
    u = EndUserFactory(tenant=tenant, external_id="dave")
    events_make(tenant, u, ["p1", "p1", "p2"], start=now)
    body = api_client.get(url("dave", k=2)).json()
    assert body["model_version"] is None
    assert [i["item_id"] for i in body["items"]] == ["p1", "p2"]


def test_a_new_item_is_reachable_through_attribute_similarity(api_client, shop, alice) -> None:
    ItemFactory(
        tenant=shop.tenant, external_id="new-shoe", attributes={"category": "shoes", "in_stock": True}
    )
    body = api_client.get(url("alice", k=21)).json()
    new = next(i for i in body["items"] if i["item_id"] == "new-shoe")
    assert new["explanation"]["source"] == "attribute_similarity"
    # Its vector: mean of the centroids of category=shoes (i0, i2, …) and in_stock=true (every item).
    vec = shop.built.vectors
    shoes = vec[[n for n in range(20) if n % 2 == 0]].mean(axis=0)
    stock = vec.mean(axis=0)
    q = shop.built.user_vector(HISTORY)
    assert new["explanation"]["model_score"] == pytest.approx(float(((shoes + stock) / 2) @ q), abs=1e-5)
    assert new["explanation"]["events"], "a new item's score is explained by the events too"


def test_catalog_changes_reach_the_cached_candidate_attributes(api_client, shop, alice, settings) -> None:
    """Candidate attributes are cached in process; a catalog write evicts them at the next check."""
    from platform_core.catalog.services import item_upsert

    settings.HOT_CACHE_SECONDS = 0  # every request checks the catalog for changes
    first = [i["item_id"] for i in api_client.get(url("alice", k=5)).json()["items"]]
    item_upsert(tenant=shop.tenant, external_id=first[0], attributes={"category": "shoes", "in_stock": False})
    served = [i["item_id"] for i in api_client.get(url("alice", k=5)).json()["items"]]
    assert first[0] not in served  # ecommerce.out_of_stock, though its attributes were cached
    Item.objects.for_tenant(shop.tenant).filter(external_id=served[0]).delete()
    again = [i["item_id"] for i in api_client.get(url("alice", k=5)).json()["items"]]
    assert served[0] not in again and first[0] not in again and len(again) == 5
