"""The signed recommendation_id, and the per-process cache of users' query vectors."""

from __future__ import annotations

import base64

import pytest

from platform_core.common.errors import ValidationFailed
from platform_core.events.models import Event
from platform_core.serving import user_vectors
from platform_core.serving.services import recommendation_token_issue, recommendation_token_read
from tests.factories import EndUserFactory
from tests.platform_core.serving.conftest import Shop, events_make

pytestmark = pytest.mark.django_db


def _issue(tenant, user="alice", items=("i1", "i2")) -> str:  # noqa: ANN001
    return recommendation_token_issue(tenant=tenant, version_id=7, user_id=user, item_ids=list(items))


def test_a_token_reads_back_what_was_served(tenant) -> None:
    served = recommendation_token_read(tenant=tenant, token=_issue(tenant))
    assert (served.tenant_id, served.version_id, served.user_id, served.item_ids) == (
        tenant.pk, 7, "alice", ["i1", "i2"],
    )  # fmt: skip


def test_a_tampered_token_is_refused(tenant) -> None:
    token = _issue(tenant)
    body, mac = token.split(".")
    other_body = _issue(tenant, user="mallory").split(".")[0]
    for forged in (f"{other_body}.{mac}", f"{body}.{mac[:-2]}AA", body, f"{body}.", "x.y", "é.é"):
        with pytest.raises(ValidationFailed) as err:
            recommendation_token_read(tenant=tenant, token=forged)
        assert "recommendation_id" in err.value.fields


def test_another_tenants_token_is_refused(tenant, other_tenant) -> None:
    with pytest.raises(ValidationFailed):
        recommendation_token_read(tenant=other_tenant, token=_issue(tenant))


def test_an_expired_token_is_refused(tenant, settings) -> None:
    token = _issue(tenant)
    settings.SERVING_RECOMMENDATION_MAX_AGE = -1
    with pytest.raises(ValidationFailed):
        recommendation_token_read(tenant=tenant, token=token)


def test_a_token_signed_before_a_key_rotation_still_reads(tenant, settings) -> None:
    token = _issue(tenant)
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "x" * 40, [old]
    assert recommendation_token_read(tenant=tenant, token=token).user_id == "alice"
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(ValidationFailed):
        recommendation_token_read(tenant=tenant, token=token)


def test_a_token_with_a_valid_mac_but_no_json_is_refused(tenant, settings) -> None:
    from django.utils.http import urlsafe_base64_encode

    from platform_core.serving.services import _token_mac

    body = urlsafe_base64_encode(b"not json")
    token = f"{body}.{urlsafe_base64_encode(_token_mac(settings.SECRET_KEY, body.encode()))}"
    with pytest.raises(ValidationFailed):
        recommendation_token_read(tenant=tenant, token=token)
    assert base64.urlsafe_b64decode(body + "==") == b"not json"


# --------------------------------------------------------------------------- vector cache
def _scores(api_client, user: str) -> dict[str, float]:  # noqa: ANN001
    r = api_client.get(f"/api/v1/users/{user}/recommendations?k=8")
    assert r.status_code == 200, r.json()
    return {i["item_id"]: i["score"] for i in r.json()["items"]}


def test_cached_vectors_serve_the_same_scores_and_follow_every_change(
    api_client, shop: Shop, settings
) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="bob")
    events = events_make(shop.tenant, user, ["i2", "i5", "i8"])
    first = _scores(api_client, "bob")
    assert len(user_vectors._vectors) == 1
    q = shop.built.user_vector(["i2", "i5", "i8"])
    for item_id, score in first.items():
        assert score == pytest.approx(shop.built.score(q, item_id), abs=1e-5)
    assert _scores(api_client, "bob") == first  # from the cache
    # A deleted event changes the encoder's input, so the cached vector is not used.
    Event.objects.for_tenant(shop.tenant).filter(pk=events[1].pk).delete()
    q2 = shop.built.user_vector(["i2", "i8"])
    for item_id, score in _scores(api_client, "bob").items():
        assert score == pytest.approx(shop.built.score(q2, item_id), abs=1e-5)
    # With the cache off the answers are the same.
    settings.SERVING_USER_VECTOR_CACHE = 0
    user_vectors.user_vectors_clear()
    for item_id, score in _scores(api_client, "bob").items():
        assert score == pytest.approx(shop.built.score(q2, item_id), abs=1e-5)
    assert not user_vectors._vectors


def test_the_vector_cache_is_bounded(api_client, shop: Shop, settings) -> None:
    settings.SERVING_USER_VECTOR_CACHE = 2
    pks = []
    for name in ("u1", "u2", "u3"):
        user = EndUserFactory(tenant=shop.tenant, external_id=name)
        events_make(shop.tenant, user, ["i2", "i4"])
        pks.append(user.pk)
        _scores(api_client, name)
    assert list(user_vectors._vectors) == [(shop.tenant.pk, pks[1]), (shop.tenant.pk, pks[2])]
