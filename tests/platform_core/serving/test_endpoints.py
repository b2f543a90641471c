"""Similar items, popular, profile, risk, feedback; domain rules in served results; isolation."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pytest

from platform_core.catalog.models import EndUser
from platform_core.jobs.models import ModelVersion
from platform_core.profiles.models import UserProfile
from platform_core.serving.models import ModelVersionServingStats, RecommendationFeedback
from platform_core.serving.services import serving_stats_flush
from tests.factories import EndUserFactory, EventFactory, ItemFactory, TenantFactory
from tests.platform_core.serving.conftest import Shop, events_make

pytestmark = pytest.mark.django_db

NOW = dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- similar
def test_similar_items_are_the_nearest_by_inner_product(api_client, shop: Shop) -> None:
    body = api_client.get("/api/v1/items/i4/similar?k=4").json()
    v = shop.built.vectors
    scores = v @ v[4]
    scores[4] = -np.inf
    want = [shop.item_ids[i] for i in np.argsort(-scores, kind="stable")[:4]]
    assert [i["item_id"] for i in body["items"]] == want
    assert body["items"][0]["score"] == pytest.approx(float(scores[int(want[0][1:])]), abs=1e-5)
    assert body["strategy"] == "similar"


def test_similar_to_a_new_item_goes_through_its_attributes(api_client, shop: Shop) -> None:
    ItemFactory(tenant=shop.tenant, external_id="new-bag", attributes={"category": "bags", "in_stock": True})
    body = api_client.get("/api/v1/items/new-bag/similar?k=3").json()
    v = shop.built.vectors
    query = (v[[n for n in range(20) if n % 2]].mean(axis=0) + v.mean(axis=0)) / 2
    want = [shop.item_ids[i] for i in np.argsort(-(v @ query), kind="stable")[:3]]
    assert body["strategy"] == "attribute_similarity"
    assert [i["item_id"] for i in body["items"]] == want


def test_similar_applies_filters_and_refuses_bad_ones(api_client, shop: Shop) -> None:
    body = api_client.get("/api/v1/items/i4/similar", {"k": 5, "filter": 'category = "bags"'}).json()
    assert len(body["items"]) == 5 and all(int(i["item_id"][1:]) % 2 for i in body["items"])
    r = api_client.get("/api/v1/items/i4/similar", {"filter": "weight > 3"})
    assert r.status_code == 400 and "weight" in r.json()["error"]["fields"]["filter"][0]
    assert api_client.get("/api/v1/items/i4/similar?k=0").status_code == 400
    assert api_client.get("/api/v1/items/nope/similar").status_code == 404


# --------------------------------------------------------------------------- popular
def test_popular_counts_weighted_events_in_the_window(api_client, shop: Shop) -> None:
    u = EndUserFactory(tenant=shop.tenant)
    events_make(shop.tenant, u, ["i1", "i1", "i3"], start=NOW - dt.timedelta(hours=2))  # views: 1 each
    events_make(shop.tenant, u, ["i3"], ["purchase"], start=NOW - dt.timedelta(hours=1))  # purchase: 5
    events_make(shop.tenant, u, ["i5"] * 9, start=NOW - dt.timedelta(days=10))  # outside 7d
    body = api_client.get("/api/v1/popular?window=7d&k=5").json()
    assert body["items"] == [
        {"item_id": "i3", "score": 6.0, "rank": 1},
        {"item_id": "i1", "score": 2.0, "rank": 2},
    ]
    body = api_client.get("/api/v1/popular", {"window": "30d", "filter": "category = 'shoes'"}).json()
    assert body["items"] == []  # i1, i3, i5 are all bags
    body = api_client.get("/api/v1/popular", {"window": "30d"}).json()
    assert [i["item_id"] for i in body["items"]] == ["i5", "i3", "i1"]


@pytest.mark.parametrize("window", ["7", "7y", "0d", "400d", "-1d"])
def test_popular_refuses_a_bad_window(api_client, shop: Shop, window: str) -> None:
    r = api_client.get("/api/v1/popular", {"window": window})
    assert r.status_code == 400
    assert "window" in r.json()["error"]["fields"]


# --------------------------------------------------------------------------- profile
def test_profile_shows_the_persona_and_the_embedding_on_request(api_client, shop: Shop) -> None:
    u = EndUserFactory(tenant=shop.tenant, external_id="pat")
    UserProfile.unscoped.create(
        tenant=shop.tenant,
        user=u,
        interests=[{"key": "category:shoes", "weight": 0.75}],
        trajectory={"recent_items": ["i2"]},
        activity={"hours": {"20": 3}},
        segment="loyal",
        features={"frequency": 2},
        n_events=3,
        embedding=np.asarray([0.5, -1.0], dtype="<f4").tobytes(),
        model_version=shop.built.version,
        computed_at=NOW,
    )
    body = api_client.get("/api/v1/users/pat/profile").json()
    assert body["interests"] == [{"key": "category:shoes", "weight": 0.75}]
    assert body["segment"] == "loyal" and body["features"] == {"frequency": 2}
    assert body["model_version"] == shop.built.version.pk
    assert "embedding" not in body
    body = api_client.get("/api/v1/users/pat/profile?embedding=true").json()
    assert body["embedding"] == [0.5, -1.0]
    EndUserFactory(tenant=shop.tenant, external_id="no-profile")
    r = api_client.get("/api/v1/users/no-profile/profile")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_profile"


# --------------------------------------------------------------------------- risk
def test_risk_score_names_its_reasons(api_client_for) -> None:
    bank = TenantFactory(slug="bank", domain="finance_risk")
    client = api_client_for(bank)
    u = EndUserFactory(tenant=bank, external_id="acct-1")
    for n in range(6):  # 6 payments in 5 minutes > velocity_max_count 5 (weight 0.45)
        EventFactory(
            tenant=bank, user=u, item=None, type="transaction", timestamp=NOW + dt.timedelta(minutes=n),
            context={"amount": 20.0, "currency": "EUR", "channel": "online"},
        )  # fmt: skip
    body = client.get("/api/v1/users/acct-1/risk").json()
    assert body["score"] == pytest.approx(0.45)
    assert [r["code"] for r in body["reasons"]] == ["velocity"]
    assert body["model_version"] is None
    assert client.get("/api/v1/users/ghost/risk").status_code == 404


def test_risk_on_a_domain_without_a_scorer_says_so(api_client, shop: Shop) -> None:
    EndUserFactory(tenant=shop.tenant, external_id="x")
    r = api_client.get("/api/v1/users/x/risk")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "risk_not_supported"
    assert "'ecommerce' has no risk scorer" in r.json()["error"]["message"]


# --------------------------------------------------------------------------- feedback
def test_feedback_is_recorded_once_and_feeds_online_metrics(api_client, shop: Shop) -> None:
    u = EndUserFactory(tenant=shop.tenant, external_id="fb")
    events_make(shop.tenant, u, ["i1", "i2"])
    rec = api_client.get("/api/v1/users/fb/recommendations?k=4").json()
    second = rec["items"][1]["item_id"]
    payload = {"recommendation_id": rec["recommendation_id"], "item_id": second, "action": "click"}
    r = api_client.post("/api/v1/feedback", payload, format="json")
    assert r.status_code == 201, r.json()
    assert r.json() == {
        "item_id": second,
        "action": "click",
        "rank": 2,
        "model_version": shop.built.version.pk,
        "recorded": True,
    }
    again = api_client.post("/api/v1/feedback", payload, format="json")
    assert again.status_code == 200 and again.json()["recorded"] is False
    api_client.post("/api/v1/feedback", {**payload, "action": "convert"}, format="json")
    serving_stats_flush()
    stats = ModelVersionServingStats.objects.for_tenant(shop.tenant).get(model_version=shop.built.version)
    assert (stats.lists_served, stats.items_shown, stats.clicks, stats.conversions) == (1, 4, 1, 1)
    assert stats.ctr == pytest.approx(0.25) and stats.conversion_rate == pytest.approx(0.25)
    # Erasure reaches feedback through the user.
    EndUser.objects.for_tenant(shop.tenant).filter(external_id="fb").delete()
    assert not RecommendationFeedback.unscoped.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recommendation_id": "forged"}, "recommendation_id"),
        ({"item_id": "i19-not-served"}, "item_id"),
        ({"action": "like"}, "action"),
        ({"action": None}, "action"),
    ],
)
def test_bad_feedback_is_refused_and_writes_nothing(api_client, shop: Shop, change, field) -> None:
    u = EndUserFactory(tenant=shop.tenant, external_id="fb2")
    events_make(shop.tenant, u, ["i1"])
    rec = api_client.get("/api/v1/users/fb2/recommendations?k=2").json()
    payload = {
        "recommendation_id": rec["recommendation_id"],
        "item_id": rec["items"][0]["item_id"],
        "action": "click",
    }
    r = api_client.post("/api/v1/feedback", {**payload, **change}, format="json")
    assert r.status_code == 400
    assert field in r.json()["error"]["fields"]
    assert not RecommendationFeedback.unscoped.exists()


def test_feedback_accepts_an_ingest_or_a_read_key(api_client_for, shop: Shop) -> None:
    u = EndUserFactory(tenant=shop.tenant, external_id="fb3")
    events_make(shop.tenant, u, ["i1"])
    rec = api_client_for(shop.tenant, scopes=("read",)).get("/api/v1/users/fb3/recommendations?k=2").json()
    for n, scopes in enumerate([("ingest",), ("read",)]):
        payload = {
            "recommendation_id": rec["recommendation_id"],
            "item_id": rec["items"][n]["item_id"],
            "action": "click",
        }
        r = api_client_for(shop.tenant, scopes=scopes).post("/api/v1/feedback", payload, format="json")
        assert r.status_code == 201


# --------------------------------------------------------------------------- domain rules
def test_social_never_serves_the_users_own_post(api_client_for, model_version_make) -> None:
    net = TenantFactory(slug="net", domain="social")
    ids = [f"p{n}" for n in range(12)]
    for n, post in enumerate(ids):
        author = "me" if n % 3 == 0 else f"author{n}"
        ItemFactory(
            tenant=net,
            external_id=post,
            attributes={"author_id": author, "topic": "t", "created_at": NOW.isoformat()},
        )
    model_version_make(net, ids, seed=5)
    me = EndUserFactory(tenant=net, external_id="me")
    events_make(net, me, ["p1", "p2", "p4"], start=NOW - dt.timedelta(hours=1))
    body = api_client_for(net).get("/api/v1/users/me/recommendations?k=12").json()
    served = [i["item_id"] for i in body["items"]]
    assert served and not {"p0", "p3", "p6", "p9"} & set(served)


def test_healthcare_never_serves_a_contraindicated_item(api_client_for, model_version_make) -> None:
    clinic = TenantFactory(slug="clinic", domain="healthcare")
    ids = [f"c{n}" for n in range(10)]
    for n, item_id in enumerate(ids):
        ItemFactory(tenant=clinic, external_id=item_id, attributes={
            "kind": "medication", "title": item_id, "condition_tags": ["asthma"],
            "contraindication_tags": ["pregnancy"] if n % 2 else [], "ingredients": ["penicillin"] if n == 4 else [],
        })  # fmt: skip
    model_version_make(clinic, ids, seed=7)
    patient = EndUserFactory(
        tenant=clinic,
        external_id="pt",
        attributes={"age_band": "18-39", "conditions": ["pregnancy"], "allergies": ["penicillin"]},
    )
    events_make(clinic, patient, ["c1", "c2"], ["view", "view"], start=NOW)
    client = api_client_for(clinic)
    for url in ("/api/v1/users/pt/recommendations?k=10", "/api/v1/items/c2/similar?k=9&user=pt"):
        body = client.get(url).json()
        served = [i["item_id"] for i in body["items"]]
        assert served and all(int(i[1:]) % 2 == 0 and i != "c4" for i in served), served
        assert all(i["flags"]["requires_clinician_review"] for i in body["items"])


# --------------------------------------------------------------------------- isolation
def test_another_tenants_key_sees_nothing_of_tenant_a(api_client, other_client, shop: Shop) -> None:
    u = EndUserFactory(tenant=shop.tenant, external_id="alice")
    events_make(shop.tenant, u, ["i1", "i2"], start=NOW)
    UserProfile.unscoped.create(tenant=shop.tenant, user=u, segment="s")
    rec = api_client.get("/api/v1/users/alice/recommendations?k=2").json()
    for path in (
        "/api/v1/users/alice/recommendations",
        "/api/v1/users/alice/profile",
        "/api/v1/items/i1/similar",
    ):
        mine = api_client.get(path)
        theirs = other_client.get(path)
        missing = other_client.get(path.replace("alice", "zz-missing").replace("i1", "zz-missing"))
        assert mine.status_code == 200, (path, mine.json())
        assert theirs.status_code == missing.status_code == 404, path
        assert theirs.json()["error"]["message"] == missing.json()["error"]["message"].replace(
            "zz-missing", "alice" if "users" in path else "i1"
        )
    assert other_client.get("/api/v1/users/alice/risk").status_code == 404
    assert api_client.get("/api/v1/popular?window=30d").json()["items"]
    assert other_client.get("/api/v1/popular?window=30d").json()["items"] == []
    payload = {
        "recommendation_id": rec["recommendation_id"],
        "item_id": rec["items"][0]["item_id"],
        "action": "click",
    }
    theirs = other_client.post("/api/v1/feedback", payload, format="json")
    forged = other_client.post("/api/v1/feedback", {**payload, "recommendation_id": "x"}, format="json")
    assert theirs.status_code == forged.status_code == 400
    assert theirs.json() == forged.json()
    assert not RecommendationFeedback.unscoped.exists()


def test_risk_isolation(api_client_for) -> None:
    a = TenantFactory(slug="bank-a", domain="finance_risk")
    b = TenantFactory(slug="bank-b", domain="finance_risk")
    EndUserFactory(tenant=a, external_id="acct")
    assert api_client_for(a).get("/api/v1/users/acct/risk").status_code == 200
    theirs = api_client_for(b).get("/api/v1/users/acct/risk")
    missing = api_client_for(b).get("/api/v1/users/acct-missing/risk")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"


# --------------------------------------------------------------------------- TF-free web tier
def test_serving_never_imports_tensorflow() -> None:
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'platform_core.settings');"
        "django.setup();"
        "import platform_core.serving.apis, platform_core.serving.selectors, platform_core.serving.model_cache;"
        "import platform_core.urls;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_model_version_rows_stay_untouched_by_serving(shop: Shop) -> None:
    assert ModelVersion.objects.for_tenant(shop.tenant).count() == 1


def test_console_shows_ctr_next_to_the_offline_metric(client, api_client, shop: Shop) -> None:
    from django.contrib.auth.models import User

    from platform_core.serving.selectors import model_version_online_metrics

    u = EndUserFactory(tenant=shop.tenant, external_id="c1")
    events_make(shop.tenant, u, ["i1"])
    rec = api_client.get("/api/v1/users/c1/recommendations?k=5").json()
    api_client.post(
        "/api/v1/feedback",
        {
            "recommendation_id": rec["recommendation_id"],
            "item_id": rec["items"][0]["item_id"],
            "action": "click",
        },
        format="json",
    )
    serving_stats_flush()
    metrics = model_version_online_metrics(tenant=shop.tenant, version_id=shop.built.version.pk)
    assert metrics["ctr"] == pytest.approx(0.2) and metrics["items_shown"] == 5
    admin = User.objects.create_superuser("root", "root@example.com", "pw-for-tests")
    client.force_login(admin)
    page = client.get("/admin/serving/modelversionservingstats/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "20.00%" in html and "val_ndcg@10" in html and "0.3000" in html


def test_transport_drops_routes_beyond_the_radius_of_the_request_location(
    api_client_for, model_version_make
) -> None:
    city = TenantFactory(slug="city", domain="transport")
    ids = [f"r{n}" for n in range(8)]
    for n, item_id in enumerate(ids):
        # Even routes start ≈ 1 km from the request point; odd ones ≈ 11 km, beyond the 5 km default.
        ItemFactory(
            tenant=city,
            external_id=item_id,
            attributes={"kind": "route", "lat": 52.0 + (0.1 if n % 2 else 0.01), "lon": 4.0},
        )
    model_version_make(city, ids, seed=9)
    rider = EndUserFactory(tenant=city, external_id="rider")
    events_make(city, rider, ["r1", "r2"], start=NOW)
    body = (
        api_client_for(city)
        .get("/api/v1/users/rider/recommendations?k=8&lat=52.0&lon=4.0&explain=true")
        .json()
    )
    served = [i["item_id"] for i in body["items"]]
    assert sorted(served) == ["r0", "r2", "r4", "r6"]
    assert all(i["explanation"]["rules"][0]["rule"] == "transport.distance" for i in body["items"])
    # Without a location the radius rule has nothing to measure: every route may be served.
    body = api_client_for(city).get("/api/v1/users/rider/recommendations?k=8").json()
    assert len(body["items"]) == 8


def test_education_blocks_exercises_with_unmet_prerequisites(api_client_for, model_version_make) -> None:
    school = TenantFactory(slug="school", domain="education")
    ids = [f"x{n}" for n in range(8)]
    for n, item_id in enumerate(ids):
        # x4…x7 need x3 first; the learner never completed x3.
        ItemFactory(
            tenant=school,
            external_id=item_id,
            attributes={"kind": "exercise", "prerequisites": ["x3"] if n >= 4 else []},
        )
    model_version_make(school, ids, seed=21)
    learner = EndUserFactory(tenant=school, external_id="kid")
    events_make(school, learner, ["x0", "x5"], start=NOW)
    body = api_client_for(school).get("/api/v1/users/kid/recommendations?k=8").json()
    assert {i["item_id"] for i in body["items"]} <= {"x0", "x1", "x2", "x3"}


def test_finance_never_serves_merchants_or_products_above_the_risk_tolerance(
    api_client_for, model_version_make
) -> None:
    bank = TenantFactory(slug="bank-r", domain="finance_risk")
    ids = [f"f{n}" for n in range(10)]
    for n, item_id in enumerate(ids):
        kind = "merchant" if n == 0 else "product"
        ItemFactory(
            tenant=bank,
            external_id=item_id,
            attributes={"kind": kind, "category": "c", "risk_level": 1 + n % 5},
        )
    model_version_make(bank, ids, seed=22)
    client = EndUserFactory(tenant=bank, external_id="cust", attributes={"risk_tolerance": 2})
    events_make(bank, client, ["f1", "f2"], start=NOW)
    body = api_client_for(bank).get("/api/v1/users/cust/recommendations?k=10").json()
    served = {i["item_id"] for i in body["items"]}
    # risk_level = 1 + n % 5 ≤ 2 → n % 5 in {0, 1}, minus the merchant f0.
    assert served == {"f1", "f5", "f6"}
