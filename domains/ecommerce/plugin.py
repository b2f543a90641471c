"""E-commerce: products in categories and brands, a shopping funnel, purchases and returns."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
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
    SampleData,
    UserRecord,
    remove,
)

CURRENCIES = ("EUR", "USD", "GBP", "CNY", "JPY", "CHF", "SEK", "PLN")

RULE_OUT_OF_STOCK = "ecommerce.out_of_stock"
RULE_ALREADY_PURCHASED = "ecommerce.already_purchased"
RULE_PRICE_BAND = "ecommerce.price_band"
RULE_PROMOTION = "ecommerce.promotion"


def _csv_set(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


class EcommercePlugin(DomainPlugin):
    id = "ecommerce"
    rerank_reads_clock = False  # its rules read the history and attributes, never the clock
    label = "E-commerce"
    description = "Online shop: products, a view → cart → purchase funnel, returns."

    item_schema = (
        Field("title", "string", max_length=300, help="Product title."),
        Field("category", "string", required=True, max_length=100, help="Category name or id."),
        Field("brand", "string", max_length=100),
        Field("price", "float", min=0, max=1_000_000, help="Current price in the shop's currency."),
        Field("currency", "choice", choices=CURRENCIES),
        Field("in_stock", "bool", help="False: never recommended (missing means in stock)."),
        Field("promoted", "bool", help="Part of a running promotion."),
        Field("tags", "list", max_length=30),
    )
    user_schema = (
        Field("country", "string", max_length=2, help="ISO 3166-1 alpha-2."),
        Field("age_band", "choice", choices=("18-24", "25-34", "35-44", "45-54", "55-64", "65+")),
        Field("loyalty_tier", "choice", choices=("none", "silver", "gold", "platinum")),
        Field("signed_up_at", "datetime"),
    )
    event_types = (
        EventType(
            "view",
            1.0,
            (
                Field(
                    "source", "choice", choices=("search", "home", "category", "recommendation", "external")
                ),
            ),
        ),
        EventType(
            "search",
            0.5,
            (Field("query", "string", required=True, max_length=200), Field("results", "int", min=0)),
            requires_item=False,
            help="A search query; item_id is the clicked result if any.",
        ),
        EventType("add_to_cart", 3.0, (Field("quantity", "int", min=1, max=1000),)),
        EventType("favorite", 2.0),
        EventType(
            "purchase",
            5.0,
            (
                Field(
                    "amount",
                    "float",
                    min=0,
                    max=10_000_000,
                    help="Total paid (omitted by sources without prices).",
                ),
                Field("quantity", "int", min=1, max=1000, help="Units bought (1 if omitted)."),
                Field("currency", "choice", choices=CURRENCIES),
                Field("order_id", "string", max_length=64),
            ),
        ),
        EventType(
            "return",
            0.0,
            (
                Field(
                    "reason",
                    "choice",
                    choices=("damaged", "not_as_described", "size", "changed_mind", "other"),
                ),
            ),
            is_label=True,
            help="A returned purchase: an outcome, not an interaction to learn from.",
        ),
    )
    config = (
        ConfigParam("promotion_boost", "float", 0.1, min=0, max=2, label="Promotion boost"),
        ConfigParam(
            "price_band_boost",
            "float",
            0.15,
            min=0,
            max=2,
            label="Price-band boost",
            help="Added when the price is inside the user's usual band, subtracted when far outside.",
        ),
        ConfigParam(
            "price_band_width",
            "float",
            0.5,
            min=0.05,
            max=5,
            help="Half-width of the band relative to the user's median price (0.5 = ±50%).",
        ),
        ConfigParam(
            "repeat_categories",
            "string",
            "grocery,beauty,pet",
            help="Comma-separated categories bought again and again (purchased items stay recommendable).",
        ),
        ConfigParam(
            "min_price_observations",
            "int",
            3,
            min=1,
            max=100,
            help="Priced interactions needed before the price-band rule applies.",
        ),
    )

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _prices(history: Sequence[EventRecord], items: Mapping[str, Mapping[str, Any]]) -> list[float]:
        """Unit prices the user engaged with: purchase amounts, else item prices."""
        out: list[float] = []
        for e in history:
            if e.type == "purchase" and e.context.get("amount") is not None:
                out.append(float(e.context["amount"]) / max(1, int(e.context.get("quantity") or 1)))
            elif e.type in ("view", "add_to_cart", "favorite") and e.item_id in items:
                price = items[e.item_id].get("price")
                if price is not None:
                    out.append(float(price))
        return out

    # ------------------------------------------------------------------ hooks
    def rerank(
        self, candidates: list[Candidate], context: RerankContext, config: ConfigValues
    ) -> RerankResult:
        repeat = _csv_set(config["repeat_categories"])
        purchased = {e.item_id for e in context.history if e.type == "purchase" and e.item_id}
        returned = {e.item_id for e in context.history if e.type == "return" and e.item_id}
        purchased -= returned  # a returned item may be offered again
        prices = self._prices(context.history, context.item_attributes)
        median = statistics.median(prices) if len(prices) >= config["min_price_observations"] else None
        width = config["price_band_width"]
        kept: list[Candidate] = []
        removed: list[Candidate] = []
        for c in candidates:
            attrs = c.attributes
            if attrs.get("in_stock") is False:
                removed.append(remove(c, RULE_OUT_OF_STOCK, "not in stock"))
                continue
            category = str(attrs.get("category", "")).lower()
            if c.item_id in purchased and category not in repeat:
                removed.append(
                    remove(
                        c, RULE_ALREADY_PURCHASED, f"already bought; {category!r} is not a repeat category"
                    )
                )
                continue
            price = attrs.get("price")
            if median is not None and price is not None and median > 0:
                ratio = abs(float(price) - median) / median
                if ratio <= width:
                    c.adjust(
                        RULE_PRICE_BAND,
                        config["price_band_boost"],
                        f"price {price} within ±{width:.0%} of usual {median:.2f}",
                    )
                elif ratio > 2 * width:
                    c.adjust(
                        RULE_PRICE_BAND,
                        -config["price_band_boost"],
                        f"price {price} far from usual {median:.2f}",
                    )
            if attrs.get("promoted"):
                c.adjust(RULE_PROMOTION, config["promotion_boost"], "in a running promotion")
            kept.append(c)
        kept.sort(key=lambda c: -c.score)
        return RerankResult(candidates=kept, removed=removed)

    def profile_features(
        self,
        events: Sequence[EventRecord],
        user: UserRecord,
        config: ConfigValues,
        item_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        # One pass with float sums: this hook runs once per user in every profile build,
        # so it avoids statistics.mean (exact Fractions) and per-user Counter/heap objects.
        items = item_attributes or {}
        weights = _event_weights(type(self))
        counts: dict[str, int] = {}
        purchase_times: list[datetime] = []
        monetary = 0.0
        bought: list[float] = []
        viewed_sum, n_viewed = 0.0, 0
        affinity: dict[str, float] = {}
        for e in events:
            etype = e.type
            counts[etype] = counts.get(etype, 0) + 1
            attrs = items.get(e.item_id or "")
            if etype == "purchase":
                purchase_times.append(e.timestamp)
                context = e.context
                amount = context.get("amount")
                monetary += float(amount or 0)
                if amount is not None:
                    bought.append(float(amount) / max(1, int(context.get("quantity") or 1)))
            elif etype == "view" and attrs is not None and attrs.get("price") is not None:
                viewed_sum += float(attrs["price"])
                n_viewed += 1
            category = attrs.get("category") if attrs is not None else None
            if category is not None:
                key = str(category)
                affinity[key] = affinity.get(key, 0.0) + weights.get(etype, 0.0)
        n_purchases = len(purchase_times)
        views = counts.get("view", 0)
        out: dict[str, Any] = {
            "event_counts": counts,
            "frequency": n_purchases,
            "monetary": round(monetary, 2),
            "recency_days": None,
            "purchase_cycle_days": None,
            "conversion_rate": round(n_purchases / views, 4) if views else None,
            "return_rate": round(counts.get("return", 0) / n_purchases, 4) if n_purchases else None,
        }
        if n_purchases:
            last = events[-1].timestamp
            out["recency_days"] = round((last - purchase_times[-1]).total_seconds() / 86400, 2)
            out["avg_order_value"] = round(out["monetary"] / n_purchases, 2)
        out["purchase_cycle_days"] = _median_gap_days(purchase_times)
        total = sum(affinity.values())
        if total:
            # sorted() is stable like Counter.most_common: ties keep first-seen order.
            top = sorted(affinity.items(), key=_second, reverse=True)[:10]
            out["category_affinity"] = {k: round(v / total, 4) for k, v in top}
        out["price_sensitivity"] = _price_sensitivity(viewed_sum, n_viewed, bought)
        return out

    def sample_data(self, seed: int, n_users: int) -> SampleData:
        from domains.ecommerce.sample import sample_data

        return sample_data(seed, n_users)

    @classmethod
    def dataset_adapters(cls) -> dict[str, Callable[..., SampleData]]:
        from domains.ecommerce.adapters import taobao_userbehavior

        return {"taobao-userbehavior": taobao_userbehavior}


def _second(pair: tuple[str, float]) -> float:
    return pair[1]


_WEIGHTS: dict[type, dict[str, float]] = {}


def _event_weights(cls: type[DomainPlugin]) -> dict[str, float]:
    """``event_weights()`` once per class: the hook runs per user and the weights are constants."""
    weights = _WEIGHTS.get(cls)
    if weights is None:
        weights = _WEIGHTS[cls] = cls.event_weights()
    return weights


def _median_gap_days(times: list[datetime]) -> float | None:
    if len(times) < 2:
        return None
    gaps = sorted((b - a).total_seconds() / 86400 for a, b in zip(times, times[1:], strict=False))
    mid = len(gaps) // 2
    median = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2  # as statistics.median
    return round(median, 2)


def _price_sensitivity(viewed_sum: float, n_viewed: int, bought: list[float]) -> float | None:
    """1 − (mean price bought / mean price viewed), clipped to [-1, 1].

    Positive: the user buys cheaper than what they browse (price-sensitive).
    Means are float sums over counts (not statistics.mean): equal to 4 decimals.
    """
    if not n_viewed or not bought or viewed_sum == 0:
        return None
    mean_viewed = viewed_sum / n_viewed
    mean_bought = math.fsum(bought) / len(bought)
    return round(max(-1.0, min(1.0, 1 - mean_bought / mean_viewed)), 4)
