"""Tenants and API keys: services and the create_tenant / create_api_key commands."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from platform_core.common.errors import ValidationFailed
from platform_core.tenancy.keys import key_hash
from platform_core.tenancy.models import ApiKey, Tenant
from platform_core.tenancy.services import api_key_create, tenant_create

pytestmark = pytest.mark.django_db


def test_tenant_create_checks_slug_and_domain():
    tenant = tenant_create(slug="acme", domain="ecommerce", name="Acme")
    assert (tenant.slug, tenant.domain, tenant.name) == ("acme", "ecommerce", "Acme")
    with pytest.raises(ValidationFailed) as taken:
        tenant_create(slug="acme", domain="ecommerce")
    assert taken.value.status_code == 409
    with pytest.raises(ValidationFailed) as bad:
        tenant_create(slug="Not A Slug", domain="astrology")
    assert set(bad.value.fields) == {"slug", "domain"}


def test_api_key_stores_only_the_hash_and_validates_scopes(tenant):
    created = api_key_create(tenant=tenant, scopes=["read", "ingest", "read"], name="ci")
    row = ApiKey.objects.get(pk=created.api_key.pk)
    assert row.scopes == ["ingest", "read"]
    assert row.secret_hash == key_hash(created.raw_key)
    assert created.raw_key.split(".", 1)[1] not in repr(row.__dict__)
    with pytest.raises(ValidationFailed):
        api_key_create(tenant=tenant, scopes=["root"])
    with pytest.raises(ValidationFailed):
        api_key_create(tenant=tenant, scopes=[])


def test_create_tenant_command_is_idempotent_for_the_same_domain():
    out = StringIO()
    call_command("create_tenant", "shop", "--domain", "ecommerce", "--name", "Shop", stdout=out)
    call_command("create_tenant", "shop", "--domain", "ecommerce", stdout=out)
    assert Tenant.objects.get(slug="shop").name == "Shop"
    with pytest.raises(CommandError, match="exists with domain"):
        call_command("create_tenant", "shop", "--domain", "social", stdout=out)
    with pytest.raises(CommandError, match="no domain plugin"):
        call_command("create_tenant", "other", "--domain", "astrology", stdout=out)


def test_create_api_key_prints_a_working_secret_alone_on_the_last_line(tenant):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key", tenant.slug, "--scopes", "ingest,read", "--name", "cli", stdout=out, stderr=err
    )
    secret = out.getvalue().strip().splitlines()[-1]
    assert " " not in secret and "." in secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert client.get("/api/v1/users").status_code == 200
    assert ApiKey.objects.get(tenant=tenant).name == "cli"
    with pytest.raises(CommandError, match="Scopes"):
        call_command("create_api_key", tenant.slug, "--scopes", "everything", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="No tenant"):
        call_command("create_api_key", "ghost", "--scopes", "read", stdout=out, stderr=err)
