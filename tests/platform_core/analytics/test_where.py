"""The filter language compiled to SQL answers as the serving evaluator does, on both databases."""

from __future__ import annotations

import pytest

from domains.registry import plugin_get
from platform_core.analytics.sql import analytics_sql_rows, dialect
from platform_core.analytics.where import Params, where_compile
from platform_core.common.errors import ValidationFailed
from platform_core.common.scoping import TenantScopeError
from platform_core.serving.filters import filter_parse
from tests.factories import ItemFactory

ITEMS = {
    "full": {"category": "shoes", "price": 10, "in_stock": True, "tags": ["sale", "new"], "brand": "acme"},
    "wrong_types": {"category": 5, "price": "10", "in_stock": "true", "tags": "sale"},
    "empty": {},
    "nulls": {"category": None, "price": None, "in_stock": None, "tags": None},
    "float": {"category": "bags", "price": 10.5, "in_stock": False, "tags": [1, "Sale"], "brand": "o'neil"},
}
EXPRESSIONS = [
    'category = "shoes"',
    'category != "shoes"',
    "price < 10.5",
    "price >= 10",
    "price = 10",
    "price != 10",
    "in_stock = true",
    "in_stock = false",
    "not in_stock = true",
    'category in ["shoes", "bags"]',
    'category not in ["shoes"]',
    'tags contains "sale"',
    'not tags contains "sale"',
    'not (price > 5) or category = "bags"',
    'brand = "o\'neil" and price > 10',
    'brand = $b or (price <= $p and not category = "x")',
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_sql_matches_the_python_evaluator(tenant, expression):
    for name, attrs in ITEMS.items():
        ItemFactory(tenant=tenant, external_id=name, attributes=attrs)
    schema = plugin_get("ecommerce").item_schema
    params = {"b": "acme", "p": 10}
    bag = Params()
    condition = where_compile(
        expression=expression, item_schema=schema, params=params, bag=bag, sql=dialect(), domain="ecommerce"
    )
    rows = analytics_sql_rows(
        tenant=tenant,
        sql=f"SELECT i.external_id FROM {{item}} i WHERE i.tenant_id = %(tenant)s AND {condition}",
        params=bag.values,
    )
    python = filter_parse(expression=expression, schema=schema, params=params)
    assert sorted(r[0] for r in rows) == sorted(n for n, a in ITEMS.items() if python.matches(a))


def test_errors_name_the_callers_field():
    with pytest.raises(ValidationFailed) as exc:
        where_compile(
            expression="colour = 1",
            item_schema=plugin_get("ecommerce").item_schema,
            params={},
            bag=Params(),
            sql=dialect(),
            domain="ecommerce",
            field="steps[3].where",
        )
    assert list(exc.value.fields) == ["steps[3].where"]
    assert "colour" in exc.value.message


def test_the_sql_helper_refuses_a_query_without_a_tenant_test(tenant):
    with pytest.raises(TenantScopeError):
        analytics_sql_rows(tenant=tenant, sql="SELECT 1 FROM {event} e", params={})
    with pytest.raises(TenantScopeError):  # two tables, one tenant test
        analytics_sql_rows(
            tenant=tenant,
            sql="SELECT 1 FROM {event} e JOIN {item} i ON i.id = e.item_id WHERE e.tenant_id = %(tenant)s",
            params={},
        )
    with pytest.raises(TenantScopeError):
        analytics_sql_rows(
            tenant=tenant, sql="SELECT 1 FROM {event} e WHERE e.tenant_id = %(tenant)s", params={"tenant": 2}
        )
