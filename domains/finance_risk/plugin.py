"""Finance and risk: products and merchants, logins and money movements, fraud labels."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from domains.base import (
    Candidate,
    ConfigParam,
    ConfigValues,
    DomainPlugin,
    EventRecord,
    EventType,
    Field,
    RerankContext,
    RerankResult,
    RiskReason,
    RiskResult,
    SampleData,
    UserRecord,
    remove,
)

RULE_SUITABILITY = "finance_risk.suitability"
RULE_HELD = "finance_risk.already_held"
RULE_MERCHANT = "finance_risk.not_a_product"

MONEY = ("transaction", "transfer")
CHANNELS = ("card_present", "online", "mobile", "atm", "branch")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "TWD", "JPY", "PLN", "SEK")
INCOME_BANDS = ("low", "lower_middle", "middle", "upper_middle", "high")


class FinanceRiskPlugin(DomainPlugin):
    id = "finance_risk"
    rerank_reads_clock = False  # its rules read the history and attributes, never the clock
    label = "Finance & risk"
    description = "Bank: product suitability, transaction behaviour and a rule-based risk score."

    item_schema = (
        Field("kind", "choice", required=True, choices=("product", "merchant")),
        Field("name", "string", max_length=200),
        Field(
            "category",
            "string",
            required=True,
            max_length=100,
            help="Product family (savings, credit_card, fund…) or merchant category.",
        ),
        Field("risk_level", "int", required=True, min=1, max=5, help="1 = lowest risk."),
        Field("country", "string", max_length=2),
        Field("mcc", "string", max_length=4, help="Merchant category code."),
    )
    user_schema = (
        Field("risk_tolerance", "int", min=1, max=5, help="1–5; unknown counts as 1 (most cautious)."),
        Field("account_opened_at", "datetime"),
        Field("income_band", "choice", choices=INCOME_BANDS, sensitive=True),
        Field("country", "string", max_length=2),
        Field("age_band", "choice", choices=("18-24", "25-34", "35-44", "45-54", "55-64", "65+")),
        Field("credit_limit", "float", min=0, max=100_000_000, sensitive=True),
    )
    event_types = (
        EventType(
            "login",
            0.0,
            (
                Field("device_id", "string", required=True, max_length=128),
                Field("country", "string", required=True, max_length=2),
                Field("success", "bool"),
            ),
            requires_item=False,
        ),
        EventType("view", 1.0, help="Looked at a product page."),
        EventType("apply", 4.0, (Field("approved", "bool"),), help="Applied for a product."),
        EventType(
            "transaction",
            1.0,
            (
                Field("amount", "float", required=True, min=0, max=100_000_000),
                Field("currency", "choice", required=True, choices=CURRENCIES),
                Field("channel", "choice", required=True, choices=CHANNELS),
                Field(
                    "merchant", "string", max_length=255, help="Merchant name when item_id is not a merchant."
                ),
                Field("country", "string", max_length=2),
            ),
            help="A card payment; item_id is the merchant.",
        ),
        EventType(
            "transfer",
            0.5,
            (
                Field("amount", "float", required=True, min=0, max=100_000_000),
                Field("currency", "choice", required=True, choices=CURRENCIES),
                Field("counterparty", "string", required=True, max_length=255),
                Field("channel", "choice", choices=CHANNELS),
            ),
            requires_item=False,
        ),
        EventType(
            "chargeback",
            0.0,
            (Field("amount", "float", min=0), Field("reference", "string", max_length=128)),
            is_label=True,
            requires_item=False,
        ),
        EventType(
            "late_payment",
            0.0,
            (Field("months_late", "int", required=True, min=1, max=12),),
            is_label=True,
            requires_item=False,
            help="A repayment made late (credit data).",
        ),
        EventType("payment_default", 0.0, is_label=True, requires_item=False, help="The customer defaulted."),
        EventType(
            "fraud_report",
            0.0,
            (Field("reference", "string", max_length=128), Field("confirmed", "bool")),
            is_label=True,
            requires_item=False,
        ),
    )
    config = (
        ConfigParam("velocity_window_minutes", "int", 10, min=1, max=1440),
        ConfigParam(
            "velocity_max_count",
            "int",
            5,
            min=1,
            max=1000,
            help="Money movements in the window above which velocity counts.",
        ),
        ConfigParam("velocity_weight", "float", 0.45, min=0, max=1),
        ConfigParam("zscore_threshold", "float", 3.0, min=0.5, max=20),
        ConfigParam("zscore_weight", "float", 0.35, min=0, max=1),
        ConfigParam("zscore_min_history", "int", 5, min=2, max=1000),
        ConfigParam("new_device_weight", "float", 0.2, min=0, max=1),
        ConfigParam("new_country_weight", "float", 0.3, min=0, max=1),
        ConfigParam("prior_label_weight", "float", 0.25, min=0, max=1),
        ConfigParam("recommend_held_products", "bool", False),
    )

    # ------------------------------------------------------------------ rerank
    def rerank(
        self, candidates: list[Candidate], context: RerankContext, config: ConfigValues
    ) -> RerankResult:
        tolerance = (context.user.attributes.get("risk_tolerance") if context.user else None) or 1
        held = {
            e.item_id
            for e in context.history
            if e.type == "apply" and e.item_id and e.context.get("approved") is not False
        }
        kept: list[Candidate] = []
        removed: list[Candidate] = []
        for c in candidates:
            attrs = c.attributes
            if attrs.get("kind") == "merchant":
                removed.append(remove(c, RULE_MERCHANT, "merchants are not recommended"))
                continue
            level = attrs.get("risk_level")
            # Suitability fails closed: a product without a risk level is not shown.
            if level is None or int(level) > int(tolerance):
                removed.append(remove(c, RULE_SUITABILITY, f"risk level {level} above tolerance {tolerance}"))
                continue
            if c.item_id in held and not config["recommend_held_products"]:
                removed.append(remove(c, RULE_HELD, "already held"))
                continue
            kept.append(c)
        kept.sort(key=lambda c: -c.score)
        return RerankResult(candidates=kept, removed=removed)

    # ------------------------------------------------------------------ risk
    def risk_score(self, events: Sequence[EventRecord], user: UserRecord, config: ConfigValues) -> RiskResult:
        """Rules over the latest activity; score = 1 − Π(1 − wᵢ) over the reasons that fire."""
        if not events:
            return RiskResult(score=0.0)
        reasons: list[RiskReason] = []
        now = events[-1].timestamp
        money = [e for e in events if e.type in MONEY and e.context.get("amount") is not None]
        window = timedelta(minutes=config["velocity_window_minutes"])
        recent = [e for e in money if now - e.timestamp <= window]
        if len(recent) > config["velocity_max_count"]:
            reasons.append(
                RiskReason(
                    "velocity",
                    config["velocity_weight"],
                    f"{len(recent)} payments in {config['velocity_window_minutes']} min"
                    f" (limit {config['velocity_max_count']})",
                )
            )
        if money:
            latest = money[-1]
            past = [float(e.context["amount"]) for e in money[:-1]]
            if len(past) >= config["zscore_min_history"]:
                mean, sd = statistics.mean(past), statistics.pstdev(past)
                z = (float(latest.context["amount"]) - mean) / max(sd, 1.0)
                if z > config["zscore_threshold"]:
                    reasons.append(
                        RiskReason(
                            "amount_zscore",
                            config["zscore_weight"],
                            f"amount {latest.context['amount']} is {z:.1f} sd above the usual {mean:.2f}",
                        )
                    )
        logins = [e for e in events if e.type == "login"]
        if len(logins) >= 2:
            last = logins[-1]
            devices = {e.context.get("device_id") for e in logins[:-1]}
            countries = {e.context.get("country") for e in logins[:-1]}
            if last.context.get("device_id") not in devices:
                reasons.append(
                    RiskReason("new_device", config["new_device_weight"], "latest login from a new device")
                )
            if last.context.get("country") not in countries:
                reasons.append(
                    RiskReason(
                        "new_country",
                        config["new_country_weight"],
                        f"latest login from {last.context.get('country')}, never seen before",
                    )
                )
        labels = sum(e.type in ("chargeback", "fraud_report", "payment_default") for e in events)
        if labels:
            reasons.append(
                RiskReason(
                    "prior_labels",
                    config["prior_label_weight"],
                    f"{labels} earlier chargeback, fraud or default labels",
                )
            )
        keep = 1.0
        for r in reasons:
            keep *= 1 - r.weight
        return RiskResult(score=round(1 - keep, 6), reasons=tuple(reasons))

    # ------------------------------------------------------------------ profile
    def profile_features(
        self,
        events: Sequence[EventRecord],
        user: UserRecord,
        config: ConfigValues,
        item_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        items = item_attributes or {}
        money = [e for e in events if e.type in MONEY and e.context.get("amount") is not None]
        amounts = [float(e.context["amount"]) for e in money]
        days = (
            max(1.0, (events[-1].timestamp - events[0].timestamp).total_seconds() / 86400) if events else 1.0
        )
        by_category: Counter[str] = Counter()
        for e in money:
            category = items.get(e.item_id or "", {}).get("category") or e.type
            by_category[str(category)] += float(e.context["amount"])
        window = timedelta(minutes=config["velocity_window_minutes"])
        max_window, j = 0, 0
        for i, e in enumerate(money):
            while e.timestamp - money[j].timestamp > window:
                j += 1
            max_window = max(max_window, i - j + 1)
        logins = [e for e in events if e.type == "login"]
        risk = self.risk_score(events, user, config)
        return {
            "spend_total": round(sum(amounts), 2),
            "spend_mean": round(_mean(amounts), 2) if amounts else None,
            "spend_std": round(_pstdev(amounts), 2) if len(amounts) > 1 else None,
            "spend_by_category": {k: round(v, 2) for k, v in by_category.most_common(8)},
            "channels": dict(Counter(str(e.context.get("channel")) for e in money)),
            "payments_per_day": round(len(money) / days, 3),
            "max_payments_in_window": max_window,
            "distinct_devices": len({e.context.get("device_id") for e in logins}),
            "distinct_countries": len({e.context.get("country") for e in logins}),
            "chargebacks": sum(e.type == "chargeback" for e in events),
            "fraud_reports": sum(e.type == "fraud_report" for e in events),
            "late_payments": sum(e.type == "late_payment" for e in events),
            "risk_flags": [r.code for r in risk.reasons],
            "risk_score": risk.score,
        }

    def sample_data(self, seed: int, n_users: int) -> SampleData:
        from domains.finance_risk.sample import sample_data

        return sample_data(seed, n_users)

    @classmethod
    def dataset_adapters(cls) -> dict[str, Callable[..., SampleData]]:
        from domains.finance_risk.adapters import uci_credit_default

        return {"uci-credit-default": uci_credit_default}


# Float arithmetic for the per-user profile features (statistics.mean/pstdev compute in exact
# Fractions, the costliest part of a profile build); equal to the 2 decimals stored.
def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _pstdev(values: Sequence[float]) -> float:
    mean = _mean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
