"""The filter language: parsing, type checks against the schema, evaluation."""

from __future__ import annotations

import pytest

from domains.base import Field
from platform_core.common.errors import ValidationFailed
from platform_core.serving.filters import filter_parse

SCHEMA = (
    Field("category", "choice", choices=("shoes", "bags", "hats")),
    Field("price", "float", min=0),
    Field("stock", "int"),
    Field("in_stock", "bool"),
    Field("brand", "string"),
    Field("tags", "list"),
    Field("released", "datetime"),
    Field("cost", "float", sensitive=True),
)

SHOE = {
    "category": "shoes",
    "price": 40.0,
    "stock": 3,
    "in_stock": True,
    "brand": "acme",
    "tags": ["sale", "new"],
    "released": "2026-01-10T00:00:00+00:00",
}
BAG = {"category": "bags", "price": 80, "stock": 0, "in_stock": False, "brand": "zed", "tags": []}


def parse(expr: str, **params: object):
    return filter_parse(expression=expr, schema=SCHEMA, params=params, domain="ecommerce")


@pytest.mark.parametrize(
    ("expr", "shoe", "bag"),
    [
        ('category in ["shoes", "hats"]', True, False),
        ('category not in ["shoes"]', False, True),
        ("price < 50", True, False),
        ("price >= 80", False, True),
        ("in_stock = true", True, False),
        ("in_stock != true", False, True),
        ('brand == "acme" or stock = 0', True, True),
        ('brand = "acme" and price > 50', False, False),
        ('not (brand = "acme")', False, True),
        ('tags contains "sale"', True, False),
        ('released > "2026-01-01T00:00:00Z"', True, False),  # bag has no date: never matches
        ('NOT category = "bags" AND (price < 10 OR in_stock = TRUE)', True, False),
    ],
)
def test_expressions_evaluate_as_written(expr: str, shoe: bool, bag: bool) -> None:
    f = parse(expr)
    assert f.matches(SHOE) is shoe
    assert f.matches(BAG) is bag


def test_parameters_are_typed_against_the_attribute() -> None:
    f = parse("price < $max and category in [$c]", max=50, c="shoes")
    assert f.matches(SHOE) and not f.matches(BAG)
    assert f.attributes == {"price", "category"}
    with pytest.raises(ValidationFailed, match=r"\$max.*must be a number"):
        parse("price < $max", max="fifty")
    with pytest.raises(ValidationFailed, match=r"\$missing at position 8 has no value"):
        parse("price < $missing")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty"),
        ("colour = 'red'", "'colour' is not declared in the item schema of domain 'ecommerce'"),
        ("cost < 3", "'cost' is sensitive"),
        ("price < 'cheap'", "'price' is float, so the value must be a number"),
        ("in_stock = 1", "must be true or false"),
        ("category = 'boots'", "'boots' is not one of"),
        ("brand < 'b'", "operator '<' needs a number or datetime attribute"),
        ("price <", "expected a value at position 7"),
        ("price < 5 price", "unexpected 'price' at position 10"),
        ("(price < 5", "expected ')'"),
        ("price ~ 5", "unexpected character '~' at position 6"),
        ("tags = 'x'", "'tags' is a list"),
        ("brand contains 'x'", "'contains' needs a list attribute"),
        ("released > 'yesterday'", "ISO 8601"),
        ("category in 'shoes'", "expected '[' after 'in'"),
    ],
)
def test_bad_expressions_name_the_problem(expr: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse(expr)
    assert info.value.code == "invalid_filter"
    assert message in info.value.message
    assert list(info.value.fields) == ["filter"]


def test_stored_values_of_the_wrong_type_never_match() -> None:
    assert not parse("price < 50").matches({"price": "cheap"})
    assert not parse("price < 50").matches({"price": True})
