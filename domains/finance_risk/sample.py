"""Synthetic bank customers: habitual spending, product interest, and account takeovers.

Each customer spends at merchants of their favourite categories (Zipf
popularity, a habitual successor: coffee then lunch…), logs in from their own
device(s) at home, and browses products matching their risk tolerance. About
6% suffer an account takeover: a login from a new device in another country,
then a burst of large online payments within minutes, then a fraud report and
chargebacks days later (the labels).
"""

from __future__ import annotations

from datetime import timedelta

from domains.base import SampleData
from domains.synth import ANCHOR, EventSink, Synth, iso

MERCHANT_CATEGORIES = {
    "grocery": ("5411", 35.0),
    "restaurants": ("5812", 28.0),
    "coffee": ("5814", 5.0),
    "fuel": ("5541", 55.0),
    "electronics": ("5732", 240.0),
    "travel": ("4511", 420.0),
    "clothing": ("5651", 70.0),
    "pharmacy": ("5912", 22.0),
    "streaming": ("4899", 12.0),
}
PRODUCTS = [
    ("Instant savings", "savings", 1),
    ("Fixed-term deposit", "savings", 1),
    ("Bond fund", "fund", 2),
    ("Balanced fund", "fund", 3),
    ("Global equity ETF", "etf", 4),
    ("Emerging markets ETF", "etf", 5),
    ("Classic credit card", "credit_card", 2),
    ("Travel credit card", "credit_card", 3),
    ("Personal loan", "loan", 3),
    ("Mortgage", "loan", 2),
    ("Home insurance", "insurance", 1),
    ("Travel insurance", "insurance", 1),
    ("Crypto basket", "crypto", 5),
    ("Pension plan", "pension", 2),
    ("Tech sector fund", "fund", 4),
    ("Gold savings", "commodity", 3),
]
HOME = ("DE", "FR", "NL", "ES", "IT")
FOREIGN = ("RU", "NG", "BR", "CN", "US", "VN")
DAYS = 60


def sample_data(seed: int, n_users: int) -> SampleData:
    s = Synth(seed, "finance_risk")
    cats = list(MERCHANT_CATEGORIES)
    n_merchants = max(40, n_users // 2)
    catalog = s.catalog(n_merchants, len(cats), zipf_a=1.2)
    items = [
        {
            "item_id": f"prod{i:03d}",
            "attributes": {"kind": "product", "name": name, "category": cat, "risk_level": lvl},
        }
        for i, (name, cat, lvl) in enumerate(PRODUCTS)
    ]
    merchants = []
    for m in range(n_merchants):
        cat = cats[int(catalog.cluster_of[m])]
        merchants.append(f"m{m:04d}")
        items.append(
            {
                "item_id": merchants[-1],
                "attributes": {
                    "kind": "merchant",
                    "name": f"{cat.title()} shop {m}",
                    "category": cat,
                    "risk_level": 3 if cat in ("travel", "electronics") else 1,
                    "mcc": MERCHANT_CATEGORIES[cat][0],
                    "country": s.choice(HOME),
                },
            }
        )
    users, sink = [], EventSink(f"fr{seed}")
    for u in range(n_users):
        uid = f"cust{u:05d}"
        tolerance = s.integers(1, 5)
        home = s.choice(HOME)
        users.append(
            {
                "user_id": uid,
                "attributes": {
                    "risk_tolerance": tolerance,
                    "account_opened_at": iso(ANCHOR - timedelta(days=s.integers(90, 4000))),
                    "income_band": s.choice(
                        ("low", "lower_middle", "middle", "upper_middle", "high"),
                        p=[0.15, 0.25, 0.3, 0.2, 0.1],
                    ),
                    "country": home,
                    "age_band": s.choice(("18-24", "25-34", "35-44", "45-54", "55-64", "65+")),
                },
            }
        )
        devices = [f"dev-{uid}-{k}" for k in range(s.integers(1, 2))]
        spend_scale = float(s.rng.lognormal(0, 0.4))
        plan = s.user_plan(catalog.n_clusters, activity=8.0, drift_share=0.15)
        for sess in s.sessions(catalog, plan, days=DAYS, mean_length=2.5, gap_seconds=1800):
            sink.add(
                uid,
                None,
                "login",
                sess.start - timedelta(minutes=1),
                context={"device_id": s.choice(devices), "country": home, "success": True},
            )
            for idx, ts in zip(sess.items, sess.times, strict=True):
                median = MERCHANT_CATEGORIES[cats[int(catalog.cluster_of[idx])]][1]
                amount = round(median * spend_scale * float(s.rng.lognormal(0, 0.35)), 2)
                sink.add(
                    uid,
                    merchants[idx],
                    "transaction",
                    ts,
                    value=amount,
                    context={
                        "amount": amount,
                        "currency": "EUR",
                        "channel": s.choice(("card_present", "online", "mobile"), p=[0.6, 0.25, 0.15]),
                    },
                )
            if s.chance(0.12):
                suitable = [i for i, p in enumerate(PRODUCTS) if p[2] <= tolerance]
                pick = s.choice(suitable if s.chance(0.85) else list(range(len(PRODUCTS))))
                sink.add(uid, f"prod{pick:03d}", "view", sess.times[-1] + timedelta(minutes=2))
                if PRODUCTS[pick][2] <= tolerance and s.chance(0.25):
                    sink.add(
                        uid,
                        f"prod{pick:03d}",
                        "apply",
                        sess.times[-1] + timedelta(minutes=6),
                        context={"approved": s.chance(0.8)},
                    )
            if s.chance(0.2):
                amount = round(float(s.rng.lognormal(4.5, 0.8)), 2)
                sink.add(
                    uid,
                    None,
                    "transfer",
                    sess.times[-1] + timedelta(minutes=4),
                    value=amount,
                    context={
                        "amount": amount,
                        "currency": "EUR",
                        "counterparty": f"iban-{s.integers(1000, 9999)}",
                        "channel": "mobile",
                    },
                )
        if s.chance(0.06):
            _takeover(s, sink, uid, merchants, catalog, cats, spend_scale)
    return SampleData(users=users, items=items, events=sink.sorted())


def _takeover(
    s: Synth, sink: EventSink, uid: str, merchants: list[str], catalog, cats: list[str], scale: float
) -> None:
    at = ANCHOR - timedelta(days=s.uniform(2, DAYS / 2), hours=s.uniform(0, 12))
    sink.add(
        uid,
        None,
        "login",
        at,
        context={"device_id": f"dev-x{s.integers(100, 999)}", "country": s.choice(FOREIGN), "success": True},
    )
    pricey = [i for i, c in enumerate(catalog.cluster_of) if cats[int(c)] in ("electronics", "travel")]
    refs = []
    for k in range(s.integers(6, 10)):
        idx = s.choice(pricey)
        amount = round(
            MERCHANT_CATEGORIES[cats[int(catalog.cluster_of[idx])]][1] * scale * s.uniform(2.0, 5.0), 2
        )
        ts = at + timedelta(seconds=40 + 50 * k)
        sink.add(
            uid,
            merchants[idx],
            "transaction",
            ts,
            value=amount,
            context={"amount": amount, "currency": "EUR", "channel": "online"},
        )
        refs.append((sink.events[-1]["event_id"], amount))
    sink.add(
        uid,
        None,
        "fraud_report",
        at + timedelta(days=1),
        context={"reference": refs[0][0], "confirmed": True},
    )
    for ref, amount in refs[:3]:
        sink.add(
            uid,
            None,
            "chargeback",
            at + timedelta(days=s.integers(3, 9)),
            context={"reference": ref, "amount": amount},
        )
