"""Segments: rule memberships, clusters, the API, breakdowns, segment= and user.segment.

Every membership and number below is worked out by hand from the planted events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone

from platform_core.analytics import tasks
from platform_core.analytics.models import Segment, SegmentMember
from platform_core.analytics.segments import segment_compute
from platform_core.catalog.models import EndUser
from platform_core.jobs.models import ModelVersion, VersionState
from platform_core.profiles.models import UserProfile
from tests.platform_core.analytics.conftest import T0, at

NOW = T0 + dt.timedelta(days=40)
URL = "/api/v1/analytics/segments"


def _segment(tenant, name, definition, kind="rule"):  # noqa: ANN001, ANN202
    return Segment.objects.for_tenant(tenant).create(
        tenant=tenant, name=name, kind=kind, definition=definition
    )


def _members(tenant, segment):  # noqa: ANN001, ANN202
    rows = (
        SegmentMember.objects.for_tenant(tenant)
        .filter(segment=segment)
        .values_list("user__external_id", flat=True)
    )
    return sorted(rows)


@pytest.fixture
def buyers(tenant, plant):  # noqa: ANN001, ANN201
    """Purchases relative to NOW; the rule is "≥ 2 purchases in the last 30 days and country = DE"."""
    edge = NOW - dt.timedelta(days=30)
    de = {"country": "DE"}
    plant(tenant, "exactly2", "purchase", NOW - dt.timedelta(days=1), user_attrs=de)
    plant(tenant, "exactly2", "purchase", NOW - dt.timedelta(days=2))
    plant(tenant, "edge", "purchase", edge, user_attrs=de)  # exactly 30 days before: inside
    plant(tenant, "edge", "purchase", NOW - dt.timedelta(hours=1))
    plant(tenant, "outside", "purchase", edge - dt.timedelta(seconds=1), user_attrs=de)  # one second too old
    plant(tenant, "outside", "purchase", NOW - dt.timedelta(hours=1))
    plant(tenant, "outside", "view", NOW - dt.timedelta(hours=2))  # another type: not counted
    plant(tenant, "future", "purchase", NOW + dt.timedelta(hours=1), user_attrs=de)  # after NOW: not counted
    plant(tenant, "future", "purchase", NOW - dt.timedelta(hours=1))
    for n in range(3):
        plant(tenant, "french", "purchase", NOW - dt.timedelta(days=n + 1), user_attrs={"country": "FR"})
    plant(tenant, "nocountry", "purchase", NOW - dt.timedelta(days=1), user_attrs={})  # attribute missing
    plant(tenant, "nocountry", "purchase", NOW - dt.timedelta(days=2))
    plant(tenant, "idle", "view", T0 - dt.timedelta(days=300), user_attrs=de)  # no purchase at all


RULE = {
    "where": 'country = "DE"',
    "events": [{"type": "purchase", "days": 30, "op": ">=", "count": 2}],
}


def test_rule_membership_edges(tenant, buyers):
    s = _segment(tenant, "big-spenders", RULE)
    segment_compute(tenant=tenant, segment_id=s.pk, now=NOW)
    assert _members(tenant, s) == ["edge", "exactly2"]
    s.refresh_from_db()
    assert (s.size, s.computed_at) == (2, NOW)
    # Recomputing replaces the members (no duplicates; the unique pair would refuse them).
    segment_compute(tenant=tenant, segment_id=s.pk, now=NOW)
    assert _members(tenant, s) == ["edge", "exactly2"]


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        # Missing attribute fails both = and != (as in serving's filters).
        ({"where": 'country != "DE"'}, ["french"]),
        ({"where": 'not country = "DE"'}, ["french", "nocountry"]),
        # Count 0 finds users without a matching event, including users with no events at all.
        (
            {"where": 'country = "DE"', "events": [{"type": "purchase", "days": 30, "op": "=", "count": 0}]},
            ["idle"],
        ),
        ({"events": [{"type": "purchase", "days": 30, "op": ">", "count": 2}]}, ["french"]),
        (
            {"events": [{"type": "purchase", "days": 30, "op": "=", "count": 2}]},
            ["edge", "exactly2", "nocountry"],
        ),
        (
            {
                "match": "any",
                "where": 'country = "FR"',
                "events": [{"type": "view", "days": 30, "count": 1}],
            },
            ["french", "outside"],
        ),
        ({"events": [{"type": "purchase", "days": 1, "count": 1, "where": 'category = "bags"'}]}, []),
    ],
)
def test_rule_variants(tenant, buyers, definition, expected):
    s = _segment(tenant, "s", definition)
    segment_compute(tenant=tenant, segment_id=s.pk, now=NOW)
    assert _members(tenant, s) == expected


def test_rule_recompute_moves_the_window(tenant, buyers):
    s = _segment(tenant, "big-spenders", RULE)
    segment_compute(tenant=tenant, segment_id=s.pk, now=NOW + dt.timedelta(days=2))
    # The window is now [NOW-28d, NOW+2d]: exactly2 keeps both, edge keeps one, future gains its second.
    assert _members(tenant, s) == ["exactly2", "future"]


# ---------------------------------------------------------------- clusters
def _embedded(tenant, plant, version, user, vector, categories):  # noqa: ANN001, ANN202
    for n, category in enumerate(categories):
        plant(tenant, user, "view", at(hours=n), item=f"{category}-{n}", item_attrs={"category": category})
    profile_user = EndUser.objects.for_tenant(tenant).get(external_id=user)
    UserProfile.objects.for_tenant(tenant).create(
        tenant=tenant,
        user=profile_user,
        model_version=version,
        embedding=np.asarray(vector, dtype="<f4").tobytes(),
    )


@pytest.fixture
def embedded(tenant, plant):  # noqa: ANN001, ANN201
    """Two separable groups: 5 users near (1,0,0), 3 near (0,1,0); one user of an old version."""
    version = ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant, algorithm="transformer", artifact_path="x/1", state=VersionState.ACTIVE
    )
    old = ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant, algorithm="transformer", artifact_path="x/0", state=VersionState.RETIRED
    )
    for n in range(5):
        _embedded(tenant, plant, version, f"shoe{n}", [1, 0.1 * n, 0.05], ["shoes", "shoes", "bags"])
    for n in range(3):
        _embedded(tenant, plant, version, f"book{n}", [0.1 * n, 1, 0], ["books", "books", "books", "pens"])
    _embedded(tenant, plant, old, "stale", [1, 0, 0], ["shoes"])


def test_clusters_on_separable_embeddings(tenant, embedded):
    s = _segment(tenant, "taste", {"k": 2, "seed": 7}, kind="cluster")
    segment_compute(tenant=tenant, segment_id=s.pk)
    s.refresh_from_db()
    assert s.size == 8  # the old version's user is not clustered
    by_cluster = {
        c: sorted(
            SegmentMember.objects.for_tenant(tenant)
            .filter(segment=s, cluster=c)
            .values_list("user__external_id", flat=True)
        )
        for c in (0, 1)
    }
    assert by_cluster == {0: [f"shoe{n}" for n in range(5)], 1: [f"book{n}" for n in range(3)]}
    # Cluster 0 (the larger): 15 views, 10 of shoes, 5 of bags; cluster 1: 12 views, 9 books, 3 pens.
    assert s.clusters == [
        {
            "cluster": 0,
            "size": 5,
            "top_values": [
                {"value": "shoes", "events": 10, "share": round(10 / 15, 4)},
                {"value": "bags", "events": 5, "share": round(5 / 15, 4)},
            ],
        },
        {
            "cluster": 1,
            "size": 3,
            "top_values": [
                {"value": "books", "events": 9, "share": 0.75},
                {"value": "pens", "events": 3, "share": 0.25},
            ],
        },
    ]


def test_clusters_without_a_model_are_empty(tenant, plant):
    s = _segment(tenant, "taste", {"k": 2}, kind="cluster")
    segment_compute(tenant=tenant, segment_id=s.pk)
    s.refresh_from_db()
    assert (s.size, s.clusters, s.computed_at is not None) == (0, [], True)


# ---------------------------------------------------------------- API
@pytest.fixture
def eager(monkeypatch, django_capture_on_commit_callbacks):  # noqa: ANN001, ANN201
    """Enqueued computations run at commit, in this process."""
    monkeypatch.setattr(tasks.segment_compute_task, "delay", lambda pk: tasks.segment_compute_task(pk))
    return django_capture_on_commit_callbacks


def _recent_buyers(tenant, plant):  # noqa: ANN001, ANN202
    now = timezone.now()
    for user, country, n in (("anna", "DE", 2), ("bert", "DE", 1), ("carl", "FR", 3)):
        for k in range(n):
            plant(
                tenant,
                user,
                "purchase",
                now - dt.timedelta(days=k + 1),
                item=f"i-{user}",
                user_attrs={"country": country},
            )


def test_crud_and_compute(api_client, tenant, plant, eager):
    _recent_buyers(tenant, plant)
    with eager(execute=True):
        r = api_client.post(URL, {"name": "big-spenders", "definition": RULE}, format="json")
    assert r.status_code == 201, r.json()
    sid = r.json()["id"]
    body = api_client.get(f"{URL}/{sid}").json()
    assert (body["size"], body["kind"]) == (1, "rule")  # anna only
    assert [s["name"] for s in api_client.get(URL).json()["results"]] == ["big-spenders"]
    rule = {"events": [{"type": "purchase", "days": 30, "op": ">=", "count": 1}]}
    with eager(execute=True):
        r = api_client.put(f"{URL}/{sid}", {"name": "buyers", "definition": rule}, format="json")
    assert r.status_code == 200, r.json()
    assert api_client.get(f"{URL}/{sid}").json()["size"] == 3
    with eager(execute=True):
        r = api_client.post(f"{URL}/{sid}/compute")
    assert r.status_code == 202
    assert api_client.delete(f"{URL}/{sid}").json() == {"deleted": sid}
    assert api_client.get(f"{URL}/{sid}").status_code == 404


def test_scopes(api_client_for, tenant):
    reader = api_client_for(tenant, scopes=("read",))
    assert reader.get(URL).status_code == 200
    assert reader.post(URL, {"name": "x", "definition": RULE}, format="json").status_code == 403
    sid = _segment(tenant, "x", RULE).pk
    assert reader.post(f"{URL}/{sid}/compute").status_code == 403
    assert reader.delete(f"{URL}/{sid}").status_code == 403


def test_two_tenants(api_client, other_client, tenant, other_tenant, plant):
    mine = _segment(tenant, "mine", RULE)
    theirs = _segment(other_tenant, "theirs", RULE)
    assert [s["name"] for s in api_client.get(URL).json()["results"]] == ["mine"]
    missing = api_client.get(f"{URL}/999999")
    for method, path in (
        ("get", f"{URL}/{theirs.pk}"),
        ("put", f"{URL}/{theirs.pk}"),
        ("delete", f"{URL}/{theirs.pk}"),
        ("post", f"{URL}/{theirs.pk}/compute"),
    ):
        r = getattr(api_client, method)(path, {"name": "stolen", "definition": RULE}, format="json")
        assert (r.status_code, r.json()) == (missing.status_code, missing.json()), method
    assert Segment.objects.for_tenant(other_tenant).get().name == "theirs"
    # Another tenant's segment is unknown to segment= and user.segment alike.
    for url in ("/api/v1/popular", "/api/v1/trending"):
        for ref in ("theirs", str(theirs.pk)):
            r = api_client.get(url, {"segment": ref})
            assert r.status_code == 400 and "segment" in r.json()["error"]["fields"], url
    assert other_client.get(f"{URL}/{mine.pk}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "definition": {"where": "shoe_size = 3"}}, "definition.where"),
        ({"name": "x", "definition": {"where": 'country < "DE"'}}, "definition.where"),
        (
            {"name": "x", "definition": {"events": [{"type": "teleport", "days": 3, "count": 1}]}},
            "definition.events[0].type",
        ),
        (
            {"name": "x", "definition": {"events": [{"type": "purchase", "days": 3, "op": "~", "count": 1}]}},
            "definition.events[0].op",
        ),
        (
            {"name": "x", "definition": {"events": [{"type": "purchase", "days": 0, "count": 1}]}},
            "definition.events[0].days",
        ),
        (
            {"name": "x", "definition": {"events": [{"type": "purchase", "days": 3, "count": -1}]}},
            "definition.events[0].count",
        ),
        (
            {
                "name": "x",
                "definition": {"events": [{"type": "purchase", "days": 3, "count": 1, "where": "nope = 1"}]},
            },
            "definition.events[0].where",
        ),
        ({"name": "x", "definition": {"frobnicate": 1}}, "definition.frobnicate"),
        ({"name": "x", "definition": {}}, "definition"),
        ({"name": "x", "definition": {"match": "some", "where": 'country = "DE"'}}, "definition.match"),
        ({"name": "x", "kind": "cluster", "definition": {"k": 1}}, "definition.k"),
        (
            {"name": "x", "kind": "cluster", "definition": {"k": 2, "describe_by": "price"}},
            "definition.describe_by",
        ),
        ({"name": "Bad Name", "definition": RULE}, "name"),
        ({"name": "123", "definition": RULE}, "name"),
        ({"name": "x", "kind": "magic", "definition": RULE}, "kind"),
    ],
)
def test_bad_definitions_are_400_naming_the_field(api_client, tenant, body, field):
    r = api_client.post(URL, body, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["fields"], r.json()
    assert not Segment.objects.for_tenant(tenant).exists()


def test_unknown_attribute_message_names_the_user_schema(api_client, tenant):
    r = api_client.post(URL, {"name": "x", "definition": {"where": "shoe_size = 3"}}, format="json")
    assert "user schema" in r.json()["error"]["fields"]["definition.where"][0]


def test_duplicate_name(api_client, tenant):
    _segment(tenant, "x", RULE)
    r = api_client.post(URL, {"name": "x", "definition": RULE}, format="json")
    assert r.status_code == 400 and "name" in r.json()["error"]["fields"]


# ---------------------------------------------------------------- uses
@pytest.fixture
def two_segments(tenant, plant):  # noqa: ANN001, ANN201
    """u1 in a and b, u2 in a, u3 in none; funnel view → purchase."""
    for user in ("u1", "u2", "u3"):
        plant(tenant, user, "view", at(), item="i1")
    plant(tenant, "u1", "purchase", at(hours=1), item="i1")
    plant(tenant, "u3", "purchase", at(hours=1), item="i1")
    users = {u.external_id: u for u in EndUser.objects.for_tenant(tenant)}
    a, b = _segment(tenant, "a", RULE), _segment(tenant, "b", RULE)
    for seg, names in ((a, ("u1", "u2")), (b, ("u1",))):
        for name in names:
            SegmentMember.unscoped.create(tenant=tenant, segment=seg, user=users[name])
    return a, b


def test_funnel_breakdown_by_segment(api_client, two_segments):
    body = {
        "steps": [{"type": "view"}, {"type": "purchase"}],
        "from": at(-1).isoformat(),
        "to": at(1).isoformat(),
        "breakdown": "segment",
    }
    r = api_client.post("/api/v1/analytics/funnel", body, format="json")
    assert r.status_code == 200, r.json()
    groups = {g["value"]: [s["users"] for s in g["steps"]] for g in r.json()["groups"]}
    # a: u1 (bought), u2; b: u1 (bought); none: u3 (bought). The total counts each user once.
    assert groups == {"a": [2, 1], "b": [1, 1], None: [1, 1]}
    assert [s["users"] for s in r.json()["steps"]] == [3, 2]


def test_retention_breakdown_by_segment(api_client, tenant, two_segments, plant):
    plant(tenant, "u2", "view", at(days=1), item="i1")  # u2 back the next day
    body = {"period": "day", "from": at(-0.5).isoformat(), "to": at(2).isoformat(), "breakdown": "segment"}
    r = api_client.post("/api/v1/analytics/retention", body, format="json")
    assert r.status_code == 200, r.json()
    groups = {g["value"]: [c["retained"] for c in g["cohorts"]] for g in r.json()["groups"]}
    assert groups == {"a": [[2, 1, 0]], "b": [[1, 0, 0]], None: [[1, 0, 0]]}
    assert [c["retained"] for c in r.json()["cohorts"]] == [[3, 1, 0]]
    r = api_client.post("/api/v1/analytics/retention", {**body, "breakdown": "item.category"}, format="json")
    assert r.status_code == 400 and "breakdown" in r.json()["error"]["fields"]


def test_popular_and_trending_within_a_segment(api_client, tenant, plant):
    now = timezone.now()
    for user, item, n in (("m1", "a", 1), ("m2", "a", 1), ("x1", "b", 5)):
        for k in range(n):
            plant(tenant, user, "view", now - dt.timedelta(minutes=10 + k), item=item)
    seg = _segment(tenant, "m", {"where": 'country = "DE"'})
    users = {u.external_id: u for u in EndUser.objects.for_tenant(tenant)}
    for name in ("m1", "m2"):
        SegmentMember.unscoped.create(tenant=tenant, segment=seg, user=users[name])
    everyone = api_client.get("/api/v1/popular").json()["items"]
    assert [i["item_id"] for i in everyone] == ["b", "a"]
    for ref in ("m", str(seg.pk)):
        within = api_client.get("/api/v1/popular", {"segment": ref}).json()["items"]
        assert [(i["item_id"], i["score"]) for i in within] == [("a", 2.0)]  # view weight 1.0 × 2
    trending = api_client.get("/api/v1/trending", {"window": "1h", "min_count": 1, "segment": "m"}).json()
    assert [(i["item_id"], i["count"]) for i in trending["items"]] == [("a", 2)]
    r = api_client.get("/api/v1/popular", {"segment": "nope"})
    assert r.status_code == 400 and "segment" in r.json()["error"]["fields"]
    assert api_client.get("/api/v1/popular", {"segment": "m:1"}).status_code == 400  # a rule has no clusters


def test_user_segment_filter_term(api_client, tenant, plant):
    now = timezone.now()
    plant(
        tenant,
        "vip",
        "view",
        now - dt.timedelta(hours=1),
        item="cheap",
        item_attrs={"category": "x", "price": 5},
    )
    plant(
        tenant,
        "vip",
        "view",
        now - dt.timedelta(hours=2),
        item="dear",
        item_attrs={"category": "x", "price": 500},
    )
    plant(tenant, "pleb", "view", now - dt.timedelta(hours=1), item="cheap")
    seg = _segment(tenant, "vips", {"where": 'country = "DE"'})
    SegmentMember.unscoped.create(
        tenant=tenant, segment=seg, user=EndUser.objects.for_tenant(tenant).get(external_id="vip")
    )

    def items(user, expression):  # noqa: ANN001, ANN202
        r = api_client.get(f"/api/v1/users/{user}/recommendations", {"filter": expression})
        assert r.status_code == 200, r.json()
        return sorted(i["item_id"] for i in r.json()["items"])

    rule = 'user.segment = "vips" or price < 10'  # VIPs see everything, others the cheap items
    assert items("vip", rule) == ["cheap", "dear"]
    assert items("pleb", rule) == ["cheap"]
    assert items("pleb", 'user.segment != "vips"') == ["cheap", "dear"]
    assert items("vip", 'user.segment not in ["vips"]') == []
    _segment(tenant, "others", {"where": 'country = "FR"'})
    assert items("vip", f'user.segment in ["others", "{seg.pk}"]') == ["cheap", "dear"]  # by name or id
    assert items("vip", 'user.segment in ["others"]') == []
    bad = api_client.get("/api/v1/users/vip/recommendations", {"filter": 'user.segment = "nope"'})
    assert bad.status_code == 400 and "filter" in bad.json()["error"]["fields"]
    bad = api_client.get("/api/v1/users/vip/recommendations", {"filter": 'user.segment < "vips"'})
    assert bad.status_code == 400 and "filter" in bad.json()["error"]["fields"]
    # No requesting user on /popular, and analytics filters run in SQL over many users: refused.
    bad = api_client.get("/api/v1/popular", {"filter": 'user.segment = "vips"'})
    assert bad.status_code == 400 and "requesting user" in bad.json()["error"]["fields"]["filter"][0]
    bad = api_client.get("/api/v1/trending", {"filter": 'user.segment = "vips"'})
    assert bad.status_code == 400 and "filter" in bad.json()["error"]["fields"]


def test_beat_refresh_asks_for_stale_segments_only(tenant, other_tenant, eager, monkeypatch):
    asked = []
    monkeypatch.setattr(tasks.segment_compute_task, "delay", asked.append)
    fresh = _segment(tenant, "fresh", RULE)
    Segment.objects.for_tenant(tenant).filter(pk=fresh.pk).update(computed_at=timezone.now())
    stale = _segment(tenant, "stale", RULE)
    Segment.objects.for_tenant(tenant).filter(pk=stale.pk).update(
        computed_at=timezone.now() - dt.timedelta(hours=2)
    )
    never = _segment(other_tenant, "never", RULE)
    with eager(execute=True):
        assert tasks.segments_refresh() == 2
    assert sorted(asked) == sorted([stale.pk, never.pk])


# ---------------------------------------------------------------- console
def test_console_validates_the_definition_and_recomputes(admin_client, tenant, eager, monkeypatch):
    add = "/admin/analytics/segment/add/"
    bad = {
        "tenant": tenant.pk,
        "name": "x",
        "kind": "rule",
        "definition": '{"events": [{"type": "purchase", "days": 3, "op": "~", "count": 1}]}',
    }
    r = admin_client.post(add, bad)
    assert r.status_code == 200  # the form again, with the error on the definition field
    errors = r.context["adminform"].form.errors
    assert "definition" in errors and "definition.events[0].op" in errors["definition"][0]
    assert not Segment.objects.for_tenant(tenant).exists()
    asked = []
    monkeypatch.setattr(tasks.segment_compute_task, "delay", asked.append)
    good = {**bad, "definition": '{"where": "country = \\"DE\\""}'}
    with eager(execute=True):
        r = admin_client.post(add, good)
    assert r.status_code == 302
    seg = Segment.objects.for_tenant(tenant).get()
    assert (seg.definition, asked) == ({"where": 'country = "DE"', "match": "all"}, [seg.pk])
    with eager(execute=True):
        r = admin_client.post(
            "/admin/analytics/segment/", {"action": "recompute", "_selected_action": [seg.pk]}
        )
    assert r.status_code == 302 and asked == [seg.pk, seg.pk]
    page = admin_client.get(f"/admin/analytics/segment/{seg.pk}/change/").content.decode()
    assert "computed at" in page.lower() and 'name="size"' not in page  # shown, not editable
