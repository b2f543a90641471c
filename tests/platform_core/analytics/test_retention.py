"""Retention cohorts on planted data (T0 is Monday 2026-03-02 10:00 UTC)."""

from __future__ import annotations

import pytest

from tests.platform_core.analytics.conftest import at

URL = "/api/v1/analytics/retention"
FOUR_WEEKS = {"from": at(0).isoformat(), "to": at(28, hours=-10).isoformat()}  # to: Monday 00:00 of week 4


def _cohorts(client, **body):  # noqa: ANN001, ANN003, ANN202
    r = client.post(URL, body, format="json")
    assert r.status_code == 200, r.json()
    return [(c["start"], c["users"], c["retained"]) for c in r.json()["cohorts"]]


@pytest.fixture
def weeks(tenant, plant):  # noqa: ANN001, ANN201
    plant(tenant, "u1", "view", at(0))  # week 0 ...
    plant(tenant, "u1", "view", at(0, hours=3))  # (twice in week 0: counted once)
    plant(tenant, "u1", "view", at(8))  # ... back in week 1
    plant(tenant, "u1", "view", at(22))  # ... and week 3
    plant(tenant, "u2", "view", at(6, hours=13))  # Sunday 23:00 of week 0; never back
    plant(tenant, "u3", "purchase", at(7, hours=-10))  # Monday 00:00 of week 1 (the edge)
    plant(tenant, "u3", "view", at(14))  # week 2
    plant(tenant, "u4", "purchase", at(14))  # week 2; never back: a cohort nobody returns from
    plant(tenant, "u5", "view", at(-1))  # before 'from': no events in range
    plant(tenant, "u5", "view", at(28, hours=-10))  # 'to' is exclusive


def test_weekly_cohorts(api_client, weeks):
    # Weeks start on Monday 00:00 UTC; the range ends in week 3 (to = Monday of week 4, exclusive).
    assert _cohorts(api_client, period="week", **FOUR_WEEKS) == [
        ("2026-03-02T00:00:00Z", 2, [2, 1, 0, 1]),  # u1, u2; u1 back in weeks 1 and 3
        ("2026-03-09T00:00:00Z", 1, [1, 1, 0]),  # u3 (its Monday-midnight purchase), back in week 2
        ("2026-03-16T00:00:00Z", 1, [1, 0]),  # u4: nobody returns
    ]


def test_start_and_return_types(api_client, weeks):
    # Cohorts by first purchase: u3 (week 1), u4 (week 2). Returns by view: u3 in week 2.
    assert _cohorts(api_client, period="week", start_type="purchase", return_type="view", **FOUR_WEEKS) == [
        ("2026-03-09T00:00:00Z", 1, [1, 1, 0]),
        ("2026-03-16T00:00:00Z", 1, [1, 0]),
    ]
    # Returning by purchase: nobody buys again.
    assert _cohorts(api_client, period="week", return_type="purchase", **FOUR_WEEKS)[0] == (
        "2026-03-02T00:00:00Z",
        2,
        [2, 0, 0, 0],
    )


def test_daily_and_monthly_periods(api_client, tenant, plant):
    plant(tenant, "a", "view", at(0))
    plant(tenant, "a", "view", at(1, hours=-9, minutes=-59))  # 00:01 next day: day 1
    plant(tenant, "a", "view", at(30))  # April 1: month 1
    plant(tenant, "b", "view", at(0, hours=13, minutes=59))  # 23:59 the same day
    rng = {"from": at(0, hours=-10).isoformat(), "to": at(3, hours=-10).isoformat()}
    assert _cohorts(api_client, period="day", **rng) == [("2026-03-02T00:00:00Z", 2, [2, 1, 0])]
    months = {"from": "2026-03-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}
    assert _cohorts(api_client, period="month", **months) == [("2026-03-01T00:00:00Z", 2, [2, 1])]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period": "year"}, "period"),
        ({"start_type": "teleport"}, "start_type"),
        ({"return_type": "teleport"}, "return_type"),
        ({"from": at(5).isoformat(), "to": at(1).isoformat()}, "from"),
        ({"period": "day", "from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "period"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client, tenant, body, field):
    r = api_client.post(URL, {**FOUR_WEEKS, **body}, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["fields"]


def test_tenants_see_only_their_own_events(api_client, other_client, tenant, other_tenant, plant):
    plant(tenant, "u1", "view", at(0))
    plant(other_tenant, "u1", "view", at(0))
    plant(other_tenant, "u1", "view", at(8))
    assert _cohorts(api_client, period="week", **FOUR_WEEKS) == [("2026-03-02T00:00:00Z", 1, [1, 0, 0, 0])]
    assert _cohorts(other_client, period="week", **FOUR_WEEKS) == [("2026-03-02T00:00:00Z", 1, [1, 1, 0, 0])]
