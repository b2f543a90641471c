"""`domains`, `load_sample_data` and `load_dataset`, end to end through the API's validation path."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from domains.base import SampleData
from domains.registry import plugin_get
from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event
from platform_core.plugins.services import data_load
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db
SIX = ["ecommerce", "social", "education", "finance_risk", "healthcare", "transport"]

# One hand-made bad event per domain: (event, field path, rule).
BAD = {
    "ecommerce": (
        {"type": "purchase", "item_id": "x", "context": {"amount": -1}},
        "events[0].context.amount",
        "must be ≥ 0",
    ),
    "social": (
        {"type": "view", "item_id": "x", "context": {"dwell_seconds": "long"}},
        "events[0].context.dwell_seconds",
        "must be a finite number",
    ),
    "education": (
        {"type": "attempt", "item_id": "x", "context": {"score": 0.5}},
        "events[0].context.correct",
        "is required",
    ),
    "finance_risk": (
        {"type": "login", "context": {"device_id": "d1", "country": "DE", "extra": 1}},
        "events[0].context.extra",
        "is not a declared field of this domain",
    ),
    "healthcare": (
        {"type": "outcome", "item_id": "x", "context": {"rating": 9}},
        "events[0].context.rating",
        "must be ≤ 5",
    ),
    "transport": (
        {"type": "teleport", "item_id": "x"},
        "events[0].type",
        "unknown event type for domain 'transport'",
    ),
}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_domains_lists_plugins_event_types_and_config() -> None:
    text = run("domains")
    for domain in SIX:
        assert f"{domain} — " in text
    assert "fraud_report" in text and "[label]" in text and "max_radius_km" in text and "SENSITIVE" in text
    assert '"id": "healthcare"' in run("domains", "--json")


@pytest.mark.parametrize("domain", SIX)
def test_sample_data_loads_with_zero_rejections_and_bad_payloads_are_refused(domain, api_client_for) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory(slug=f"demo-{domain.replace('_', '-')}", domain=domain)
    text = run("load_sample_data", tenant.slug, "--users", "12", "--seed", "3")
    expected = plugin_get(domain).sample_data(3, 12)
    assert "rejected {'users': 0, 'items': 0, 'events': 0}" in text
    assert Event.objects.for_tenant(tenant).count() == len(expected.events)
    assert EndUser.objects.for_tenant(tenant).count() == len(expected.users)
    assert Item.objects.for_tenant(tenant).count() == len(expected.items)
    # A hand-made bad payload through the REST API: 400, field path + rule, nothing written.
    event, path, rule = BAD[domain]
    payload = {
        "events": [
            {
                "event_id": "bad-1",
                "user_id": expected.users[0]["user_id"],
                "timestamp": "2025-01-01T00:00:00Z",
                **event,
            }
        ]
    }
    response = api_client_for(tenant).post("/api/v1/events", payload, format="json")
    assert response.status_code == 400, response.json()
    assert any(rule in r for r in response.json()["error"]["fields"][path]), response.json()
    assert not Event.objects.for_tenant(tenant).filter(event_id="bad-1").exists()


def test_loading_the_same_seed_twice_only_finds_duplicates() -> None:
    tenant = TenantFactory(slug="shop", domain="ecommerce")
    run("load_sample_data", "shop", "--users", "5")
    before = Event.objects.for_tenant(tenant).count()
    text = run("load_sample_data", "shop", "--users", "5")
    assert f"events inserted 0, duplicates {before}" in text


def test_a_refused_row_is_skipped_counted_and_explained() -> None:
    tenant = TenantFactory(slug="clinic", domain="healthcare")
    data = SampleData(
        users=[
            {"user_id": "p1", "attributes": {"age_band": "40-64", "conditions": ["asthma"]}},
            {"user_id": "p2", "attributes": {"conditions": ["secret-condition"]}},
        ],
        items=[
            {
                "item_id": "a1",
                "attributes": {"kind": "article", "title": "Asthma", "condition_tags": ["asthma"]},
            }
        ],
        events=[
            {
                "event_id": "e1",
                "user_id": "p1",
                "item_id": "a1",
                "type": "view",
                "timestamp": "2025-01-01T00:00:00Z",
                "value": None,
                "context": {},
            },
            {
                "event_id": "e2",
                "user_id": "p1",
                "item_id": "a1",
                "type": "outcome",
                "timestamp": "2025-01-02T00:00:00Z",
                "value": None,
                "context": {"rating": 0},
            },
        ],
    )
    report = data_load(tenant=tenant, data=data)
    assert report.rejected == {"users": 1, "items": 0, "events": 1}
    assert (report.users, report.items, report.events_inserted) == (1, 1, 1)
    assert report.reasons == [
        "users: users[…].attributes.age_band: is required",
        "events: events[…].context.rating: must be ≥ 1",
    ]
    assert "secret-condition" not in " ".join(report.reasons)


def test_load_dataset_reads_a_public_format(tmp_path: Path) -> None:
    tenant = TenantFactory(slug="taobao", domain="ecommerce")
    (tmp_path / "UserBehavior.csv").write_text(
        "1,10,100,pv,1511848894\n1,10,100,cart,1511848900\n2,11,101,buy,1511848994\n"
    )
    text = run("load_dataset", "taobao", "taobao-userbehavior", str(tmp_path))
    assert "users 2, items 2, events inserted 3" in text
    assert sorted(Event.objects.for_tenant(tenant).values_list("type", flat=True)) == [
        "add_to_cart",
        "purchase",
        "view",
    ]
    assert Item.objects.for_tenant(tenant).get(external_id="11").attributes == {"category": "101"}


def test_load_dataset_refuses_an_unknown_name_or_path(tmp_path: Path) -> None:
    TenantFactory(slug="taobao", domain="ecommerce")
    with pytest.raises(CommandError, match="has no data set adapter 'oulad'"):
        run("load_dataset", "taobao", "oulad", str(tmp_path))
    with pytest.raises(CommandError, match="UserBehavior.csv not found"):
        run("load_dataset", "taobao", "taobao-userbehavior", str(tmp_path / "nope"))
    with pytest.raises(CommandError, match="no tenant with slug 'ghost'"):
        run("load_sample_data", "ghost")
