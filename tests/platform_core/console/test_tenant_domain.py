"""A tenant's domain must name a registered plugin: the console form, the model, the service and the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from platform_core.common.errors import ValidationFailed
from platform_core.tenancy.models import Tenant
from platform_core.tenancy.services import tenant_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(client):  # type: ignore[no-untyped-def]
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def _form(tenant: Tenant, **changes: str) -> dict[str, str]:
    data = {"slug": tenant.slug, "name": tenant.name, "domain": tenant.domain, "auto_create_entities": "on"}
    inline = {"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}  # the superuser's inline
    return {**data, **inline, **changes}


def test_the_console_refuses_an_unknown_domain_naming_the_field(root_client, tenant) -> None:  # type: ignore[no-untyped-def]
    response = root_client.post(f"/admin/tenancy/tenant/{tenant.pk}/change/", _form(tenant, domain="shoes"))
    assert response.status_code == 200  # the form again, not "changed successfully"
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["domain"] and "shoes" in errors["domain"][0]
    tenant.refresh_from_db()
    assert tenant.domain == "ecommerce"


def test_the_console_offers_the_registered_domains_and_saves_one(root_client, tenant) -> None:  # type: ignore[no-untyped-def]
    page = root_client.get(f"/admin/tenancy/tenant/{tenant.pk}/change/").content.decode()
    assert '<select name="domain"' in page and 'value="healthcare"' in page
    response = root_client.post(f"/admin/tenancy/tenant/{tenant.pk}/change/", _form(tenant, domain="social"))
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.domain == "social"


def test_the_console_adds_a_tenant_only_with_a_known_domain_and_a_valid_slug(root_client) -> None:  # type: ignore[no-untyped-def]
    new = Tenant(slug="shop", name="Shop", domain="shoes")
    response = root_client.post("/admin/tenancy/tenant/add/", _form(new))
    assert list(response.context["adminform"].form.errors) == ["domain"]
    response = root_client.post("/admin/tenancy/tenant/add/", _form(new, slug="Shop", domain="ecommerce"))
    assert list(response.context["adminform"].form.errors) == ["slug"]
    assert not Tenant.objects.filter(name="Shop").exists()
    response = root_client.post("/admin/tenancy/tenant/add/", _form(new, domain="ecommerce"))
    assert response.status_code == 302
    assert Tenant.objects.get(slug="shop").domain == "ecommerce"


def test_the_model_and_the_service_refuse_an_unknown_domain(tenant) -> None:  # type: ignore[no-untyped-def]
    tenant.domain = "shoes"
    with pytest.raises(ValidationError) as invalid:
        tenant.full_clean()
    assert list(invalid.value.message_dict) == ["domain"]
    tenant.refresh_from_db()
    with pytest.raises(ValidationFailed) as refused:
        tenant_update(tenant=tenant, changes={"domain": "shoes", "name": "Renamed"})
    assert refused.value.fields.keys() == {"domain"} and refused.value.code == "unknown_domain"
    tenant.refresh_from_db()
    assert (tenant.domain, tenant.name) == ("ecommerce", "Tenant A")
    with pytest.raises(ValidationFailed) as not_editable:
        tenant_update(tenant=tenant, changes={"created_at": None})
    assert not_editable.value.fields == {"created_at": ["is not editable"]}
    assert tenant_update(tenant=tenant, changes={"domain": "social"}).domain == "social"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/users/u1/recommendations", None),
        ("get", "/api/v1/popular", None),
        ("put", "/api/v1/items/sku1", {"attributes": {"category": "shoes", "price": 1.0}}),
        ("post", "/api/v1/events", {"events": [{"user_id": "u1", "type": "view", "item_id": "i1"}]}),
    ],
)
def test_a_tenant_with_an_unknown_domain_gets_json_errors(api_client, tenant, method, path, body) -> None:  # type: ignore[no-untyped-def]
    Tenant.objects.filter(pk=tenant.pk).update(domain="shoes")  # written around the console's checks
    response = getattr(api_client, method)(path, body, format="json") if body else api_client.get(path)
    assert response.status_code == 503 and response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "tenant_domain_unknown"
    assert error["fields"] == {"tenant.domain": ["must name a registered domain plugin"]}
