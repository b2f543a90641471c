"""Recommendation impact on planted data: exposure from feedback, conversion = a purchase in range."""

from __future__ import annotations

import pytest

from domains.registry import plugin_get
from platform_core.analytics import sql as impact_sql
from platform_core.analytics.impact import conversion_type_default, difference_interval, wilson_interval
from platform_core.catalog.models import EndUser
from platform_core.jobs.models import JobStatus, ModelVersion, TrainingJob
from platform_core.serving.models import ModelVersionServingStats, RecommendationFeedback
from platform_core.tenancy.models import Tenant
from tests.platform_core.analytics.conftest import at

URL = "/api/v1/analytics/impact"
RANGE = {"from": at(0).isoformat(), "to": at(7).isoformat()}


def _version(tenant: Tenant) -> ModelVersion:
    job = TrainingJob.unscoped.create(tenant=tenant, status=JobStatus.SUCCEEDED)
    return ModelVersion.unscoped.create(tenant=tenant, job=job, algorithm="transformer", artifact_path="x")


def _feedback(
    tenant: Tenant, user: str | None, version: ModelVersion, served: object, action: str = "click"
) -> None:
    RecommendationFeedback.unscoped.create(
        tenant=tenant,
        user=EndUser.unscoped.get(tenant=tenant, external_id=user) if user else None,
        model_version=version,
        recommendation_key=f"{user}-{version.pk}-{served}",
        item_external_id="i1",
        rank=1,
        action=action,
        served_at=served,
    )


@pytest.fixture
def planted(tenant, other_tenant, plant):  # noqa: ANN001, ANN201
    v1, v2 = _version(tenant), _version(tenant)
    ModelVersionServingStats.unscoped.create(tenant=tenant, model_version=v1, items_shown=10, clicks=3)
    for user, events in {
        "e1": [("view", 1), ("purchase", 2)],  # exposed (v1), converts
        "e2": [("view", 1)],  # exposed (v1, a dismissal), does not
        "e3": [("purchase", 3)],  # exposed to v1 and v2, converts
        "e4": [("view", 2)],  # fed back on a list served before 'from': not exposed in range
        "e5": [("view", -3)],  # exposed (v2) in range, no event in range: does not convert
        "n1": [("view", 1), ("purchase", 1.5)],  # not exposed, converts
        "n2": [("view", 4)],
        "n3": [("add_to_cart", 5)],
        "n4": [("purchase", -1)],  # only before 'from': not in the population
        "n5": [("view", 6), ("purchase", 7)],  # the purchase at 'to' (exclusive) does not count
    }.items():
        for type_, day in events:
            plant(tenant, user, type_, at(day))
    _feedback(tenant, "e1", v1, at(1))
    _feedback(tenant, "e1", v1, at(1.5), action="convert")  # twice: still one user
    _feedback(tenant, "e2", v1, at(0), action="dismiss")  # served exactly at 'from'
    _feedback(tenant, "e3", v1, at(2))
    _feedback(tenant, "e3", v2, at(2))
    _feedback(tenant, "e4", v2, at(-1))
    _feedback(tenant, "e5", v2, at(6))
    _feedback(tenant, None, v2, at(3))  # a similar-items list without a user: nobody exposed
    # Tenant B: everyone exposed and converting; none of it may reach A's numbers.
    vb = _version(other_tenant)
    for user in ("b1", "b2"):
        plant(other_tenant, user, "purchase", at(1))
        _feedback(other_tenant, user, vb, at(1))
    return v1, v2


def test_exposed_vs_not_with_confidence_intervals(api_client, planted):
    r = api_client.post(URL, RANGE, format="json")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["conversion_type"] == "purchase"
    # exposed: e1, e2, e3, e5 (2 convert); not exposed: e4, n1, n2, n3, n5 (1 converts)
    assert body["exposed"] == {"users": 4, "converted": 2, "rate": 0.5, "ci95": [0.150039, 0.849961]}
    assert body["not_exposed"] == {"users": 5, "converted": 1, "rate": 0.2, "ci95": [0.036224, 0.624465]}
    # Wilson: (x + z²/2 ± z·sqrt(x(n−x)/n + z²/4)) / (n + z²), z = 1.959964; for 2/4:
    # (2 + 1.920730 ± 1.959964·sqrt(1 + 0.960365)) / 5.841459 = (3.920730 ± 2.744038) / 5.841459
    # Newcombe: 0.3 − sqrt((0.5 − 0.150039)² + (0.624465 − 0.2)²) = 0.3 − 0.550130 = −0.250130, and
    #           0.3 + sqrt((0.849961 − 0.5)² + (0.2 − 0.036224)²) = 0.3 + 0.386387 = 0.686387
    assert body["difference"] == 0.3
    assert body["difference_ci95"] == [-0.25013, 0.686387]


def test_per_model_version(api_client, planted):
    v1, v2 = planted
    versions = api_client.post(URL, RANGE, format="json").json()["versions"]
    assert [(x["model_version"], x["users"], x["converted"]) for x in versions] == [
        (v1.pk, 3, 2),
        (v2.pk, 2, 1),
    ]
    one, two = versions
    assert one["ci95"] == [0.20766, 0.938508] and one["ctr"] == 0.3  # 3 clicks / 10 items shown
    assert one["difference"] == 0.466667 and one["difference_ci95"] == [-0.15852, 0.784031]  # 2/3 vs 1/5
    assert two["rate"] == 0.5 and two["ci95"] == [0.094531, 0.905469] and two["ctr"] is None
    assert two["difference_ci95"] == [-0.287006, 0.737296]


def test_conversion_type_is_chosen_by_the_caller(api_client, planted):
    body = api_client.post(URL, {**RANGE, "conversion_type": "add_to_cart"}, format="json").json()
    assert (body["exposed"]["converted"], body["not_exposed"]["converted"]) == (0, 1)  # n3
    assert body["versions"][0]["difference"] == -0.2


def test_default_conversion_type_per_domain():
    assert conversion_type_default(plugin_get("ecommerce")) == "purchase"
    # education has no purchase: its heaviest learnable type (complete, 4.0; drop is a label)
    assert conversion_type_default(plugin_get("education")) == "complete"


def test_nobody_in_range(api_client, planted):
    body = api_client.post(URL, {"from": at(30).isoformat(), "to": at(31).isoformat()}, format="json").json()
    assert body["exposed"] == {"users": 0, "converted": 0, "rate": None, "ci95": None}
    assert body["difference"] is None and body["difference_ci95"] is None and body["versions"] == []


def test_tenant_isolation(other_client, planted):
    body = other_client.post(URL, RANGE, format="json").json()
    assert body["exposed"]["users"] == 2 and body["not_exposed"]["users"] == 0
    assert [x["users"] for x in body["versions"]] == [2]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"conversion_type": "teleport"}, "conversion_type"),
        ({"from": at(7).isoformat(), "to": at(0).isoformat()}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"conversion_type": 5}, "conversion_type"),
    ],
)
def test_bad_input_names_the_field(api_client, planted, body, field):
    r = api_client.post(URL, body, format="json")
    assert r.status_code == 400 and field in r.json()["error"]["fields"], r.json()


def test_intervals_match_published_values():
    # Newcombe (1998), example (a): 56/70 vs 48/80 → difference 0.2, 95 % CI 0.0524 to 0.3339.
    low, high = difference_interval(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    # Wilson at the edges stays in [0, 1]: 0/10 → [0, 0.2775], 10/10 → [0.7225, 1].
    assert [round(x, 4) for x in wilson_interval(0, 10)] == [0.0, 0.2775]
    assert [round(x, 4) for x in wilson_interval(10, 10)] == [0.7225, 1.0]
    assert wilson_interval(0, 0) is None


def test_cached_until_feedback_arrives_in_the_range(
    api_client, tenant, planted, monkeypatch, django_capture_on_commit_callbacks
):
    runs = []
    real = impact_sql.analytics_sql_rows
    monkeypatch.setattr(
        "platform_core.analytics.impact.analytics_sql_rows", lambda **kw: runs.append(1) or real(**kw)
    )
    assert api_client.post(URL, RANGE, format="json").json()["exposed"]["users"] == 4
    assert api_client.post(URL, RANGE, format="json").json()["exposed"]["users"] == 4 and len(runs) == 1
    v1, _v2 = planted
    with django_capture_on_commit_callbacks(execute=True):
        _feedback(tenant, "n2", v1, at(5))  # n2 becomes exposed
    assert api_client.post(URL, RANGE, format="json").json()["exposed"]["users"] == 5 and len(runs) == 2
