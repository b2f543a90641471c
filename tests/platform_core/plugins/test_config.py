"""Per-tenant plugin config: validated JSON with defaults, a change log, isolation."""

from __future__ import annotations

import pytest

from platform_core.common.errors import ValidationFailed
from platform_core.plugins.models import TenantConfig, TenantConfigChange
from platform_core.plugins.selectors import tenant_config_changes, tenant_config_get
from platform_core.plugins.services import tenant_config_update
from tests.factories import StaffUserFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_defaults_until_a_row_exists(tenant) -> None:  # type: ignore[no-untyped-def]
    config = tenant_config_get(tenant=tenant)
    assert config["promotion_boost"] == 0.1 and config.repeat_categories == "grocery,beauty,pet"
    assert TenantConfig.objects.for_tenant(tenant).count() == 0


def test_update_fills_defaults_and_logs_who_old_and_new(tenant) -> None:  # type: ignore[no-untyped-def]
    admin = StaffUserFactory(username="ops")
    values = tenant_config_update(tenant=tenant, values={"promotion_boost": 0.4}, actor=admin, source="admin")
    assert values["promotion_boost"] == 0.4 and values["price_band_width"] == 0.5
    row = TenantConfig.objects.for_tenant(tenant).get()
    assert row.values == values.as_dict()
    assert row.updated_by == admin
    tenant_config_update(tenant=tenant, values={"price_band_width": 1}, actor=admin)  # int → float
    assert tenant_config_get(tenant=tenant)["price_band_width"] == 1.0
    changes = tenant_config_changes(tenant=tenant)
    assert [c.diff for c in changes] == [{"price_band_width": (0.5, 1.0)}, {"promotion_boost": (0.1, 0.4)}]
    assert [c.changed_by_name for c in changes] == ["ops", "ops"] and changes[1].source == "admin"


def test_no_change_no_log(tenant) -> None:  # type: ignore[no-untyped-def]
    tenant_config_update(tenant=tenant, values={"promotion_boost": 0.4})
    tenant_config_update(tenant=tenant, values={"promotion_boost": 0.4})
    assert TenantConfigChange.objects.for_tenant(tenant).count() == 1


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"promotion_boost": 5}, {"promotion_boost": ["must be ≤ 2"]}),
        ({"promotion_boost": "high"}, {"promotion_boost": ["must be a finite number"]}),
        ({"min_price_observations": 2.5}, {"min_price_observations": ["must be an integer"]}),
        ({"nonsense": 1}, {"nonsense": ["is not a parameter of this domain"]}),
    ],
)
def test_bad_values_are_refused_and_nothing_is_written(tenant, values, fields) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as err:
        tenant_config_update(tenant=tenant, values=values)
    assert err.value.fields == fields and err.value.code == "invalid_config"
    assert TenantConfig.objects.for_tenant(tenant).count() == 0
    assert TenantConfigChange.objects.for_tenant(tenant).count() == 0


def test_a_stale_stored_value_falls_back_to_its_default(tenant) -> None:  # type: ignore[no-untyped-def]
    TenantConfig.objects.for_tenant(tenant).create(
        tenant=tenant, values={"promotion_boost": 99, "removed_param": 1, "price_band_width": 2.0}
    )
    config = tenant_config_get(tenant=tenant)
    assert (
        config["promotion_boost"] == 0.1
        and config["price_band_width"] == 2.0
        and "removed_param" not in config
    )


def test_tenants_are_isolated(tenant, other_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant_config_update(tenant=tenant, values={"promotion_boost": 0.9})
    assert tenant_config_get(tenant=other_tenant)["promotion_boost"] == 0.1
    assert tenant_config_changes(tenant=other_tenant) == []


def test_each_domain_has_its_own_spec() -> None:
    social = TenantFactory(slug="soc", domain="social")
    tenant_config_update(tenant=social, values={"max_per_author": 3})
    assert tenant_config_get(tenant=social)["max_per_author"] == 3
    with pytest.raises(ValidationFailed):
        tenant_config_update(tenant=social, values={"promotion_boost": 0.2})
