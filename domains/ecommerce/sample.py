"""Synthetic shop: categories with Zipf popularity, a view → cart → purchase funnel."""

from __future__ import annotations

from datetime import timedelta

from domains.base import SampleData
from domains.synth import ANCHOR, EventSink, Synth, iso

# category → (brands, median price)
CATEGORIES: dict[str, tuple[tuple[str, ...], float]] = {
    "electronics": (("Voltra", "Nexon", "Sonique", "Pixelle"), 180.0),
    "books": (("Penfold", "Inkwell House", "Northbound"), 16.0),
    "fashion": (("Maren", "Coastline", "Urbanite", "Fjell"), 45.0),
    "home": (("Hearth", "Lumo", "Nordhus"), 60.0),
    "grocery": (("FreshFarm", "Daily Basket"), 6.0),
    "beauty": (("Glowé", "Purely"), 22.0),
    "sports": (("Stride", "Peakform", "Aqualine"), 55.0),
    "toys": (("Blocko", "Tinker & Co"), 25.0),
    "pet": (("Pawsome", "Happy Tails"), 18.0),
    "garden": (("Greenthumb", "Terra"), 35.0),
}
NOUNS = {
    "electronics": ("headphones", "speaker", "charger", "monitor", "keyboard", "camera"),
    "books": ("novel", "cookbook", "atlas", "biography", "guide"),
    "fashion": ("jacket", "sneakers", "scarf", "jeans", "shirt"),
    "home": ("lamp", "rug", "kettle", "pan set", "cushion"),
    "grocery": ("coffee beans", "olive oil", "pasta", "tea", "granola"),
    "beauty": ("face cream", "shampoo", "serum", "lip balm"),
    "sports": ("yoga mat", "running shorts", "water bottle", "dumbbells"),
    "toys": ("puzzle", "building set", "plush bear", "board game"),
    "pet": ("dog food", "cat litter", "chew toy", "leash"),
    "garden": ("seed kit", "hose", "planter", "pruning shears"),
}
COUNTRIES = ("DE", "FR", "NL", "SE", "GB", "ES", "IT", "PL")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")


def sample_data(seed: int, n_users: int) -> SampleData:
    s = Synth(seed, "ecommerce")
    names = list(CATEGORIES)
    n_items = max(60, n_users)
    catalog = s.catalog(n_items, len(names))
    items = []
    prices: list[float] = []
    for i in range(n_items):
        category = names[int(catalog.cluster_of[i])]
        brands, median = CATEGORIES[category]
        brand = s.choice(brands)
        price = round(max(0.5, median * float(s.rng.lognormal(0, 0.45))), 2)
        prices.append(price)
        attrs = {
            "title": f"{brand} {s.choice(NOUNS[category])} {i:04d}",
            "category": category,
            "brand": brand,
            "price": price,
            "currency": "EUR",
            "in_stock": s.chance(0.92),
            "promoted": s.chance(0.08),
        }
        items.append({"item_id": f"p{i:05d}", "attributes": attrs})

    users = []
    sink = EventSink(f"ec{seed}")
    for u in range(n_users):
        uid = f"u{u:05d}"
        users.append(
            {
                "user_id": uid,
                "attributes": {
                    "country": s.choice(COUNTRIES),
                    "age_band": s.choice(AGE_BANDS),
                    "loyalty_tier": s.choice(("none", "silver", "gold", "platinum"), p=s.zipf(4, 1.2)),
                    "signed_up_at": iso(ANCHOR - timedelta(days=s.integers(60, 1500))),
                },
            }
        )
        plan = s.user_plan(catalog.n_clusters, activity=4.0)
        # A per-user price tolerance: some shoppers buy cheaper than they browse.
        thrift = s.uniform(0.6, 1.4)
        for sess in s.sessions(catalog, plan, days=60, mean_length=3.5):
            if s.chance(0.3):
                first = sess.items[0]
                category = names[int(catalog.cluster_of[first])]
                query = f"{items[first]['attributes']['brand']} {category}".lower()
                sink.add(
                    uid,
                    None,
                    "search",
                    sess.times[0] - timedelta(seconds=20),
                    context={"query": query, "results": s.integers(5, 80)},
                )
            cart: list[tuple[int, int]] = []
            for idx, ts in zip(sess.items, sess.times, strict=True):
                iid = items[idx]["item_id"]
                sink.add(
                    uid,
                    iid,
                    "view",
                    ts,
                    context={"source": s.choice(("search", "home", "category", "recommendation"))},
                )
                if s.chance(0.07):
                    sink.add(uid, iid, "favorite", ts + timedelta(seconds=10))
                cheap = prices[idx] <= thrift * CATEGORIES[names[int(catalog.cluster_of[idx])]][1]
                if items[idx]["attributes"]["in_stock"] and s.chance(0.3 if cheap else 0.1):
                    qty = 1 if not s.chance(0.15) else s.integers(2, 4)
                    cart.append((idx, qty))
                    sink.add(uid, iid, "add_to_cart", ts + timedelta(seconds=30), context={"quantity": qty})
            checkout = sess.times[-1] + timedelta(minutes=3)
            order = f"o{seed}-{len(sink.events)}"
            for idx, qty in cart:
                if not s.chance(0.6):
                    continue
                amount = round(prices[idx] * qty, 2)
                sink.add(
                    uid,
                    items[idx]["item_id"],
                    "purchase",
                    checkout,
                    value=amount,
                    context={"amount": amount, "quantity": qty, "currency": "EUR", "order_id": order},
                )
                if s.chance(0.05):
                    sink.add(
                        uid,
                        items[idx]["item_id"],
                        "return",
                        checkout + timedelta(days=s.integers(2, 14)),
                        context={"reason": s.choice(("damaged", "not_as_described", "size", "changed_mind"))},
                    )
    return SampleData(users=users, items=items, events=sink.sorted())
