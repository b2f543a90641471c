"""Synthetic city: zones with stations and places, commuters with home/work and habits.

Weekday commutes go home → work in the morning and back in the evening on the
user's usual route and mode (searches first, now and then); road modes are
slower at peak hours; commuters often check in at a place near work (a
sequential habit); weekends are leisure sessions through places, zone by zone.
"""

from __future__ import annotations

import math
from datetime import timedelta

from domains.base import SampleData
from domains.synth import ANCHOR, EventSink, Synth

CENTER = (48.137, 11.575)  # a Munich-sized city
ZONES = ("altstadt", "schwabing", "haidhausen", "sendling", "neuhausen", "bogenhausen", "giesing", "pasing")
POI_CATEGORIES = ("cafe", "office", "park", "gym", "supermarket", "restaurant", "museum", "cinema")
SPEED_KMH = {"walk": 5, "bike": 15, "bus": 18, "tram": 20, "metro": 32, "car": 28}
DAYS = 14


def _zone_center(k: int) -> tuple[float, float]:
    if k == 0:
        return CENTER
    angle = 2 * math.pi * k / (len(ZONES) - 1)
    return CENTER[0] + 0.045 * math.sin(angle), CENTER[1] + 0.065 * math.cos(angle)


def sample_data(seed: int, n_users: int) -> SampleData:
    s = Synth(seed, "transport")
    n_places = max(80, n_users // 2)
    catalog = s.catalog(n_places, len(ZONES), zipf_a=1.0)
    items: list[dict] = []
    for i in range(n_places):
        z = int(catalog.cluster_of[i])
        lat, lon = _zone_center(z)
        kind = "station" if int(list(catalog.members[z]).index(i)) < 2 else "poi"
        attrs = {
            "kind": kind,
            "name": f"{ZONES[z].title()} {'station' if kind == 'station' else s.choice(POI_CATEGORIES)} {i}",
            "lat": round(lat + s.normal(0, 0.006), 6),
            "lon": round(lon + s.normal(0, 0.009), 6),
            "zone": ZONES[z],
        }
        if kind == "station":
            attrs["mode"] = "metro"
        else:
            attrs["category"] = attrs["name"].split()[1]
        items.append({"item_id": f"place{i:04d}", "attributes": attrs})
    routes: dict[tuple[int, int, str], str] = {}
    by_id = {it["item_id"]: it for it in items}

    def route(a: int, b: int, mode: str) -> str:
        key = (a, b, mode)
        if key not in routes:
            (la, lo), (lb, lob) = _zone_center(a), _zone_center(b)
            km = max(1.0, 1.3 * math.hypot((la - lb) * 111, (lo - lob) * 74))
            rid = f"route-{ZONES[a]}-{ZONES[b]}-{mode}"
            items.append(
                {
                    "item_id": rid,
                    "attributes": {
                        "kind": "route",
                        "name": f"{ZONES[a].title()} → {ZONES[b].title()} ({mode})",
                        "lat": round(la, 6),
                        "lon": round(lo, 6),
                        "end_lat": round(lb, 6),
                        "end_lon": round(lob, 6),
                        "mode": mode,
                        "typical_duration_minutes": round(60 * km / SPEED_KMH[mode] + 4, 1),
                        "zone": ZONES[a],
                    },
                }
            )
            routes[key] = rid
            by_id[rid] = items[-1]
        return routes[key]

    users, sink = [], EventSink(f"tr{seed}")
    start = (ANCHOR - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0)
    for u in range(n_users):
        uid = f"rider{u:05d}"
        plan = s.user_plan(len(ZONES), activity=2.0)
        home = int(plan.prefs_start.argmax())
        work = s.integers(0, len(ZONES) - 1)
        work = work if work != home else (home + 1) % len(ZONES)
        has_car = s.chance(0.35)
        mode = s.choice(
            ("metro", "bus", "bike", "tram", "car") if has_car else ("metro", "bus", "bike", "tram")
        )
        users.append(
            {
                "user_id": uid,
                "attributes": {
                    "home_zone": ZONES[home],
                    "work_zone": ZONES[work],
                    "has_car": has_car,
                    "preferred_mode": mode,
                },
            }
        )
        leave = s.normal(7.8, 0.6)
        back = s.normal(17.3, 0.7)
        near_work = [i for i in catalog.members[work] if items[int(i)]["attributes"]["kind"] == "poi"]
        habit = items[int(near_work[0])]["item_id"] if near_work else None
        for day in range(DAYS):
            date = start + timedelta(days=day)
            if date.weekday() >= 5 or not s.chance(0.55):
                continue
            for a, b, h in ((home, work, leave), (work, home, back)):
                t = date + timedelta(hours=h + s.normal(0, 0.25))
                trip_mode = (
                    mode
                    if s.chance(0.85)
                    else s.choice(("metro", "bus", "walk" if abs(a - b) < 2 else "tram"))
                )
                rid = route(a, b, trip_mode)
                if s.chance(0.2):
                    sink.add(
                        uid,
                        None,
                        "search",
                        t - timedelta(minutes=3),
                        context={"origin": ZONES[a], "destination": ZONES[b], "depart_hour": t.hour},
                    )
                sink.add(
                    uid,
                    rid,
                    "trip_start",
                    t,
                    context={"mode": trip_mode, "origin": ZONES[a], "destination": ZONES[b]},
                )
                slow = 1.35 if trip_mode in ("bus", "car") and t.hour in (7, 8, 9, 16, 17, 18) else 1.0
                minutes = round(
                    by_id[rid]["attributes"]["typical_duration_minutes"]
                    * slow
                    * max(0.7, s.normal(1.0, 0.12)),
                    1,
                )
                sink.add(
                    uid,
                    rid,
                    "trip_end",
                    t + timedelta(minutes=minutes),
                    context={"duration_minutes": minutes, "mode": trip_mode},
                )
                if b == work and habit and s.chance(0.4):
                    sink.add(uid, habit, "checkin", t + timedelta(minutes=minutes + 5))
        for sess in s.sessions(catalog, plan, days=DAYS, mean_length=3.0, gap_seconds=2400):
            if sess.start.weekday() < 5 and s.chance(0.6):
                continue  # leisure is mostly at weekends
            for idx, ts in zip(sess.items, sess.times, strict=True):
                it = items[idx]["attributes"]
                sink.add(
                    uid, items[idx]["item_id"], "checkin", ts, context={"lat": it["lat"], "lon": it["lon"]}
                )
    return SampleData(users=users, items=items, events=sink.sorted())
