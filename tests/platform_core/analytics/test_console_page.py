"""The console's analytics page: A's operator sees A's numbers only, forms name bad fields, CSV rows."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from platform_core.tenancy.models import Tenant, TenantMembership
from tests.factories import StaffUserFactory
from tests.platform_core.analytics.conftest import at
from tests.platform_core.console.test_admin_walk import _custom_urls

RANGE = {"date_from": "2026-03-01 00:00:00", "date_to": "2026-03-20 00:00:00"}


def _url(tenant: Tenant) -> str:
    return reverse("admin:tenancy_tenant_analytics", args=[tenant.pk])


@pytest.fixture
def client_a(tenant: Tenant) -> Client:
    user = StaffUserFactory(username="alice-of-a")
    user.user_permissions.set(Permission.objects.filter(codename="view_tenant"))
    TenantMembership.objects.create(tenant=tenant, user=user)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def planted(tenant, other_tenant, plant):  # noqa: ANN001, ANN201
    # A: u1 and u2 view, u1 buys. B: three users buy (a number A's page must never show).
    plant(tenant, "u1", "view", at(0))
    plant(tenant, "u1", "purchase", at(0, hours=1))
    plant(tenant, "u2", "view", at(1))
    for user in ("b1", "b2", "b3"):
        plant(other_tenant, user, "view", at(0))
        plant(other_tenant, user, "purchase", at(0, hours=1))


def _run(client: Client, tenant: Tenant, q: str, **fields: str) -> tuple[int, str]:
    params = {"q": q, **{f"{q}-{k}": value for k, value in fields.items()}}
    r = client.get(_url(tenant), params)
    return r.status_code, r.content.decode()


def test_the_page_is_walked_and_linked_from_the_tenant(client_a, tenant, planted):
    assert any(p.name == "tenancy_tenant_analytics" for p in _custom_urls(admin.site._registry[Tenant]))
    change = client_a.get(reverse("admin:tenancy_tenant_change", args=[tenant.pk])).content.decode()
    assert _url(tenant) in change
    status, html = _run(client_a, tenant, "")
    assert status == 200 and 'id="result"' not in html  # forms only until one is run
    for section in ("funnel", "retention", "paths", "trending", "trajectories", "impact"):
        assert f'name="q" value="{section}"' in html


def test_funnel_shows_a_numbers_and_their_csv(client_a, tenant, planted):
    status, html = _run(client_a, tenant, "funnel", steps="view\npurchase", window="7d", **RANGE)
    assert status == 200 and 'role="img"' in html and "errorlist" not in html
    r = client_a.get(
        _url(tenant),
        {
            "q": "funnel",
            "format": "csv",
            "funnel-steps": "view\npurchase",
            "funnel-window": "7d",
            **{f"funnel-{k}": v for k, v in RANGE.items()},
        },
    )
    assert r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    # A: 2 users view, 1 buys (B's 3 buyers would make it 3 of 3)
    assert rows == [
        ["group", "step", "users", "conversion", "median_seconds"],
        ["(all)", "0", "2", "1.0", ""],
        ["(all)", "1", "1", "0.5", "3600.0"],
    ]


def test_every_query_runs(client_a, tenant, planted):
    runs = {
        "retention": {"period": "week", **RANGE},
        "paths": {
            "event": "view",
            "direction": "after",
            "steps": "3",
            "k": "10",
            "session_gap": "30m",
            "by": "type",
            **RANGE,
        },
        "trending": {"window": "24h", "k": "10", "periods": "3", "min_count": "1"},
        "trajectories": {"months": "3", "date_to": "2026-04-01 00:00:00", "users": "u1, u2"},
        "impact": {**RANGE},
    }
    for q, fields in runs.items():
        status, html = _run(client_a, tenant, q, **fields)
        assert status == 200 and 'role="img"' in html and "errorlist" not in html, q
    r = client_a.get(
        _url(tenant),
        {
            "q": "trajectories",
            "format": "csv",
            "trajectories-months": "3",
            "trajectories-date_to": "2026-04-01 00:00:00",
        },
    )
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[1:] == [
        ["2026-03", "2", "shoes", "7.0", "1.0"],
        ["2026-02→2026-03", "risers", "shoes", "1.0", "1.0"],
    ]


@pytest.mark.parametrize(
    ("q", "fields", "field", "text"),
    [
        ("funnel", {"steps": "view\nteleport", "window": "7d"}, "steps", "steps[1].type"),
        ("funnel", {"steps": "view", "window": "0d"}, "window", "window: must be greater than zero"),
        (
            "funnel",
            {
                "steps": "view",
                "window": "7d",
                "date_from": "2026-03-09 00:00:00",
                "date_to": "2026-03-01 00:00:00",
            },
            "date_from",
            "from: must be before",
        ),
        ("retention", {"period": "week", "start_type": "nope"}, "start_type", "start_type:"),
        ("trajectories", {"months": "1"}, "months", "months:"),
        ("impact", {"conversion_type": "nope"}, "conversion_type", "conversion_type:"),
        ("impact", {"date_from": "not a date"}, "date_from", "Enter a valid date"),
    ],
)
def test_bad_input_is_a_form_error_naming_the_field(client_a, tenant, planted, q, fields, field, text):
    status, html = _run(client_a, tenant, q, **fields)
    assert status == 200 and 'id="result"' not in html
    assert 'class="errorlist' in html and text in html
    # the error sits on the named field's row (Django renders it right before the input)
    start = html.index(f'id="id_{q}-{field}"') if f'id="id_{q}-{field}"' in html else -1
    assert start > 0 and text in html[max(0, start - 2000) : start]


def test_another_tenants_page_is_not_found(client_a, tenant, other_tenant, planted):
    assert client_a.get(_url(other_tenant)).status_code == 404
    assert client_a.get(reverse("admin:tenancy_tenant_analytics", args=[987654])).status_code == 404
    r = client_a.get(
        _url(other_tenant), {"q": "funnel", "format": "csv", "funnel-steps": "view", "funnel-window": "7d"}
    )
    assert r.status_code == 404


def test_the_page_needs_the_view_permission(tenant, planted):
    user = StaffUserFactory(username="no-perms")
    TenantMembership.objects.create(tenant=tenant, user=user)
    client = Client()
    client.force_login(user)
    assert client.get(_url(tenant)).status_code == 403


def test_csv_cells_cannot_be_formulas(client_a, tenant, plant):
    plant(tenant, "u1", "view", at(0), item="x", item_attrs={"category": "=HYPERLINK(1)"})
    r = client_a.get(
        _url(tenant),
        {
            "q": "paths",
            "format": "csv",
            "paths-event": "view",
            "paths-direction": "before",
            "paths-steps": "1",
            "paths-k": "5",
            "paths-session_gap": "30m",
            "paths-by": "item.category",
            **{f"paths-{k}": v for k, v in RANGE.items()},
        },
    )
    assert r.status_code == 200
    r = client_a.get(
        _url(tenant),
        {
            "q": "trajectories",
            "format": "csv",
            "trajectories-months": "2",
            "trajectories-date_to": "2026-04-01 00:00:00",
        },
    )
    assert "'=HYPERLINK(1)" in r.content.decode()
