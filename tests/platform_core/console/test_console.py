"""The admin console: counts, one-time key secrets, revoke, read-only events, tenant-limited staff."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User

from platform_core.tenancy.keys import key_hash
from platform_core.tenancy.models import ApiKey, TenantMembership
from tests.factories import ApiKeyFactory, EndUserFactory, EventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def staff_client_for_a(client, tenant):
    """A staff user of tenant A only, with view/change permissions on the catalog and keys."""
    user = User.objects.create_user("alice", password="pw", is_staff=True)
    codenames = [
        "view_enduser",
        "change_enduser",
        "view_apikey",
        "add_apikey",
        "change_apikey",
        "view_event",
        "view_tenant",
    ]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    TenantMembership.objects.create(tenant=tenant, user=user)
    client.force_login(user)
    return client


def test_tenant_list_shows_counts(superuser_client, tenant, other_tenant):
    EventFactory.create_batch(3, tenant=tenant)
    page = superuser_client.get("/admin/tenancy/tenant/").content.decode()
    row = re.search(r"tenant-a.*?</tr>", page, re.S).group(0)
    # 3 events, each with its own user and item, no keys
    assert re.findall(r'class="field-n_\w+">(\d+)<', row) == ["3", "3", "3", "0"]


def test_api_key_secret_is_shown_once_then_revoked(superuser_client, tenant):
    r = superuser_client.post(
        "/admin/tenancy/apikey/add/", {"tenant": tenant.pk, "name": "ops", "scopes": ["ingest", "read"]}
    )
    assert r.status_code == 200
    secret = re.search(r'id="api-key-secret"[^>]*>([^<]+)<', r.content.decode()).group(1)
    key = ApiKey.objects.get(name="ops")
    assert key.secret_hash == key_hash(secret) and key.scopes == ["ingest", "read"]
    detail = superuser_client.get(f"/admin/tenancy/apikey/{key.pk}/change/").content.decode()
    assert secret not in detail and secret.split(".")[1] not in detail
    superuser_client.post("/admin/tenancy/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_events_are_read_only_with_type_filter_date_hierarchy_and_search(superuser_client, tenant):
    view = EventFactory(tenant=tenant, type="view")
    buy = EventFactory(tenant=tenant, type="purchase")
    page = superuser_client.get("/admin/events/event/", {"type__exact": "purchase"}).content.decode()
    assert buy.event_id in page and view.event_id not in page
    page = superuser_client.get("/admin/events/event/", {"q": view.user.external_id}).content.decode()
    assert view.event_id in page and buy.event_id not in page
    assert superuser_client.get("/admin/events/event/", {"timestamp__year": "2026"}).status_code == 200
    assert superuser_client.get("/admin/events/event/add/").status_code == 403
    r = superuser_client.post(f"/admin/events/event/{view.pk}/change/", {"type": "hack"})
    assert r.status_code == 403
    view.refresh_from_db()
    assert view.type == "view"


def test_staff_see_only_their_tenants(staff_client_for_a, tenant, other_tenant):
    mine = EndUserFactory(tenant=tenant, external_id="mine-user")
    theirs = EndUserFactory(tenant=other_tenant, external_id="their-user")
    ApiKeyFactory(tenant=other_tenant, name="their-key")
    page = staff_client_for_a.get("/admin/catalog/enduser/").content.decode()
    assert "mine-user" in page and "their-user" not in page
    r = staff_client_for_a.get(f"/admin/catalog/enduser/{theirs.pk}/change/")
    assert r.status_code == 302  # "doesn't exist", as for a missing id
    assert staff_client_for_a.get(f"/admin/catalog/enduser/{mine.pk}/change/").status_code == 200
    assert "their-key" not in staff_client_for_a.get("/admin/tenancy/apikey/").content.decode()
    tenants = staff_client_for_a.get("/admin/tenancy/tenant/").content.decode()
    assert "tenant-a" in tenants and "tenant-b" not in tenants
    # cannot create a key for tenant B
    r = staff_client_for_a.post(
        "/admin/tenancy/apikey/add/", {"tenant": other_tenant.pk, "name": "x", "scopes": ["read"]}
    )
    assert r.status_code == 200 and not ApiKey.objects.filter(name="x").exists()


def test_end_user_page_masks_sensitive_attributes_and_allows_no_raw_edit(db, admin_client):
    from platform_core.catalog.services import enduser_upsert
    from tests.factories import TenantFactory

    clinic = TenantFactory(domain="healthcare")
    user, _ = enduser_upsert(
        tenant=clinic, external_id="p1", attributes={"age_band": "18-39", "allergies": ["penicillin"]}
    )
    page = admin_client.get(f"/admin/catalog/enduser/{user.pk}/change/").content.decode()
    assert "18-39" in page  # ordinary attributes are shown
    assert "penicillin" not in page and "fernet:" not in page  # sensitive ones are masked
    assert 'name="attributes"' not in page  # no form field that would bypass validation/sealing
