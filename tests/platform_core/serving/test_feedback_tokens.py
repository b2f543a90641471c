"""A recommendation_id has one valid spelling; similar-item lists take feedback once, counted right."""

from __future__ import annotations

import pytest

from platform_core.serving.models import ModelVersionServingStats, RecommendationFeedback
from platform_core.serving.services import serving_stats_flush
from tests.factories import EndUserFactory
from tests.platform_core.serving.conftest import Shop, events_make

pytestmark = pytest.mark.django_db

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _respellings(token: str) -> list[str]:
    """Spellings of ``token`` that a loose base64 decoder reads as the same bytes."""
    body, _, mac = token.partition(".")
    # 16 MAC bytes in 22 characters: the last one carries 2 bits, its 4 low bits are spare.
    last = _ALPHABET.index(mac[-1])
    spare = _ALPHABET[last ^ 0b0001]
    return [
        f"{body}.{mac[:-1]}{spare}",  # other spare bits
        f"{body}.{mac}==",  # padded
        f"{body}.{mac[:10]}!{mac[10:]}",  # a character a lenient decoder skips
        f"{body}.{mac[:10]}\n{mac[10:]}",  # a line break inside
        f"{body}=.{mac}",  # padded body
    ]


def _click(api_client, token: str, item: str):
    return api_client.post(
        "/api/v1/feedback", {"recommendation_id": token, "item_id": item, "action": "click"}, format="json"
    )


def test_only_the_issued_spelling_of_a_recommendation_id_verifies(api_client, shop: Shop) -> None:
    u = EndUserFactory(tenant=shop.tenant, external_id="spell")
    events_make(shop.tenant, u, ["i1", "i2"])
    rec = api_client.get("/api/v1/users/spell/recommendations?k=4").json()
    token, item = rec["recommendation_id"], rec["items"][0]["item_id"]
    for other in _respellings(token):
        r = _click(api_client, other, item)
        assert r.status_code == 400, other
        assert r.json()["error"]["code"] == "invalid_recommendation_id"
        assert list(r.json()["error"]["fields"]) == ["recommendation_id"]
    assert not RecommendationFeedback.unscoped.exists()
    assert _click(api_client, token, item).status_code == 201
    # Respellings after the real click neither verify nor add a second click to the list.
    assert all(_click(api_client, other, item).status_code == 400 for other in _respellings(token))
    assert _click(api_client, token, item).json()["recorded"] is False
    serving_stats_flush()
    stats = ModelVersionServingStats.objects.for_tenant(shop.tenant).get(model_version=shop.built.version)
    assert (stats.items_shown, stats.clicks) == (4, 1)
    assert RecommendationFeedback.unscoped.count() == 1


def test_feedback_on_an_anonymous_similar_list_counts_once_against_what_was_shown(
    api_client, shop: Shop
) -> None:
    body = api_client.get("/api/v1/items/i4/similar?k=3").json()
    first, second = body["items"][0]["item_id"], body["items"][1]["item_id"]
    r = _click(api_client, body["recommendation_id"], first)
    assert r.status_code == 201, r.json()
    assert r.json()["rank"] == 1 and r.json()["model_version"] == shop.built.version.pk
    assert _click(api_client, body["recommendation_id"], first).json()["recorded"] is False
    assert _click(api_client, body["recommendation_id"], second).status_code == 201
    feedback = RecommendationFeedback.objects.for_tenant(shop.tenant).order_by("rank")
    assert [(f.user_id, f.source_item_external_id, f.item_external_id) for f in feedback] == [
        (None, "i4", first),
        (None, "i4", second),
    ]
    serving_stats_flush()
    stats = ModelVersionServingStats.objects.for_tenant(shop.tenant).get(model_version=shop.built.version)
    # The list's 3 items were counted as shown: 2 clicks of 3 shown, not of nothing.
    assert (stats.lists_served, stats.items_shown, stats.clicks) == (1, 3, 2)
    assert stats.ctr == pytest.approx(2 / 3)


def test_a_similar_list_asked_for_a_user_records_that_user(api_client, shop: Shop) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="viewer")
    body = api_client.get("/api/v1/items/i4/similar?k=3&user=viewer").json()
    r = _click(api_client, body["recommendation_id"], body["items"][0]["item_id"])
    assert r.status_code == 201, r.json()
    fb = RecommendationFeedback.objects.for_tenant(shop.tenant).get()
    assert (fb.user_id, fb.source_item_external_id) == (user.pk, "i4")
    # Erasing the user erases the feedback that names them.
    user.delete()
    assert not RecommendationFeedback.unscoped.exists()


def test_another_tenant_cannot_give_feedback_on_a_similar_list(api_client, other_client, shop: Shop) -> None:
    body = api_client.get("/api/v1/items/i4/similar?k=3").json()
    r = _click(other_client, body["recommendation_id"], body["items"][0]["item_id"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_recommendation_id"
    assert not RecommendationFeedback.unscoped.exists()
