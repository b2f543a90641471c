from __future__ import annotations

from datetime import timedelta

import pytest

from domains.transport.plugin import TransportPlugin, haversine_km
from tests.domains.conftest import NOW, cand, ctx, event

P = TransportPlugin()
CFG = P.default_config()
HERE = (48.137, 11.575)


def place(iid: str, lat: float, lon: float, score: float = 1.0, **attrs: object) -> object:
    return cand(iid, score, kind="station", lat=lat, lon=lon, **attrs)


def test_haversine_matches_a_known_distance() -> None:
    # One degree of latitude ≈ 111.2 km on the mean-radius sphere.
    assert haversine_km(0, 0, 1, 0) == pytest.approx(111.195, abs=0.01)


def test_a_route_beyond_the_radius_is_dropped_and_distance_penalised() -> None:
    near = place("near", HERE[0] + 0.009, HERE[1])  # ≈ 1.0 km north
    far = place("far", HERE[0] + 0.09, HERE[1])  # ≈ 10 km north > 5 km
    result = P.rerank([far, near], ctx(lat=HERE[0], lon=HERE[1], hour=12), CFG)
    assert [c.item_id for c in result.candidates] == ["near"]
    assert result.removed[0].adjustments[-1].rule == "transport.radius"
    # penalty 0.3 × 1.0007 km / 5 km = 0.0600
    assert result.candidates[0].score == pytest.approx(
        1 - 0.3 * haversine_km(*HERE, HERE[0] + 0.009, HERE[1]) / 5
    )


def test_time_of_day_pattern_boosts_usual_items() -> None:
    history = [event("u1", "r1", "trip_start", NOW.replace(hour=8) - timedelta(days=d)) for d in (1, 2)]
    result = P.rerank(
        [place("r1", *HERE, mode="metro"), place("r2", *HERE, mode="metro")],
        ctx(history=history, lat=HERE[0], lon=HERE[1], hour=9),
        CFG,
    )
    assert {c.item_id: round(c.score, 6) for c in result.candidates} == {"r1": 1.25, "r2": 1.0}


def test_congestion_penalises_road_modes_at_peak_or_as_requested() -> None:
    items = [place("bus", *HERE, mode="bus"), place("metro", *HERE, mode="metro")]
    peak = P.rerank(items, ctx(hour=8), CFG)
    assert {c.item_id: round(c.score, 6) for c in peak.candidates} == {"bus": 0.8, "metro": 1.0}
    given = P.rerank(
        [place("bus", *HERE, mode="bus"), place("metro", *HERE, mode="metro")],
        ctx(hour=13, congestion={"metro": 0.5}),
        CFG,
    )
    assert {c.item_id: round(c.score, 6) for c in given.candidates} == {"bus": 1.0, "metro": 0.9}


def test_profile_od_pairs_commute_windows_modes() -> None:
    monday = NOW - timedelta(days=NOW.weekday())  # a Monday
    history = []
    for d in range(3):
        day = monday + timedelta(days=d)
        history += [
            event("u1", "r1", "trip_start", day.replace(hour=8), origin="home", destination="work"),
            event(
                "u1", "r1", "trip_end", day.replace(hour=8, minute=30), duration_minutes=30.0, mode="metro"
            ),
            event("u1", "r2", "trip_start", day.replace(hour=17), origin="work", destination="home"),
            event("u1", "r2", "trip_end", day.replace(hour=17, minute=40), duration_minutes=40.0, mode="bus"),
        ]
    f = P.profile_features(history, ctx().user, CFG)
    assert f["frequent_od_pairs"] == [
        {"pair": "home → work", "count": 3},
        {"pair": "work → home", "count": 3},
    ]
    assert f["commute_windows"] == [{"hour": 8, "count": 3}, {"hour": 17, "count": 3}]
    assert f["mode_preference"] == {"metro": 0.5, "bus": 0.5}
    assert f["mean_trip_minutes"] == 35.0


def test_bad_coordinates_are_refused() -> None:
    assert P.validate_item({"kind": "poi", "lat": 95.0, "lon": 0.0}) == {"attributes.lat": ["must be ≤ 90"]}
    assert P.validate_event(
        {"type": "trip_end", "item_id": "r", "context": {"mode": "rocket", "duration_minutes": 3}}
    ) == {
        "context.mode": [
            "must be one of ['walk', 'bike', 'scooter', 'bus', 'tram', 'metro', 'train', 'car', 'taxi', 'ferry', 'mixed']"
        ]
    }
