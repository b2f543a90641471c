"""The console edits a tenant's config through a form generated from the plugin's spec."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission

from platform_core.plugins.models import TenantConfig, TenantConfigChange
from platform_core.plugins.selectors import tenant_config_get
from platform_core.plugins.services import tenant_config_update
from tests.factories import StaffUserFactory, TenantFactory, TenantMembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):  # type: ignore[no-untyped-def]
    user = StaffUserFactory(username="root", is_superuser=True)
    client.force_login(user)
    return client


def _url(row: TenantConfig) -> str:
    return f"/admin/plugins/tenantconfig/{row.pk}/change/"


def _hidden(client, url: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The hidden inputs a browser would send back (the inline's management form)."""
    html = client.get(url).content.decode()
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


@pytest.mark.parametrize(
    "domain", ["ecommerce", "social", "education", "finance_risk", "healthcare", "transport"]
)
def test_the_change_page_shows_a_typed_bounded_field_per_parameter(admin_client, domain) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory(slug=f"t-{domain.replace('_', '-')}", domain=domain)
    tenant_config_update(tenant=tenant, values={})
    row = TenantConfig.unscoped.get(tenant=tenant)
    html = admin_client.get(_url(row)).content.decode()
    from domains.registry import plugin_get

    for param in plugin_get(domain).config:
        assert f'name="{param.name}"' in html
    if domain == "transport":
        assert (
            'name="max_radius_km"' in html
            and 'type="number"' in html
            and 'min="0.1"' in html
            and 'max="500"' in html
        )


def test_posting_the_form_updates_config_and_logs_the_change(admin_client) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory(slug="city", domain="transport")
    tenant_config_update(tenant=tenant, values={})
    row = TenantConfig.unscoped.get(tenant=tenant)
    form = {
        "max_radius_km": "2.5",
        "distance_weight": "0.3",
        "time_of_day_boost": "0.25",
        "time_window_hours": "2",
        "congestion_weight": "0.2",
    }
    response = admin_client.post(_url(row), {**_hidden(admin_client, _url(row)), **form})
    assert response.status_code == 302, response.content.decode()[:2000]
    config = tenant_config_get(tenant=tenant)
    assert (config["max_radius_km"], config["time_window_hours"]) == (2.5, 2)
    change = TenantConfigChange.unscoped.filter(tenant=tenant).first()
    assert change.changed_by_name == "root" and change.source == "admin"
    assert change.diff == {"max_radius_km": (5.0, 2.5), "time_window_hours": (1, 2)}
    page = admin_client.get(_url(row)).content.decode()
    assert "max_radius_km" in page and "5.0 → 2.5" in page  # the inline change log


def test_an_out_of_bounds_value_is_refused_by_the_form(admin_client) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory(slug="city2", domain="transport")
    tenant_config_update(tenant=tenant, values={})
    row = TenantConfig.unscoped.get(tenant=tenant)
    form = {
        "max_radius_km": "900",
        "distance_weight": "0.3",
        "time_of_day_boost": "0.25",
        "time_window_hours": "1",
        "congestion_weight": "0.2",
    }
    response = admin_client.post(_url(row), {**_hidden(admin_client, _url(row)), **form})
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 500" in response.content.decode()
    assert tenant_config_get(tenant=tenant)["max_radius_km"] == 5.0
    assert TenantConfigChange.unscoped.filter(tenant=tenant).count() == 1  # only the creation


def test_adding_a_config_starts_from_the_defaults(admin_client) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory(slug="shop", domain="ecommerce")
    add = "/admin/plugins/tenantconfig/add/"
    response = admin_client.post(add, {**_hidden(admin_client, add), "tenant": tenant.pk})
    assert response.status_code == 302
    assert TenantConfig.unscoped.get(tenant=tenant).values["promotion_boost"] == 0.1


def test_staff_see_only_their_tenants_configs(client) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = (
        TenantFactory(slug="mine", domain="ecommerce"),
        TenantFactory(slug="theirs", domain="ecommerce"),
    )
    for t in (mine, theirs):
        tenant_config_update(tenant=t, values={})
    staff = StaffUserFactory(username="staff-a")
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="plugins"))
    TenantMembershipFactory(tenant=mine, user=staff)
    client.force_login(staff)
    listing = client.get("/admin/plugins/tenantconfig/").content.decode()
    assert "mine" in listing and "theirs" not in listing
    other = TenantConfig.unscoped.get(tenant=theirs)
    assert client.get(_url(other)).status_code == 302  # "doesn't exist" → admin redirects to the index
    assert client.get(_url(TenantConfig.unscoped.get(tenant=mine))).status_code == 200
