"""The fail-closed managers and the *_get_for_tenant helpers."""

from __future__ import annotations

import pytest

from platform_core.catalog.models import EndUser
from platform_core.catalog.selectors import enduser_get_for_tenant
from platform_core.common.errors import NotFound
from platform_core.common.scoping import TenantScopeError, tenant_scope
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db


def test_objects_fails_closed_without_a_tenant(tenant):
    EndUserFactory(tenant=tenant)
    with pytest.raises(TenantScopeError):
        EndUser.objects.count()
    with tenant_scope(tenant):
        assert EndUser.objects.count() == 1


def test_get_for_tenant_gives_one_answer_for_missing_and_foreign_ids(tenant, other_tenant):
    EndUserFactory(tenant=other_tenant, external_id="theirs")
    with pytest.raises(NotFound) as foreign:
        enduser_get_for_tenant(tenant=tenant, external_id="theirs")
    with pytest.raises(NotFound) as missing:
        enduser_get_for_tenant(tenant=tenant, external_id="nobody")
    assert foreign.value.status_code == missing.value.status_code == 404
    assert foreign.value.code == missing.value.code
    assert foreign.value.message.replace("theirs", "X") == missing.value.message.replace("nobody", "X")
