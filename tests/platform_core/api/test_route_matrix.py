"""Every route under /api/v1 × every method × every kind of caller.

The routes come from Django's URL resolver, so a new endpoint is covered
without editing this file; only a new kind of path parameter needs a line in
``FILLERS`` (``test_every_path_parameter_has_a_filler`` says which). Until it
has one, its route still gets the 401/403/405 rules and the missing-id check.

The rules asserted (docs/api.md, "Methods and scopes"):

- no key or a bad key: 401, whatever the method;
- a valid key, a method the view does not implement: 405;
- a valid key lacking the scope the view declares for the method: 403
  (HEAD needs GET's scope; OPTIONS needs a valid key only);
- a key with the scope: never 5xx, never 401/403/405; another tenant's id
  answers exactly what a missing id answers (status, and the body when 404);
  HEAD answers what GET answers; OPTIONS lists the allowed methods only;
- every answer but HEAD's is JSON, errors in the one error shape.

Each request runs in a savepoint that is rolled back, so a PUT or DELETE of one
case cannot change the answer of the next.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from platform_core.catalog.models import EndUser, Item
from platform_core.catalog.services import enduser_erase
from platform_core.jobs.models import ModelVersion, TrainingJob, VersionState
from platform_core.tenancy.models import Tenant
from tests.factories import EventFactory, ItemFactory, TenantFactory, api_key_raw

pytestmark = pytest.mark.django_db

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
SCOPED_KEYS = ("ingest", "read", "admin")
BAD_HEADERS = {"no key": None, "bad key": "Api-Key 0123456789ab.not-the-secret"}
MISSING = {"str": "no-such-id-7f3a", "int": "2147483000"}
_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Route:
    """One URL pattern under /api/v1: ``template`` like ``/api/v1/users/{external_id}``."""

    template: str
    params: dict[str, str]  # name → converter
    view: type

    @property
    def resource(self) -> str:
        return self.template.removeprefix("/api/v1/").split("/")[0]

    def url(self, values: dict[str, str]) -> str:
        return self.template.format(**values)

    def implements(self, method: str) -> bool:
        name = "get" if method == "HEAD" else method.lower()  # Django gives a GET view ``head``
        return name in self.view.http_method_names and hasattr(self.view, name)


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def api_v1_routes() -> list[Route]:
    routes = []
    for raw, pattern in _walk(get_resolver().url_patterns, ""):
        if not raw.startswith("api/v1/"):
            continue
        assert "^" not in raw, f"{raw}: a regex route; this test fills path() converters only"
        params = {m["name"]: m["conv"] or "str" for m in _PARAM.finditer(raw)}
        template = "/" + _PARAM.sub(lambda m: "{" + m["name"] + "}", raw)
        routes.append(Route(template, params, pattern.callback.view_class))
    return routes


ROUTES = api_v1_routes()


# -- real objects for path parameters: (resource, parameter) → make one for a tenant, give its id


def _user(tenant: Tenant) -> str:
    return EventFactory(tenant=tenant).user.external_id  # with an event, so serving has something


def _item(tenant: Tenant) -> str:
    return ItemFactory(tenant=tenant).external_id


def _job(tenant: Tenant) -> str:
    return str(TrainingJob.objects.for_tenant(tenant).create(tenant=tenant).pk)


def _version(tenant: Tenant) -> str:
    version = ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant, algorithm="transformer", artifact_path="none/1", state=VersionState.CANDIDATE
    )
    return str(version.pk)


def _erasure(tenant: Tenant) -> str:
    return str(enduser_erase(tenant=tenant, external_id=_user(tenant)).pk)


def _segment(tenant: Tenant) -> str:
    from platform_core.analytics.models import Segment

    definition = {"where": 'country = "DE"'}
    return str(Segment.objects.for_tenant(tenant).create(tenant=tenant, name="s", definition=definition).pk)


FILLERS: dict[tuple[str, str], Callable[[Tenant], str]] = {
    ("analytics", "segment_id"): _segment,
    ("erasures", "erasure_id"): _erasure,
    ("users", "external_id"): _user,
    ("items", "external_id"): _item,
    ("jobs", "job_id"): _job,
    ("models", "version_id"): _version,
}


def test_the_resolver_finds_the_api_routes():
    templates = {r.template for r in ROUTES}
    assert {"/api/v1/events", "/api/v1/users/{external_id}", "/api/v1/jobs/{job_id}"} <= templates
    assert len(ROUTES) >= 14


def test_every_path_parameter_has_a_filler():
    lacking = [(r.template, p) for r in ROUTES for p in r.params if (r.resource, p) not in FILLERS]
    assert not lacking, f"add FILLERS entries (make a real object, return its id) for: {lacking}"


def test_every_implemented_method_declares_a_scope():
    """A method without a declared scope is refused at run time; here it fails at once."""
    undeclared = [
        (r.template, m)
        for r in ROUTES
        for m in METHODS
        if m != "OPTIONS" and r.implements(m) and _declared(r.view, m) is None
    ]
    assert not undeclared


def _declared(view: type, method: str) -> tuple[str, ...] | None:
    """The scopes the view declares for ``method`` (as data), HEAD read as GET."""
    method = "GET" if method == "HEAD" else method
    by_method = getattr(view, "required_scopes", None)
    spec = by_method.get(method, by_method.get("*")) if by_method else getattr(view, "required_scope", None)
    return None if spec is None else (spec,) if isinstance(spec, str) else tuple(spec)


@dataclass
class World:
    """Tenant A (the caller's) and tenant B, with a real object per parameter in each."""

    ids: dict[str, dict[str, str]]  # "own" / "foreign" / "missing" → param → value
    clients: dict[str, APIClient]


def _client(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def _world(route: Route) -> World:
    a = TenantFactory(slug="matrix-a", domain="ecommerce")
    b = TenantFactory(slug="matrix-b", domain="ecommerce")
    ids: dict[str, dict[str, str]] = {"own": {}, "foreign": {}, "missing": {}}
    for name, conv in route.params.items():
        ids["missing"][name] = MISSING.get(conv, MISSING["str"])
        filler = FILLERS.get((route.resource, name))
        if filler is not None:
            ids["own"][name], ids["foreign"][name] = filler(a), filler(b)
    clients = {scope: _client(f"Api-Key {api_key_raw(tenant=a, scopes=[scope])}") for scope in SCOPED_KEYS}
    clients["other tenant"] = _client(f"Api-Key {api_key_raw(tenant=b)}")
    clients.update({name: _client(header) for name, header in BAD_HEADERS.items()})
    return World(ids, clients)


def _call(client: APIClient, method: str, url: str) -> Any:
    """One request, its writes rolled back."""
    with transaction.atomic():
        response = client.generic(method, url, data=b"{}", content_type="application/json")
        transaction.set_rollback(True)
    return response


def _error(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


def _normalised(response: Any, ids: dict[str, str]) -> str:
    text = response.content.decode()
    for value in ids.values():
        text = re.sub(rf"\b{re.escape(value)}\b", "<id>", text)
    return text


class Matrix:
    """Collects every broken rule of one route, so one run names them all."""

    def __init__(self, route: Route, world: World) -> None:
        self.route, self.world, self.failures = route, world, []

    def check(self, ok: bool, method: str, caller: str, what: str) -> None:
        if not ok:
            self.failures.append(f"{method} {self.route.template} as {caller}: {what}")

    def unauthenticated(self, method: str) -> None:
        url = self.route.url(self.world.ids["own"] or self.world.ids["missing"])
        for caller in BAD_HEADERS:
            r = _call(self.world.clients[caller], method, url)
            self.check(r.status_code == 401, method, caller, f"{r.status_code}, not 401")
            if method != "HEAD" and r.status_code == 401:
                self.check(_error(r)["code"] == "unauthenticated", method, caller, "code")

    def scoped(self, method: str, caller: str, allowed: bool) -> None:
        ids = self.world.ids
        missing = _call(self.world.clients[caller], method, self.route.url(ids["missing"]))
        if not self.route.implements(method):
            self.check(missing.status_code == 405, method, caller, f"{missing.status_code}, not 405")
            if method != "HEAD":
                self.check(_error(missing)["code"] == "method_not_allowed", method, caller, "code")
        elif not allowed:
            self.check(missing.status_code == 403, method, caller, f"{missing.status_code}, not 403")
            if method != "HEAD":
                self.check(_error(missing)["code"] == "permission_denied", method, caller, "code")
        else:
            self.allowed(method, caller, missing)

    def allowed(self, method: str, caller: str, missing: Any) -> None:
        status = missing.status_code
        self.check(status < 500 and status not in (401, 403, 405), method, caller, f"missing id: {status}")
        ids = self.world.ids
        # Tenant B's objects are foreign to tenant A's keys, and tenant A's to tenant B's key.
        foreign_ids = ids["own"] if caller == "other tenant" else ids["foreign"]
        if foreign_ids:
            foreign = _call(self.world.clients[caller], method, self.route.url(foreign_ids))
            self.check(
                foreign.status_code == status, method, caller, f"foreign {foreign.status_code} ≠ {status}"
            )
            if status == 404 and method != "HEAD":
                same = _normalised(foreign, foreign_ids) == _normalised(missing, ids["missing"])
                self.check(same, method, caller, "the 404 bodies of a foreign and a missing id differ")
        if method == "OPTIONS":
            body = missing.json()
            self.check(set(body) == {"methods"}, method, caller, f"OPTIONS says more: {body}")
        if method == "HEAD" and ids["own"] and caller != "other tenant":
            get = _call(self.world.clients[caller], "GET", self.route.url(ids["own"]))
            head = _call(self.world.clients[caller], "HEAD", self.route.url(ids["own"]))
            self.check(head.status_code == get.status_code, method, caller, "HEAD ≠ GET on an own id")
            self.check(get.status_code < 500, "GET", caller, f"own id: {get.status_code}")


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.template}" for r in ROUTES])
def test_route_answers_every_method_and_caller_by_the_rules(route):
    matrix = Matrix(route, _world(route))
    for method in METHODS:
        matrix.unauthenticated(method)
        declared = _declared(route.view, method)
        for caller in SCOPED_KEYS:
            allowed = method == "OPTIONS" or caller == "admin" or caller in (declared or ())
            matrix.scoped(method, caller, allowed)
        # The other tenant's key holds every scope: tenant A's ids must read as missing to it.
        matrix.scoped(method, "other tenant", True)
    assert not matrix.failures, "\n".join(matrix.failures)


def test_head_with_an_ingest_key_no_longer_reads(api_client_for):
    """The issue's reproducer: HEAD answered 200 / 404 to an ingest-only key, revealing who exists."""
    tenant = TenantFactory(slug="head-a")
    user = EventFactory(tenant=tenant).user.external_id
    ingest = api_client_for(tenant, scopes=["ingest"])
    for url in (f"/api/v1/users/{user}", f"/api/v1/events?user_id={user}", "/api/v1/items/x"):
        assert ingest.head(url).status_code == 403, url
    assert ingest.head("/api/v1/users/nobody").status_code == 403


def test_tenant_a_objects_survive_every_call_of_tenant_b(api_client_for):
    """Writes of the other tenant's key with A's ids (not rolled back here) leave A's rows alone."""
    a, b = TenantFactory(slug="keep-a"), TenantFactory(slug="keep-b")
    user, item = _user(a), _item(a)
    other = api_client_for(b)
    for method in ("PUT", "DELETE", "POST"):
        other.generic(method, f"/api/v1/users/{user}", b"{}", content_type="application/json")
        other.generic(method, f"/api/v1/items/{item}", b'{"active": false}', content_type="application/json")
    assert EndUser.objects.for_tenant(a).filter(external_id=user).exists()
    assert Item.objects.for_tenant(a).get(external_id=item).active
