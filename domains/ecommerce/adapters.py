"""Real data for e-commerce: Taobao UserBehavior (Alibaba Tianchi dataset 649)."""

from __future__ import annotations

from pathlib import Path

from domains.base import SampleData
from domains.datasets import DatasetError, csv_rows, dataset_file, from_unix

# pv (page view), cart, fav, buy → our funnel.
TAOBAO_TYPES = {"pv": "view", "cart": "add_to_cart", "fav": "favorite", "buy": "purchase"}


def taobao_userbehavior(path: str | Path, *, limit: int | None = None) -> SampleData:
    """``UserBehavior.csv`` (no header: user_id, item_id, category_id, behavior_type, unix seconds).

    Items get their category id (the data has no titles, brands or prices, so
    purchases carry ``quantity`` 1 and no amount); users have no attributes.
    """
    file = dataset_file(path, "UserBehavior.csv")
    users: dict[str, dict] = {}
    items: dict[str, dict] = {}
    events = []
    for n, row in enumerate(csv_rows(file, header=False)):
        if limit is not None and len(events) >= limit:
            break
        if len(row) != 5:
            raise DatasetError(f"{file.name} line {n + 1}: expected 5 columns, got {len(row)}")
        user, item, category, behaviour, ts = (c.strip() for c in row)
        kind = TAOBAO_TYPES.get(behaviour)
        if kind is None:
            raise DatasetError(f"{file.name} line {n + 1}: unknown behavior_type {behaviour!r}")
        users.setdefault(user, {"user_id": user, "attributes": {}})
        items.setdefault(item, {"item_id": item, "attributes": {"category": category}})
        events.append(
            {
                "event_id": f"tb-{user}-{item}-{behaviour}-{ts}",
                "user_id": user,
                "item_id": item,
                "type": kind,
                "timestamp": from_unix(ts),
                "value": None,
                "context": {"quantity": 1} if kind == "purchase" else {},
            }
        )
    # Duplicated rows exist in the source; the event id is the idempotency key.
    unique = list({e["event_id"]: e for e in events}.values())
    return SampleData(users=list(users.values()), items=list(items.values()), events=unique)
