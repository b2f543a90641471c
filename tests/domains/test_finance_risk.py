from __future__ import annotations

from datetime import timedelta

import pytest

from domains.base import UserRecord
from domains.finance_risk.plugin import FinanceRiskPlugin
from tests.domains.conftest import NOW, cand, ctx, event

P = FinanceRiskPlugin()
CFG = P.default_config()
USER = UserRecord("u1", {"risk_tolerance": 3})


def pay(minutes_ago: float, amount: float) -> object:
    return event(
        "u1",
        "m1",
        "transaction",
        NOW - timedelta(minutes=minutes_ago),
        amount=amount,
        currency="EUR",
        channel="online",
    )


def test_products_above_the_risk_tolerance_are_not_suitable() -> None:
    items = [
        cand("etf", kind="product", category="etf", risk_level=4),
        cand("fund", kind="product", category="fund", risk_level=3),
        cand("shop", kind="merchant", category="grocery", risk_level=1),
        cand("odd", kind="product", category="x"),
    ]
    result = P.rerank(items, ctx(attrs={"risk_tolerance": 3}), CFG)
    assert [c.item_id for c in result.candidates] == ["fund"]
    assert {c.item_id: c.adjustments[-1].rule for c in result.removed} == {
        "etf": "finance_risk.suitability",
        "shop": "finance_risk.not_a_product",
        "odd": "finance_risk.suitability",
    }


def test_unknown_tolerance_is_the_most_cautious() -> None:
    result = P.rerank(
        [
            cand("s", kind="product", category="savings", risk_level=1),
            cand("f", kind="product", category="fund", risk_level=2),
        ],
        ctx(attrs={}),
        CFG,
    )
    assert [c.item_id for c in result.candidates] == ["s"]


def test_a_velocity_burst_raises_the_score_and_names_the_reason() -> None:
    calm = [pay(60 * 24 * d, 40.0) for d in range(10, 0, -1)]
    assert P.risk_score(calm, USER, CFG).score == 0.0
    # 6 payments in the last 5 minutes > 5 allowed in 10 minutes → velocity (0.45).
    burst = calm + [pay(5 - k, 40.0) for k in range(6)]
    result = P.risk_score(burst, USER, CFG)
    assert result.score == pytest.approx(0.45)
    assert [r.code for r in result.reasons] == ["velocity"]


def test_amount_zscore_new_device_and_country_combine() -> None:
    # History 10, 20, 30, 40, 50: mean 30, population sd 14.14; 200 → z = 12.0 > 3.
    history = [pay(1000 - 100 * k, float(a)) for k, a in enumerate((10, 20, 30, 40, 50))]
    history = [
        event("u1", None, "login", NOW - timedelta(days=3), device_id="d1", country="DE"),
        *history,
        event("u1", None, "login", NOW - timedelta(minutes=1), device_id="d9", country="NG"),
        pay(0, 200.0),
    ]
    result = P.risk_score(history, USER, CFG)
    assert [r.code for r in result.reasons] == ["amount_zscore", "new_device", "new_country"]
    # 1 − (1 − 0.35)(1 − 0.2)(1 − 0.3) = 1 − 0.65·0.8·0.7 = 0.636
    assert result.score == pytest.approx(0.636)


def test_profile_spending_velocity_and_flags() -> None:
    history = [pay(30, 10.0), pay(3, 20.0), pay(2, 30.0), event("u1", None, "chargeback", NOW, amount=30.0)]
    f = P.profile_features(history, USER, CFG, item_attributes={"m1": {"category": "grocery"}})
    assert (f["spend_total"], f["spend_mean"], f["max_payments_in_window"], f["chargebacks"]) == (
        60.0,
        20.0,
        2,
        1,
    )
    assert f["spend_by_category"] == {"grocery": 60.0}
    assert f["risk_flags"] == ["prior_labels"]


def test_income_is_sensitive_and_labels_weigh_nothing() -> None:
    assert "income_band" in P.sensitive_fields("user")
    weights = P.event_weights()
    assert weights["fraud_report"] == weights["chargeback"] == 0.0
    assert P.validate_event({"type": "transfer", "context": {"amount": -5, "currency": "EUR"}}) == {
        "context.amount": ["must be ≥ 0"],
        "context.counterparty": ["is required"],
    }
