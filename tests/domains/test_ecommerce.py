from __future__ import annotations

from datetime import timedelta

import pytest

from domains.ecommerce.plugin import EcommercePlugin
from tests.domains.conftest import NOW, cand, ctx, event

P = EcommercePlugin()
CFG = P.default_config()


def test_an_out_of_stock_item_is_dropped() -> None:
    result = P.rerank(
        [cand("a", 0.9, category="books", in_stock=False), cand("b", 0.5, category="books")], ctx(), CFG
    )
    assert [c.item_id for c in result.candidates] == ["b"]
    assert [a.rule for a in result.removed[0].adjustments] == ["ecommerce.out_of_stock"]


def test_a_purchased_item_comes_back_only_in_a_repeat_category() -> None:
    history = [
        event("u1", "tv", "purchase", amount=300.0, quantity=1),
        event("u1", "coffee", "purchase", amount=6.0, quantity=1),
    ]
    result = P.rerank(
        [cand("tv", category="electronics"), cand("coffee", category="grocery")], ctx(history=history), CFG
    )
    assert [c.item_id for c in result.candidates] == ["coffee"]
    assert result.removed[0].adjustments[0].rule == "ecommerce.already_purchased"


def test_price_band_affinity_and_promotion() -> None:
    # Purchases at 20, 22, 18 → median 20; width 0.5 → band 10..30; far beyond 40.
    history = [
        event("u1", f"x{i}", "purchase", amount=p, quantity=1) for i, p in enumerate((20.0, 22.0, 18.0))
    ]
    result = P.rerank(
        [
            cand("in", 1.0, category="books", price=25.0),
            cand("far", 1.0, category="books", price=45.0),
            cand("mid", 1.0, category="books", price=35.0),
            cand("promo", 1.0, category="books", promoted=True),
        ],
        ctx(history=history),
        CFG,
    )
    scores = {c.item_id: c.score for c in result.candidates}
    assert scores == pytest.approx({"in": 1.15, "far": 0.85, "mid": 1.0, "promo": 1.1})
    assert [c.item_id for c in result.candidates][0] == "in"


def test_profile_rfm_and_category_affinity() -> None:
    history = [
        event("u1", "a", "view", NOW - timedelta(days=30)),
        event("u1", "a", "purchase", NOW - timedelta(days=30), amount=10.0, quantity=1),
        event("u1", "b", "purchase", NOW - timedelta(days=20), amount=30.0, quantity=2),
        event("u1", "c", "view", NOW),
    ]
    items = {
        "a": {"category": "books", "price": 10.0},
        "b": {"category": "home", "price": 15.0},
        "c": {"category": "books", "price": 20.0},
    }
    f = P.profile_features(history, ctx().user, CFG, item_attributes=items)
    assert (f["frequency"], f["monetary"], f["recency_days"], f["purchase_cycle_days"]) == (
        2,
        40.0,
        20.0,
        10.0,
    )
    # weights: books view 1 + purchase 5 + view 1 = 7; home purchase 5 → 7/12, 5/12
    assert f["category_affinity"] == {"books": round(7 / 12, 4), "home": round(5 / 12, 4)}
    # viewed mean (10 + 20)/2 = 15; bought unit prices 10 and 15 → 12.5; 1 − 12.5/15 = 0.1667
    assert f["price_sensitivity"] == pytest.approx(0.1667)


def test_profile_returns_even_median_ties_and_no_prices() -> None:
    """The one-pass hook: returns, a median of an even count, equal shares in first-seen order."""
    history = [
        event("u1", "g", "view", NOW - timedelta(days=9)),
        event("u1", "a", "view", NOW - timedelta(days=9)),
        event("u1", "a", "purchase", NOW - timedelta(days=9), amount=8.0, quantity=1),
        event("u1", "g", "purchase", NOW - timedelta(days=7), amount=8.0, quantity=1),
        event("u1", "a", "purchase", NOW - timedelta(days=3), quantity=1),  # no amount (Taobao-like)
        event("u1", "a", "return", NOW - timedelta(days=2)),
    ]
    items = {"a": {"category": "books"}, "g": {"category": "games"}}  # no prices
    f = P.profile_features(history, ctx().user, CFG, item_attributes=items)
    assert f["event_counts"] == {"view": 2, "purchase": 3, "return": 1}
    assert (f["frequency"], f["monetary"], f["avg_order_value"]) == (3, 16.0, round(16 / 3, 2))
    # Gaps 2 and 4 days: the median of an even count is their mean.
    assert f["purchase_cycle_days"] == 3.0
    # Last event (the return) is 1 day after the last purchase.
    assert f["recency_days"] == 1.0
    assert (f["conversion_rate"], f["return_rate"]) == (1.5, round(1 / 3, 4))
    # books: view 1 + 2 purchases 10 + return 0 = 11; games: view 1 + purchase 5 = 6
    assert list(f["category_affinity"].items()) == [("books", round(11 / 17, 4)), ("games", round(6 / 17, 4))]
    assert f["price_sensitivity"] is None  # nothing viewed has a price
    tie = P.profile_features(history[:2], ctx().user, CFG, item_attributes=items)
    assert list(tie["category_affinity"]) == ["games", "books"]  # equal shares: first seen first


def test_bad_payloads_name_the_field_and_rule() -> None:
    assert P.validate_event({"type": "teleport", "item_id": "a"})["type"][0].startswith("unknown event type")
    assert P.validate_event({"type": "search", "context": {}}) == {"context.query": ["is required"]}
    assert P.validate_event({"type": "purchase", "item_id": "a", "context": {"quantity": 0}}) == {
        "context.quantity": ["must be ≥ 1"]
    }
    assert P.validate_item({"price": "cheap"}) == {
        "attributes.price": ["must be a finite number"],
        "attributes.category": ["is required"],
    }
