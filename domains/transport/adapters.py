"""Real data for transport: Foursquare NYC check-ins (TSMC2014, GETNext preprocessing).

Venues become POI items (lat/lon, category name), check-ins checkin events
with their UTC time. NYC_val.csv and NYC_test.csv are both read when ``path``
is the folder; a single CSV file works too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from domains.base import SampleData
from domains.datasets import DatasetError, csv_rows, number, utc_iso

FILES = ("NYC_val.csv", "NYC_test.csv", "NYC_train.csv")


def foursquare_nyc(path: str | Path, *, limit: int | None = None) -> SampleData:
    p = Path(path)
    files = [p] if p.is_file() else [p / f for f in FILES if (p / f).is_file()]
    if not files:
        raise DatasetError(f"none of {FILES} found under {p}")
    users: dict[str, dict] = {}
    items: dict[str, dict] = {}
    events: dict[str, dict] = {}
    for file in files:
        for n, r in enumerate(csv_rows(file)):
            if limit is not None and len(events) >= limit:
                break
            lat, lon = number(r.get("latitude")), number(r.get("longitude"))
            try:
                when = datetime.strptime(r["UTC_time"], "%a %b %d %H:%M:%S %z %Y")
            except (KeyError, ValueError) as exc:
                raise DatasetError(f"{file.name} row {n + 2}: bad UTC_time") from exc
            if lat is None or lon is None:
                raise DatasetError(f"{file.name} row {n + 2}: missing latitude/longitude")
            user, poi = f"nyc{r['user_id']}", r["POI_id"]
            users.setdefault(user, {"user_id": user, "attributes": {}})
            items.setdefault(
                poi,
                {
                    "item_id": poi,
                    "attributes": {
                        "kind": "poi",
                        "name": r.get("POI_catname", "")[:200],
                        "lat": lat,
                        "lon": lon,
                        "category": r.get("POI_catname", "")[:100],
                    },
                },
            )
            ts = utc_iso(when)
            eid = f"4sq-{user}-{poi}-{int(when.timestamp())}"
            # val and test share no check-in, but one can't be sure of other splits.
            events.setdefault(
                eid,
                {
                    "event_id": eid,
                    "user_id": user,
                    "item_id": poi,
                    "type": "checkin",
                    "timestamp": ts,
                    "value": None,
                    "context": {"lat": lat, "lon": lon},
                },
            )
    ordered = sorted(events.values(), key=lambda e: (e["timestamp"], e["event_id"]))
    return SampleData(users=list(users.values()), items=list(items.values()), events=ordered)
