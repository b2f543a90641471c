"""The per-process user-state cache (serving/user_state.py) over committed data.

On PostgreSQL the cache is live and every change to a user's events or
attributes, committed by any connection, reaches it through the triggers'
notifications; on SQLite it is off and every request reads the database. The
same assertions hold on both: what a user is served always follows what is
committed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from django.db import connection

from platform_core.catalog.models import EndUser, Item
from platform_core.serving import user_state, user_vectors
from platform_core.serving.user_state import (
    user_state_listener_stop,
    user_state_live,
    user_state_stats,
)
from tests.factories import EndUserFactory
from tests.platform_core.serving.conftest import Shop, events_make

pytestmark = pytest.mark.django_db(transaction=True)

PG = "postgresql"


@pytest.fixture(autouse=True)
def _cache_on(settings) -> Iterator[None]:  # noqa: ANN001
    settings.SERVING_USER_STATE_CACHE_MB = 16
    yield
    user_state_listener_stop()


@pytest.fixture
def live(shop: Shop) -> bool:
    """Whether the cache is in use here (PostgreSQL: it must come up)."""
    is_live = user_state_live(wait=10.0)
    assert is_live == (connection.vendor == PG)
    return is_live


def _elsewhere(sql: str, params: list[Any]) -> None:
    """Run and commit one statement on a second connection (as another process would)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(s["NAME"], timeout=5)
        try:
            other.execute(sql.replace("%s", "?"), params)
            other.commit()
        finally:
            other.close()
        return
    import psycopg2

    other = psycopg2.connect(**connection.get_connection_params())
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
        other.commit()
    finally:
        other.close()


def _body(api_client, user: str, **params: Any) -> dict[str, Any]:  # noqa: ANN001
    from urllib.parse import urlencode

    r = api_client.get(f"/api/v1/users/{user}/recommendations?{urlencode({'k': 8, **params})}")
    assert r.status_code == 200, r.json()
    body = r.json()
    body.pop("recommendation_id")
    body.pop("generated_at")
    return body


def _purchase(api_client, *, event_id: str, user: str, item: str) -> None:  # noqa: ANN001
    r = api_client.post(
        "/api/v1/events",
        {"event_id": event_id, "user_id": user, "item_id": item, "type": "purchase",
         "timestamp": "2026-01-02T00:00:00Z"},
        format="json",
    )  # fmt: skip
    assert r.status_code in (200, 201), r.json()


def _until(check, timeout: float = 1.0) -> float:  # noqa: ANN001
    """Seconds until ``check()`` holds (fails after ``timeout``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "not within the freshness bound"
        time.sleep(0.005)
    return time.monotonic() - start


def test_cached_answers_equal_the_databases(api_client, shop: Shop, live: bool, settings) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="carol", attributes={"segment": "vip"})
    events_make(
        shop.tenant,
        user,
        ["i2", "i5", "i8", "i3", "i5"],
        types=["view", "add_to_cart", "view", "purchase", "view"],
    )
    cold = _body(api_client, "carol")
    before = user_state_stats()
    warm = _body(api_client, "carol")
    after = user_state_stats()
    assert warm == cold
    assert after["hits"] - before["hits"] == (1 if live else 0)
    # The domain's rules saw the same history: the purchased item is not served again.
    assert "i3" not in [i["item_id"] for i in warm["items"]]
    settings.SERVING_USER_STATE_CACHE_MB = 0
    assert _body(api_client, "carol") == warm
    assert _body(api_client, "carol", explain="true")["items"][0]["item_id"] == warm["items"][0]["item_id"]


def test_an_event_committed_elsewhere_reaches_the_next_answers(api_client, shop: Shop, live: bool) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="dan")
    events_make(shop.tenant, user, ["i2", "i4"])
    first = _body(api_client, "dan")
    _body(api_client, "dan")  # cached now (PostgreSQL)
    top = first["items"][0]["item_id"]
    item = Item.objects.for_tenant(shop.tenant).get(external_id=top)
    _elsewhere(
        "INSERT INTO events_event (tenant_id, event_id, user_id, item_id, type, timestamp, value, context, "
        "received_at) VALUES (%s, %s, %s, %s, 'purchase', %s, NULL, '{}', %s)",
        [
            shop.tenant.pk,
            "elsewhere-1",
            user.pk,
            item.pk,
            "2026-01-02 00:00:00+00:00",
            "2026-01-02 00:00:00+00:00",
        ],
    )
    # The purchased item leaves the list (ecommerce drops purchases) within the freshness bound.
    _until(lambda: top not in [i["item_id"] for i in _body(api_client, "dan")["items"]])


def test_user_changes_and_deletion_elsewhere_reach_the_next_answers(
    api_client, shop: Shop, live: bool
) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="erin")
    events_make(shop.tenant, user, ["i2", "i4", "i6"])
    _body(api_client, "erin")
    _body(api_client, "erin")
    # A deleted event (any path) changes the vector.
    before = _body(api_client, "erin")
    _elsewhere(
        "DELETE FROM events_event WHERE tenant_id = %s AND user_id = %s AND event_id = %s",
        [shop.tenant.pk, user.pk, _event_id(user, "i6")],
    )
    _until(lambda: _body(api_client, "erin") != before)
    # Erasure / deletion from elsewhere: the user is gone from the answers and from the cache.
    _elsewhere("DELETE FROM catalog_enduser WHERE id = %s", [user.pk])
    _until(lambda: api_client.get("/api/v1/users/erin/recommendations").status_code == 404)
    assert "erin" not in {key[1] for key in user_state._cache.entries}
    # The notification took the user's vector out of this process too (SQLite has none to send).
    assert ((shop.tenant.pk, user.pk) in user_vectors._vectors) == (not live)


def test_erasure_through_the_api_leaves_nothing_cached(api_client, shop: Shop, live: bool) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="ida")
    events_make(shop.tenant, user, ["i2", "i4", "i6"])
    _body(api_client, "ida")
    _body(api_client, "ida")

    def cached() -> tuple[bool, bool]:
        in_state = (shop.tenant.pk, "ida") in user_state._cache.entries
        return in_state, (shop.tenant.pk, user.pk) in user_vectors._vectors

    # The vector is kept once: with the user state where that cache is live, else alone.
    assert cached() == ((True, False) if live else (False, True))
    assert api_client.delete("/api/v1/users/ida").status_code == 200
    assert cached() == (False, False)
    assert api_client.get("/api/v1/users/ida/recommendations").status_code == 404


def _event_id(user: EndUser, item_id: str) -> str:
    from platform_core.events.models import Event

    return (
        Event.objects.for_tenant(user.tenant)
        .filter(user=user, item__external_id=item_id)
        .values_list("event_id", flat=True)
        .get()
    )


def test_ingestion_in_this_process_needs_no_wait(api_client, shop: Shop, live: bool) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="finn")
    events_make(shop.tenant, user, ["i2", "i4"])
    first = _body(api_client, "finn")
    _body(api_client, "finn")
    top = first["items"][0]["item_id"]
    _purchase(api_client, event_id="now-1", user="finn", item=top)
    assert top not in [i["item_id"] for i in _body(api_client, "finn")["items"]]


def test_a_deactivated_history_item_is_read_from_the_database(api_client, shop: Shop, live: bool) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="gus")
    events_make(shop.tenant, user, ["i2", "i4", "i6"])
    _body(api_client, "gus")
    Item.objects.for_tenant(shop.tenant).filter(external_id="i4").update(active=False)
    from platform_core.serving.candidates import serving_caches_clear

    serving_caches_clear()  # the catalog snapshot picks the change up (as after HOT_CACHE_SECONDS)
    before = user_state_stats()
    _body(api_client, "gus")
    assert user_state_stats()["hits"] == before["hits"]


def _entry(pk: int, size: int = 100) -> Any:
    return user_state._Entry(user_pk=pk, version_id=1, created=time.monotonic(), blob=b"x" * size)


def test_a_fill_that_raced_a_change_is_not_kept(shop: Shop) -> None:
    cache = user_state._Cache()
    cache.reset(live=True)
    key = (shop.tenant.pk, "u")
    began = cache.begin()
    cache.drop(shop.tenant.pk, [7])  # the user's events changed while the request read them
    assert not cache.put(key, _entry(7), began=began, budget=1 << 20)
    assert cache.put(key, _entry(7), began=cache.begin(), budget=1 << 20)
    cache.drop(shop.tenant.pk, [8])  # another user: no effect
    assert cache.get(key, max_age=60) is not None
    cache.drop(shop.tenant.pk, [7])
    assert cache.get(key, max_age=60) is None
    # Not live (listener down): nothing is kept or read.
    assert cache.put(key, _entry(7), began=cache.begin(), budget=1 << 20)
    cache.reset(live=False)
    assert cache.begin() is None
    assert cache.get(key, max_age=60) is None


def test_the_cache_keeps_to_its_budget_and_expires() -> None:
    cache = user_state._Cache()
    cache.reset(live=True)
    for pk in range(10):
        cache.put((1, f"u{pk}"), _entry(pk, 550), began=cache.begin(), budget=5_000)
    assert cache.bytes <= 5_000
    assert list(cache.entries) == [(1, f"u{pk}") for pk in range(5, 10)]
    assert cache.get((1, "u9"), max_age=60) is not None
    assert cache.get((1, "u9"), max_age=-1) is None  # past its age
    assert (1, "u9") not in cache.entries


def test_an_entry_unpacks_to_what_was_packed() -> None:
    import numpy as np

    events = [["i1", "view", 1_767_225_600_000_000, None, None], ["i2", "purchase", 1_767_225_660_000_001, 2.5,
              {"device": "ios"}]]  # fmt: skip
    vector = np.arange(8, dtype=np.float32) / 3
    entry = user_state._Entry.pack(
        user_pk=3, version_id=9, events=orjson.dumps(events), user_attributes=b'{"age": 30}',
        positions=[0, 1], rows=[17, 4], vector=vector,
    )  # fmt: skip
    got_events, attributes, positions, rows, got_vector = entry.unpack()
    assert got_events == events
    assert attributes == b'{"age": 30}'
    assert (positions, rows) == ([0, 1], [17, 4])
    assert got_vector.tobytes() == vector.tobytes()
    empty = user_state._Entry.pack(
        user_pk=3, version_id=9, events=b"[]", user_attributes=b"", positions=[], rows=[], vector=None
    )
    assert empty.unpack() == ([], b"", [], [], None)


def test_a_lost_listener_turns_the_cache_off_until_it_is_back(api_client, shop: Shop, live: bool) -> None:
    user = EndUserFactory(tenant=shop.tenant, external_id="hal")
    events_make(shop.tenant, user, ["i2", "i4"])
    _body(api_client, "hal")
    if not live:
        assert user_state._listener is None  # SQLite: no listener, nothing cached
        assert user_state_stats()["entries"] == 0
        return
    assert user_state_stats()["entries"] == 1
    pid = user_state._listener.conn.get_backend_pid()
    _elsewhere("SELECT pg_terminate_backend(%s)", [pid])
    _until(lambda: not user_state._cache.live or user_state._listener.conn is None
           or user_state._listener.conn.get_backend_pid() != pid, timeout=5)  # fmt: skip
    assert user_state_stats()["entries"] == 0  # emptied: notifications may have been missed
    assert user_state_live(wait=10.0)
    _body(api_client, "hal")
    assert user_state_stats()["entries"] == 1


def test_tenants_with_the_same_user_ids_never_share_state(
    api_client, other_client, shop: Shop, other_tenant, model_version_make, live: bool
) -> None:
    from tests.factories import ItemFactory

    for n in range(20):
        ItemFactory(
            tenant=other_tenant, external_id=f"i{n}", attributes={"category": "bags", "in_stock": True}
        )
    model_version_make(other_tenant, [f"i{n}" for n in range(20)], seed=5)
    mine = EndUserFactory(tenant=shop.tenant, external_id="same")
    theirs = EndUserFactory(tenant=other_tenant, external_id="same")
    events_make(shop.tenant, mine, ["i2", "i4"])
    events_make(other_tenant, theirs, ["i9", "i11", "i13"])
    a, b = _body(api_client, "same"), _body(other_client, "same")
    assert (_body(api_client, "same"), _body(other_client, "same")) == (a, b)  # served from each one's state
    assert a["model_version"] != b["model_version"] and a["items"] != b["items"]
    if live:
        assert {(shop.tenant.pk, "same"), (other_tenant.pk, "same")} <= set(user_state._cache.entries)
    # A change to one tenant's user leaves the other's state alone.
    top = a["items"][0]["item_id"]
    _purchase(api_client, event_id="iso-1", user="same", item=top)
    assert top not in [i["item_id"] for i in _body(api_client, "same")["items"]]
    assert _body(other_client, "same") == b


# --------------------------------------------------------------------------- kept lists
def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_a_kept_list_is_served_again_until_one_of_its_inputs_changes(
    api_client, shop: Shop, live: bool, settings
) -> None:
    from platform_core.plugins.services import tenant_config_update

    settings.HOT_CACHE_SECONDS = 0  # the catalog and the config are looked at on every request
    user = EndUserFactory(tenant=shop.tenant, external_id="kim")
    events_make(shop.tenant, user, ["i2", "i4", "i6"], types=["view", "purchase", "view"])
    first = _body(api_client, "kim", k=20)  # every item the rules leave
    assert "i4" not in _ids(first)  # bought, and shoes are no repeat category

    def list_hits() -> int:
        return user_state_stats()["list_hits"]

    hits = list_hits()
    assert _body(api_client, "kim", k=20) == first
    assert list_hits() - hits == (1 if live else 0)
    # Other parameters: computed for them (and then kept instead).
    assert len(_body(api_client, "kim", k=5)["items"]) == 5
    assert _body(api_client, "kim", k=20) == first
    # The tenant's config changed: the rules run again with it.
    tenant_config_update(tenant=shop.tenant, values={"repeat_categories": "shoes"})
    hits = list_hits()
    assert "i4" in _ids(_body(api_client, "kim", k=20))
    assert list_hits() == hits
    again = _body(api_client, "kim", k=20)
    # The catalog changed (the top item sold out): it leaves the list.
    top = again["items"][0]["item_id"]
    item = Item.objects.for_tenant(shop.tenant).get(external_id=top)
    item.attributes = {**item.attributes, "in_stock": False}
    item.save()
    assert top not in _ids(_body(api_client, "kim", k=20))
    # Each answer equals what the database gives without any cache.
    settings.SERVING_USER_STATE_CACHE_MB = 0
    assert top not in _ids(_body(api_client, "kim", k=20))


def test_a_list_of_a_clock_reading_domain_is_kept_for_a_bounded_time(
    api_client, shop: Shop, live: bool, settings, monkeypatch
) -> None:
    from domains.ecommerce.plugin import EcommercePlugin

    monkeypatch.setattr(EcommercePlugin, "rerank_reads_clock", True)
    user = EndUserFactory(tenant=shop.tenant, external_id="lou")
    events_make(shop.tenant, user, ["i2", "i4"])
    _body(api_client, "lou")
    hits = user_state_stats()["list_hits"]
    _body(api_client, "lou")
    assert user_state_stats()["list_hits"] - hits == (1 if live else 0)
    settings.SERVING_LIST_CACHE_CLOCK_SECONDS = 0  # older than that: computed again at this time
    hits = user_state_stats()["list_hits"]
    _body(api_client, "lou")
    assert user_state_stats()["list_hits"] == hits


def _served(params: tuple[Any, ...] = (8,), n: int = 10) -> Any:
    import datetime as dt

    inputs = user_state.ListInputs(domain="ecommerce", version_id=1, catalog=1, config=None, new_items=None)
    return user_state.ServedList.pack(
        params=params, inputs=inputs, generated_at=dt.datetime.now(dt.UTC), item_ids=[f"i{r}" for r in range(n)],
        scores=[1.0 / (r + 1) for r in range(n)], rows=list(range(n)), sources=["model"] * n, flags=[{}] * n,
    )  # fmt: skip


def test_a_kept_list_unpacks_to_what_was_packed() -> None:
    import datetime as dt

    from mlcore.artifacts import ItemIds

    inputs = user_state.ListInputs(domain="d", version_id=1, catalog=1, config=None, new_items=None)
    model_ids = ItemIds.from_strings(["a", "b", "c"])
    by_row = user_state.ServedList.pack(
        params=(3,), inputs=inputs, generated_at=dt.datetime.now(dt.UTC), item_ids=["c", "a"],
        scores=[0.5, 0.25], rows=[2, 0], sources=["model", "model"], flags=[{}, {}],
    )  # fmt: skip
    assert by_row.unpack(model_ids) == (["c", "a"], [0.5, 0.25], ("model", "model"), ({}, {}))
    assert (by_row.item_ids, by_row.sources, by_row.flags) == (None, None, None)  # only the rows are kept
    # A new item (no row in the model) and a flag: ids, sources and flags are kept as they are.
    mixed = user_state.ServedList.pack(
        params=(3,), inputs=inputs, generated_at=dt.datetime.now(dt.UTC), item_ids=["new", "a"],
        scores=[0.5, 0.25], rows=[None, 0], sources=["attribute_similarity", "model"],
        flags=[{}, {"requires_review": True}],
    )  # fmt: skip
    assert mixed.unpack(model_ids) == (
        ["new", "a"], [0.5, 0.25], ("attribute_similarity", "model"), ({}, {"requires_review": True})
    )  # fmt: skip


def test_a_kept_list_lives_and_dies_with_its_users_state() -> None:
    cache = user_state._Cache()
    cache.reset(live=True)
    key = (1, "u")
    began = cache.begin()
    assert not cache.list_put(key, _served(), began=began, budget=1 << 20)  # no state: nothing to keep it by
    cache.put(key, _entry(7), began=began, budget=1 << 20)
    cache.drop(1, [7])  # the user changed while the list was computed
    assert not cache.list_put(key, _served(), began=began, budget=1 << 20)
    began = cache.begin()
    cache.put(key, _entry(7), began=began, budget=1 << 20)
    assert cache.list_put(key, _served(), began=began, budget=1 << 20)
    assert cache.list_get(key, (8,), max_age=60, state_max_age=60) is not None
    assert cache.list_get(key, (5,), max_age=60, state_max_age=60) is None  # other parameters
    assert cache.list_get(key, (8,), max_age=-1, state_max_age=60) is None  # too old
    assert cache.list_get(key, (8,), max_age=60, state_max_age=-1) is None  # from a state too old
    assert cache.bytes == _entry(7).size + _served().size
    cache.drop(1, [7])
    assert cache.list_get(key, (8,), max_age=60, state_max_age=60) is None
    assert (cache.bytes, cache.entries) == (0, {})
    # Lists count against the budget: the least recently used users go, with their lists.
    for pk in range(6):
        k = (1, f"u{pk}")
        cache.put(k, _entry(pk, 200), began=cache.begin(), budget=3_000)
        cache.list_put(k, _served(), began=cache.begin(), budget=3_000)
    assert cache.bytes <= 3_000
    assert 0 < len(cache.entries) < 6
    assert all(e.served is not None for e in cache.entries.values())


def test_list_inputs_match_only_the_same_model_catalog_config_and_new_items() -> None:
    config, new_items = object(), []
    base = user_state.ListInputs(domain="d", version_id=1, catalog=5, config=config, new_items=new_items)
    assert base.same(
        user_state.ListInputs(domain="d", version_id=1, catalog=5, config=config, new_items=new_items)
    )
    for change in (
        {"version_id": 2},
        {"catalog": 6},
        {"config": object()},
        {"new_items": []},  # equal, but another list: the new items were refreshed and changed
        {"domain": "e"},
    ):
        fields = {"domain": "d", "version_id": 1, "catalog": 5, "config": config, "new_items": new_items}
        assert not base.same(user_state.ListInputs(**{**fields, **change})), change
