"""Transport: routes, stations and points of interest; distance, time of day, congestion."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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

RULE_RADIUS = "transport.radius"
RULE_DISTANCE = "transport.distance"
RULE_TIME_OF_DAY = "transport.time_of_day"
RULE_CONGESTION = "transport.congestion"

MODES = ("walk", "bike", "scooter", "bus", "tram", "metro", "train", "car", "taxi", "ferry", "mixed")
ROAD_MODES = {"bus", "car", "taxi"}
PEAK_HOURS = {7, 8, 9, 16, 17, 18}
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def _hour_gap(a: int, b: int) -> int:
    d = abs(a - b) % 24
    return min(d, 24 - d)


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


class TransportPlugin(DomainPlugin):
    id = "transport"
    label = "Transport & mobility"
    description = "Journeys: nearby routes, stations and places, learned commute times, congestion."

    item_schema = (
        Field("kind", "choice", required=True, choices=("route", "station", "poi")),
        Field("name", "string", max_length=200),
        Field("lat", "float", required=True, min=-90, max=90),
        Field("lon", "float", required=True, min=-180, max=180),
        Field("end_lat", "float", min=-90, max=90, help="A route's destination."),
        Field("end_lon", "float", min=-180, max=180),
        Field("mode", "choice", choices=MODES),
        Field("typical_duration_minutes", "float", min=0, max=1440),
        Field("category", "string", max_length=100, help="A place's category (cafe, park, office…)."),
        Field("zone", "string", max_length=64),
    )
    user_schema = (
        Field("home_zone", "string", max_length=64),
        Field("work_zone", "string", max_length=64),
        Field("has_car", "bool"),
        Field("preferred_mode", "choice", choices=MODES),
    )
    event_types = (
        EventType(
            "search",
            0.5,
            (
                Field("origin", "string", required=True, max_length=200),
                Field("destination", "string", required=True, max_length=200),
                Field("depart_hour", "int", min=0, max=23),
            ),
            requires_item=False,
        ),
        EventType(
            "trip_start",
            2.0,
            (
                Field("mode", "choice", choices=MODES),
                Field("origin", "string", max_length=200),
                Field("destination", "string", max_length=200),
            ),
        ),
        EventType(
            "trip_end",
            3.0,
            (
                Field("duration_minutes", "float", required=True, min=0, max=1440),
                Field("mode", "choice", required=True, choices=MODES),
            ),
        ),
        EventType(
            "checkin", 2.0, (Field("lat", "float", min=-90, max=90), Field("lon", "float", min=-180, max=180))
        ),
    )
    config = (
        ConfigParam("max_radius_km", "float", 5.0, min=0.1, max=500, label="Maximum distance (km)"),
        ConfigParam(
            "distance_weight", "float", 0.3, min=0, max=5, help="Penalty at the edge of the radius (linear)."
        ),
        ConfigParam("time_of_day_boost", "float", 0.25, min=0, max=5),
        ConfigParam(
            "time_window_hours",
            "int",
            1,
            min=0,
            max=12,
            help="An item used within ±this many hours of now counts.",
        ),
        ConfigParam("congestion_weight", "float", 0.2, min=0, max=5),
    )

    def rerank(
        self, candidates: list[Candidate], context: RerankContext, config: ConfigValues
    ) -> RerankResult:
        lat, lon = _float(context.request.get("lat")), _float(context.request.get("lon"))
        hour = context.request.get("hour")
        hour = int(hour) if isinstance(hour, (int, float)) and 0 <= hour < 24 else context.now.hour
        radius = config["max_radius_km"]
        usage_hours: dict[str, list[int]] = {}
        for e in context.history:
            if e.item_id and e.type in ("trip_start", "checkin"):
                usage_hours.setdefault(e.item_id, []).append(e.timestamp.hour)
        congestion = context.request.get("congestion")
        kept: list[Candidate] = []
        removed: list[Candidate] = []
        for c in candidates:
            clat, clon = _float(c.attributes.get("lat")), _float(c.attributes.get("lon"))
            if lat is not None and lon is not None and clat is not None and clon is not None:
                d = haversine_km(lat, lon, clat, clon)
                if d > radius:
                    removed.append(remove(c, RULE_RADIUS, f"{d:.1f} km away (max {radius} km)"))
                    continue
                c.adjust(RULE_DISTANCE, -config["distance_weight"] * d / radius, f"{d:.2f} km away")
            hours = usage_hours.get(c.item_id, [])
            if any(_hour_gap(h, hour) <= config["time_window_hours"] for h in hours):
                c.adjust(
                    RULE_TIME_OF_DAY, config["time_of_day_boost"], f"you often use it around {hour:02d}:00"
                )
            level = self._congestion(c.attributes.get("mode"), hour, congestion)
            if level:
                c.adjust(
                    RULE_CONGESTION,
                    -config["congestion_weight"] * level,
                    f"congestion {level:.2f} for {c.attributes.get('mode')}",
                )
            kept.append(c)
        kept.sort(key=lambda c: -c.score)
        return RerankResult(candidates=kept, removed=removed)

    @staticmethod
    def _congestion(mode: Any, hour: int, given: Any) -> float:
        """0–1: the request's level (a number, or {mode: level}); else 1 for road modes at peak hours."""
        if isinstance(given, Mapping):
            value = _float(given.get(mode))
            return max(0.0, min(1.0, value)) if value is not None else 0.0
        value = _float(given)
        if value is not None:
            return max(0.0, min(1.0, value)) if mode in ROAD_MODES else 0.0
        return 1.0 if mode in ROAD_MODES and hour in PEAK_HOURS else 0.0

    def profile_features(
        self,
        events: Sequence[EventRecord],
        user: UserRecord,
        config: ConfigValues,
        item_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        pairs: Counter[str] = Counter()
        for e in events:
            if (
                e.type in ("search", "trip_start")
                and e.context.get("origin")
                and e.context.get("destination")
            ):
                pairs[f"{e.context['origin']} → {e.context['destination']}"] += 1
        starts = [e for e in events if e.type in ("trip_start", "checkin")]
        weekday_hours = Counter(e.timestamp.hour for e in starts if e.timestamp.weekday() < 5)
        modes = Counter(
            str(e.context["mode"]) for e in events if e.type == "trip_end" and e.context.get("mode")
        )
        total_modes = sum(modes.values())
        durations = [
            float(e.context["duration_minutes"])
            for e in events
            if e.type == "trip_end" and "duration_minutes" in e.context
        ]
        return {
            "frequent_od_pairs": [{"pair": p, "count": n} for p, n in pairs.most_common(5)],
            "commute_windows": _windows(weekday_hours),
            "mode_preference": {m: round(n / total_modes, 4) for m, n in modes.most_common()}
            if total_modes
            else {},
            "mean_trip_minutes": round(sum(durations) / len(durations), 1) if durations else None,
            "trips": sum(e.type == "trip_end" for e in events),
            "checkins": sum(e.type == "checkin" for e in events),
        }

    def sample_data(self, seed: int, n_users: int) -> SampleData:
        from domains.transport.sample import sample_data

        return sample_data(seed, n_users)

    @classmethod
    def dataset_adapters(cls) -> dict[str, Callable[..., SampleData]]:
        from domains.transport.adapters import foursquare_nyc

        return {"foursquare-nyc": foursquare_nyc}


def _windows(hours: Counter[int]) -> list[dict[str, int]]:
    """Up to two busiest weekday hours (morning and evening) with their counts."""
    out = []
    for lo, hi in ((4, 12), (12, 24)):
        part = {h: n for h, n in hours.items() if lo <= h < hi}
        if part:
            h = max(part, key=lambda k: (part[k], -k))
            if part[h] >= 2:
                out.append({"hour": h, "count": part[h]})
    return out
