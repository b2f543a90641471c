"""Personas: computed by hand for a small user, users without events, refresh, erasure, API."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from domains.registry import plugin_get
from platform_core.catalog.models import EndUser, Item
from platform_core.catalog.services import enduser_erase
from platform_core.events.models import Event
from platform_core.jobs.models import ModelVersion, VersionState
from platform_core.profiles.models import UserProfile
from platform_core.profiles.services import (
    profile_build_bulk,
    profile_embeddings_store,
    profile_refresh_request,
    profile_refresh_user,
)

pytestmark = pytest.mark.django_db

MON = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # a Monday
NOW = dt.datetime(2026, 1, 8, tzinfo=dt.UTC)


@pytest.fixture
def shop(tenant):
    """Three products: two books (brands A, B) and a game (brand A); one buyer, one idle user."""
    items = {
        ext: Item.objects.for_tenant(tenant).create(tenant=tenant, external_id=ext, attributes=attrs)
        for ext, attrs in {
            "i0": {"title": "Dune", "category": "books", "brand": "A"},
            "i1": {"title": "Emma", "category": "books", "brand": "B"},
            "i2": {"title": "Go", "category": "games", "brand": "A"},
        }.items()
    }
    buyer = EndUser.objects.for_tenant(tenant).create(tenant=tenant, external_id="buyer")
    EndUser.objects.for_tenant(tenant).create(tenant=tenant, external_id="idle")
    for n, (item, etype, ts) in enumerate(
        [
            ("i0", "view", MON + dt.timedelta(hours=10)),
            ("i1", "view", MON + dt.timedelta(hours=10, minutes=10)),
            ("i2", "purchase", MON + dt.timedelta(days=1, hours=20)),
        ]
    ):
        Event.objects.for_tenant(tenant).create(
            tenant=tenant,
            event_id=f"e{n}",
            user=buyer,
            item=items[item],
            type=etype,
            timestamp=ts,
            context={"amount": 30.0} if etype == "purchase" else {},
        )
    return tenant


def test_bulk_build_matches_a_hand_computed_profile(shop):
    assert profile_build_bulk(tenant=shop, now=NOW, batch_size=1) == 2
    p = UserProfile.objects.for_tenant(shop).get(user__external_id="buyer")
    w = plugin_get("ecommerce").event_weights()
    v, b = w["view"], w["purchase"]
    # category: books = 2 views, games = 1 purchase; brand: A = view + purchase, B = view.
    # Titles are unique per item and so not interests. Every key's share of the sum 2·(2v + b):
    total = 2 * (2 * v + b)
    expected = {
        "category:books": 2 * v / total,
        "category:games": b / total,
        "brand:A": (v + b) / total,
        "brand:B": v / total,
    }
    assert {i["key"]: i["weight"] for i in p.interests} == {k: round(x, 4) for k, x in expected.items()}
    assert [i["weight"] for i in p.interests] == sorted((i["weight"] for i in p.interests), reverse=True)
    assert p.n_events == 3
    # Monday 10:00 and 10:10 (one session), Tuesday 20:00 (a second one: the gap is over 30 minutes).
    assert p.activity["hours"][10] == 2 and p.activity["hours"][20] == 1 and sum(p.activity["hours"]) == 3
    assert p.activity["weekdays"] == [2, 1, 0, 0, 0, 0, 0]
    assert p.activity["frequency"]["active_days"] == 2
    assert p.activity["frequency"]["events_per_active_day"] == 1.5
    # Last event Tue 20:00, now Thu 00:00: 28 hours = 1.1667 days.
    assert p.activity["recency_days"] == round(28 / 24, 3)
    assert p.trajectory["n_sessions"] == 2
    assert p.trajectory["sessions"][0]["items"] == ["i2"]  # newest first
    assert p.trajectory["sessions"][1]["items"] == ["i0", "i1"]
    assert [r["item_id"] for r in p.trajectory["recent_items"]] == ["i2", "i1", "i0"]
    assert p.segment == "new"  # first seen 2.6 days before now
    assert p.features["frequency"] == 1 and p.features["monetary"] == 30.0  # the plugin's own aggregates
    assert p.computed_at == NOW and p.embedding is None


def test_a_user_without_events_gets_an_empty_profile(shop):
    profile_build_bulk(tenant=shop, now=NOW)
    p = UserProfile.objects.for_tenant(shop).get(user__external_id="idle")
    assert p.n_events == 0
    assert p.segment == "inactive"
    assert p.interests == []
    assert p.activity["hours"] == [0] * 24 and p.activity["recency_days"] is None
    assert p.trajectory == {"recent_items": [], "n_sessions": 0, "avg_session_events": 0.0, "sessions": []}


def test_rebuild_is_an_upsert_that_keeps_the_embedding(shop):
    profile_build_bulk(tenant=shop, now=NOW)
    version = ModelVersion.objects.for_tenant(shop).create(
        tenant=shop, algorithm="transformer", artifact_path="x/1", state=VersionState.ACTIVE
    )
    profile_embeddings_store(
        tenant=shop, version=version, user_ids=["buyer"], embeddings=np.array([[1.0, 2.0]])
    )
    profile_build_bulk(tenant=shop, now=NOW + dt.timedelta(days=1))
    p = UserProfile.objects.for_tenant(shop).get(user__external_id="buyer")
    assert UserProfile.objects.for_tenant(shop).count() == 2
    assert p.embedding_vector().tolist() == [1.0, 2.0]
    assert p.computed_at == NOW + dt.timedelta(days=1)


def test_a_new_version_clears_vectors_of_the_old_one(shop):
    old = ModelVersion.objects.for_tenant(shop).create(tenant=shop, algorithm="t", artifact_path="x/1")
    new = ModelVersion.objects.for_tenant(shop).create(tenant=shop, algorithm="t", artifact_path="x/2")
    profile_embeddings_store(tenant=shop, version=old, user_ids=["buyer", "idle"], embeddings=np.ones((2, 3)))
    # "ghost" was erased while training ran: it stays erased.
    stored = profile_embeddings_store(
        tenant=shop, version=new, user_ids=["buyer", "ghost"], embeddings=np.ones((2, 3))
    )
    assert stored == 1
    rows = dict(UserProfile.objects.for_tenant(shop).values_list("user__external_id", "model_version_id"))
    assert rows == {"buyer": new.pk, "idle": None}
    assert not EndUser.objects.for_tenant(shop).filter(external_id="ghost").exists()


def test_refresh_user_tracks_a_new_event_without_retraining(shop):
    profile_build_bulk(tenant=shop, now=NOW)
    buyer = EndUser.objects.for_tenant(shop).get(external_id="buyer")
    Event.objects.for_tenant(shop).create(
        tenant=shop,
        event_id="late",
        user=buyer,
        item=Item.objects.for_tenant(shop).get(external_id="i2"),
        type="view",
        timestamp=NOW,
    )
    p = profile_refresh_user(tenant=shop, external_id="buyer", now=NOW)
    assert p.n_events == 4
    assert p.activity["recency_days"] == 0.0
    assert p.trajectory["recent_items"][0]["item_id"] == "i2"


def test_refresh_requests_are_debounced(shop, django_capture_on_commit_callbacks):
    buyer, idle = (EndUser.objects.for_tenant(shop).get(external_id=e).pk for e in ("buyer", "idle"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert profile_refresh_request(tenant=shop, user_pks=[buyer, buyer, idle]) == [buyer, idle]
        assert profile_refresh_request(tenant=shop, user_pks=[buyer]) == []
    assert len(callbacks) == 1


def test_erasure_reaches_the_profile_and_its_embedding(shop):
    profile_build_bulk(tenant=shop, now=NOW)
    version = ModelVersion.objects.for_tenant(shop).create(tenant=shop, algorithm="t", artifact_path="x/1")
    profile_embeddings_store(tenant=shop, version=version, user_ids=["buyer"], embeddings=np.ones((1, 4)))
    receipt = enduser_erase(tenant=shop, external_id="buyer")
    assert receipt.counts["profiles.UserProfile"] == 1
    assert not UserProfile.objects.for_tenant(shop).filter(user__external_id="buyer").exists()
    assert not UserProfile.unscoped.exclude(embedding=None).exists()  # the only vector went with it
    assert UserProfile.objects.for_tenant(shop).count() == 1


def test_profile_api_and_isolation(shop, api_client, other_client):
    profile_build_bulk(tenant=shop, now=NOW)
    body = api_client.get("/api/v1/users/buyer/profile").json()
    assert body["user_id"] == "buyer" and body["segment"] == "new" and body["n_events"] == 3
    assert "embedding" not in body  # only on request
    theirs = other_client.get("/api/v1/users/buyer/profile")
    missing = api_client.get("/api/v1/users/nobody/profile")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"


def test_pk_range_partitions_write_the_same_profiles(shop):
    """Two ``user_pk_range`` partitions (one task each on a large tenant) give the one-pass result."""
    for k in range(5):
        EndUser.objects.for_tenant(shop).create(tenant=shop, external_id=f"x{k}")

    def stored() -> dict:
        return {
            p.user_id: (p.interests, p.trajectory, p.activity, p.segment, p.features, p.n_events)
            for p in UserProfile.objects.for_tenant(shop)
        }

    assert profile_build_bulk(tenant=shop, now=NOW, batch_size=2) == 7
    one = stored()
    UserProfile.objects.for_tenant(shop).delete()
    pks = list(EndUser.objects.for_tenant(shop).order_by("pk").values_list("pk", flat=True))
    assert profile_build_bulk(tenant=shop, now=NOW, batch_size=2, user_pk_range=(pks[0], pks[2])) == 3
    assert profile_build_bulk(tenant=shop, now=NOW, batch_size=2, user_pk_range=(pks[3], pks[-1])) == 4
    assert stored() == one


def test_timestamps_are_written_as_isoformat_with_and_without_microseconds(shop):
    """The database formats the ISO text (to_char on PostgreSQL): it must equal ``datetime.isoformat()``."""
    user = EndUser.objects.for_tenant(shop).get(external_id="idle")
    item = Item.objects.for_tenant(shop).get(external_id="i0")
    times = [MON + dt.timedelta(hours=3, microseconds=120), MON + dt.timedelta(hours=3, minutes=5)]
    for n, ts in enumerate(times):
        Event.objects.for_tenant(shop).create(
            tenant=shop, event_id=f"t{n}", user=user, item=item, type="view", timestamp=ts
        )
    profile_build_bulk(tenant=shop, now=NOW)
    p = UserProfile.objects.for_tenant(shop).get(user=user)
    # "2026-01-05T03:00:00.000120+00:00" and "2026-01-05T03:05:00+00:00"
    assert [r["timestamp"] for r in p.trajectory["recent_items"]] == [t.isoformat() for t in times[::-1]]
    assert (
        p.activity["first_seen"] == times[0].isoformat() and p.activity["last_seen"] == times[1].isoformat()
    )
    assert p.trajectory["sessions"][0]["start"] == times[0].isoformat()


def test_event_records_are_immutable_and_default_to_an_empty_context():
    from domains.base import EventRecord

    positional = EventRecord("u", "i0", "purchase", MON, 2.0, {"amount": 3.0})
    assert positional == EventRecord(
        user_id="u", item_id="i0", type="purchase", timestamp=MON, value=2.0, context={"amount": 3.0}
    )
    with pytest.raises(AttributeError):  # hooks cannot change what they were given
        positional.type = "view"
    bare = EventRecord("u", None, "view", MON)
    assert bare.value is None and dict(bare.context) == {}
    with pytest.raises(TypeError):  # the shared default context cannot be written to
        bare.context["x"] = 1
