"""Every admin page, walked as a staff user of tenant A only: nothing of tenant B is listed, readable or writable.

The walk enumerates ``admin.site._registry`` and each admin's ``get_urls()``,
so an admin added later is walked without editing this file. The user holds
every model permission Django has (the strongest staff user there is) and is
logged in through the login form's session, as an operator would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.contrib.auth.models import Permission, User
from django.db import models
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from platform_core.analytics.models import Segment, SegmentMember
from platform_core.catalog.models import EndUser
from platform_core.console.scoping import tenant_id_of
from platform_core.jobs import monitoring
from platform_core.jobs.models import ModelVersion, TenantSchedule, TrainingJob, VersionState
from platform_core.plugins.services import tenant_config_update
from platform_core.profiles.models import UserProfile
from platform_core.serving.models import ModelVersionServingStats, RecommendationFeedback
from platform_core.tenancy.models import ApiKey, Tenant, TenantMembership
from tests.factories import ApiKeyFactory, EventFactory, StaffUserFactory, TenantFactory

pytestmark = pytest.mark.django_db

#: Strings of tenant B (and of Celery's tables) that no page may show tenant A's operator.
B_MARKERS = ("tenant-b", "Tenant B", "bbbsecret", "bob-of-b")
SUPERUSER_ONLY_APPS = {"auth", "django_celery_results", "django_celery_beat"}
STANDARD_VIEWS = {"changelist", "add", "change", "delete", "history", "autocomplete"}


def _seed(tenant: Tenant, tag: str, staff: str) -> None:
    """One row of every tenant-owned model for ``tenant``; ``tag`` is in every text field."""
    event = EventFactory(
        tenant=tenant,
        event_id=f"{tag}-event",
        user__external_id=f"{tag}-user",
        item__external_id=f"{tag}-item",
    )
    ApiKeyFactory(tenant=tenant, name=f"{tag}-key")
    tenant_config_update(tenant=tenant, values={"promotion_boost": 0.3})
    job = TrainingJob.unscoped.create(tenant=tenant, requested_by=f"{tag}-requester", error=f"{tag}-error")
    version = ModelVersion.unscoped.create(
        tenant=tenant, job=job, algorithm="transformer", artifact_path=f"{tag}/v1", state=VersionState.ACTIVE
    )
    TenantSchedule.objects.create(tenant=tenant)
    UserProfile.unscoped.create(tenant=tenant, user=event.user, segment=f"{tag}-seg", model_version=version)
    ModelVersionServingStats.unscoped.create(tenant=tenant, model_version=version, clicks=3)
    RecommendationFeedback.unscoped.create(
        tenant=tenant,
        user=event.user,
        model_version=version,
        recommendation_key=f"{tag}-rec",
        item_external_id=f"{tag}-fb-item",
        rank=1,
        action="click",
        served_at=timezone.now(),
    )
    segment = Segment.unscoped.create(
        tenant=tenant, name=f"{tag}-segment", definition={"where": 'country = "DE"'}
    )
    SegmentMember.unscoped.create(tenant=tenant, segment=segment, user=event.user)
    TenantMembership.objects.create(tenant=tenant, user=StaffUserFactory(username=staff))


@pytest.fixture
def two_tenants(db: None) -> tuple[Tenant, Tenant]:
    a = TenantFactory(slug="tenant-a", name="Tenant A", domain="ecommerce")
    b = TenantFactory(slug="tenant-b", name="Tenant B", domain="ecommerce")
    _seed(a, "aaa", "alice-of-a")
    _seed(b, "bbbsecret", "bob-of-b")
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(
        name="bbbsecret-periodic", task="jobs.train_model", interval=every, args="[1]"
    )
    TaskResult.objects.create(
        task_id="t-1", task_name="profiles.refresh_users", task_args="[2, ['bbbsecret']]"
    )
    return a, b


@pytest.fixture
def staff_a(two_tenants: tuple[Tenant, Tenant]) -> User:
    """Tenant A's operator, holding every model permission there is."""
    user = User.objects.get(username="alice-of-a")
    user.set_password("pw-for-tests")
    user.save()
    user.user_permissions.set(Permission.objects.all())
    return User.objects.get(pk=user.pk)  # no permission cache


@pytest.fixture
def client_a(staff_a: User) -> Client:
    client = Client()
    response = client.post(
        reverse("admin:login"), {"username": "alice-of-a", "password": "pw-for-tests", "next": "/admin/"}
    )
    assert response.status_code == 302, "the login form must accept tenant A's operator"
    return client


@pytest.fixture(autouse=True)
def _workers_running_both_tenants_tasks(monkeypatch: pytest.MonkeyPatch, two_tenants: Any) -> None:
    """The monitoring page's broker and workers, faked: a worker runs a task of each tenant."""
    a, b = two_tenants
    job_of = {t: TrainingJob.unscoped.get(tenant=t).pk for t in (a, b)}
    active = [
        {"name": "jobs.train_model", "id": "ta", "args": [job_of[a]]},
        {"name": "jobs.train_model", "id": "tb", "args": [job_of[b]]},
        {"name": "profiles.refresh_users", "id": "rb", "args": [b.pk, ["bbbsecret-user"]]},
        {"name": "profiles.refresh_users", "id": "ra", "args": [a.pk, ["aaa-user"]]},
        {"name": "celery.chord_unlock", "id": "cx", "args": ["bbbsecret-group"]},
    ]

    def fake(*, timeout: float = 1.0) -> monitoring.CeleryStatus:
        status = monitoring.CeleryStatus(broker="memory://", queues={"default": 0})
        status.workers["w1"] = {
            "active": [dict(t) for t in active],
            "queues": ["default"],
            "pool": 1,
            "pid": 1,
        }
        return status

    monkeypatch.setattr(monitoring, "celery_status_get", fake)


def _is_b(model: type[models.Model], obj: Any, b: Tenant) -> bool:
    """A row tenant A's operator must never reach: B's, or any row of a superuser-only model."""
    if model._meta.app_label in SUPERUSER_ONLY_APPS:
        return True
    if model is TenantMembership:
        return True  # memberships are granted by superusers only
    return tenant_id_of(obj) == b.pk


def _rows(model: type[models.Model]) -> list[Any]:
    return list(model._default_manager.order_by("pk"))


def _db_state() -> dict[str, list[dict[str, Any]]]:
    """Every row of every model the console shows (what a refused write must leave alone)."""
    return {m._meta.label: list(m._default_manager.order_by("pk").values()) for m in admin.site._registry}


def _url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _assert_shows_nothing_of_b(client: Client, url: str, b_urls: list[str], ok: set[int]) -> None:
    response = client.get(url)
    assert response.status_code in ok, (url, response.status_code)
    if response.status_code == 302:
        response = client.get(response["Location"])
        assert response.status_code == 200, (url, response.status_code)
    html = response.content.decode()
    for marker in (*B_MARKERS, *b_urls):
        assert marker not in html, f"{url} shows {marker!r}"


def _custom_urls(model_admin: admin.ModelAdmin) -> Iterator[URLPattern]:
    for pattern in model_admin.get_urls():
        name = getattr(pattern, "name", None) or ""
        if isinstance(pattern, URLPattern) and name.rsplit("_", 1)[-1] not in STANDARD_VIEWS:
            yield pattern


def _b_change_urls(b: Tenant) -> list[str]:
    return [
        _url(model, "change", obj.pk)
        for model in admin.site._registry
        for obj in _rows(model)
        if _is_b(model, obj, b)
    ]


def test_every_page_shows_nothing_of_tenant_b(client_a: Client, two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    b_urls = _b_change_urls(b)
    index = client_a.get("/admin/").content.decode()
    assert "/admin/catalog/enduser/" in index  # the walk sees real pages
    assert not any(f"/admin/{app}/" in index for app in SUPERUSER_ONLY_APPS)
    walked = 0
    for model, model_admin in admin.site._registry.items():
        superuser_only = model._meta.app_label in SUPERUSER_ONLY_APPS or model is TenantMembership
        listing = {403} if superuser_only else {200}
        queries = ["", "?q=tenant", "?q=bbb", f"?tenant__id__exact={b.pk}", "?all="]
        for query in queries:
            _assert_shows_nothing_of_b(client_a, _url(model, "changelist") + query, b_urls, listing | {302})
        _assert_shows_nothing_of_b(client_a, _url(model, "add"), b_urls, {200, 403})
        for obj in _rows(model):
            foreign = _is_b(model, obj, b)
            for view in ("change", "delete", "history"):
                ok = {302, 403, 404} if foreign else {200, 403}
                _assert_shows_nothing_of_b(client_a, _url(model, view, obj.pk), b_urls, ok)
                walked += 1
        for pattern in _custom_urls(model_admin):
            if pattern.pattern.converters and pattern.name:  # unnamed: Django's own redirect to 'change'
                # A page of one row (the tenant's analytics page): walked with every row's id.
                for obj in _rows(model):
                    ok = {403, 404} if _is_b(model, obj, b) else {200, 403}
                    url = reverse(f"admin:{pattern.name}", args=[obj.pk])
                    _assert_shows_nothing_of_b(client_a, url, b_urls, ok)
                    walked += 1
                continue
            if pattern.pattern.converters:
                continue
            url = reverse(f"admin:{pattern.name}")
            for query in ("", "?tenant=tenant-b", "?tenant=*"):
                _assert_shows_nothing_of_b(client_a, url + query, b_urls, {200, 403})
            walked += 1
    for app_label in {m._meta.app_label for m in admin.site._registry}:
        hidden = app_label in SUPERUSER_ONLY_APPS
        _assert_shows_nothing_of_b(client_a, f"/admin/{app_label}/", b_urls, {404} if hidden else {200})
    assert walked > 30


def test_autocomplete_offers_nothing_of_tenant_b(client_a: Client, two_tenants: Any) -> None:
    # The site-wide view behind autocomplete widgets, asked for every foreign key of every admin.
    answered = 0
    for model in admin.site._registry:
        for field in model._meta.fields:
            if not field.is_relation:
                continue
            query = {"app_label": model._meta.app_label, "model_name": model._meta.model_name}
            response = client_a.get(
                reverse("admin:autocomplete"), {**query, "field_name": field.name, "term": ""}
            )
            assert response.status_code in (200, 403, 404)
            assert not any(marker in response.content.decode() for marker in B_MARKERS)
            answered += response.status_code == 200 and bool(response.json()["results"])
    assert answered  # some foreign keys do offer rows: A's


def test_scoped_inlines_list_and_offer_only_the_operators_rows(staff_a: User, two_tenants: Any) -> None:
    from platform_core.console.scoping import TenantScopedInline
    from platform_core.plugins.models import TenantConfig, TenantConfigChange

    class ChangesInline(TenantScopedInline):
        model = TenantConfigChange

    inline = ChangesInline(TenantConfig, admin.site)
    request = _staff_request(staff_a)
    a, b = two_tenants
    assert {row.tenant_id for row in inline.get_queryset(request)} == {a.pk}
    choices = inline.formfield_for_foreignkey(TenantConfigChange._meta.get_field("config"), request)
    assert {row.tenant_id for row in choices.queryset} == {a.pk}
    b_row = TenantConfigChange.unscoped.get(tenant=b)
    assert not inline.has_view_permission(request, b_row.config)
    assert inline.has_view_permission(request, TenantConfig.unscoped.get(tenant=a))


def test_monitoring_shows_only_tenant_a_task_arguments(client_a: Client, two_tenants: Any) -> None:
    html = client_a.get(reverse("admin:jobs_monitoring")).content.decode()
    assert "aaa-user" in html  # the page shows A's own tasks...
    assert "bbbsecret" not in html and "3 task(s) of other tenants" in html  # ...and only counts the rest
    assert "/admin/django_celery_results/" not in html


def test_custom_pages_need_the_view_permission(staff_a: User, two_tenants: Any) -> None:
    staff_a.user_permissions.set(
        Permission.objects.exclude(codename__in=["view_trainingjob", "view_modelversion"])
    )
    staff_a.user_permissions.remove(
        *Permission.objects.filter(codename__in=["change_trainingjob", "change_modelversion"])
    )
    client = Client()
    client.force_login(staff_a)
    assert client.get(reverse("admin:jobs_monitoring")).status_code == 403
    assert client.get(reverse("admin:jobs_modelversion_chart")).status_code == 403


def test_a_superuser_sees_both_tenants_and_celery(two_tenants: Any) -> None:
    # The markers would be found if a page showed them: the walk above can fail.
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    assert "bbbsecret-user" in client.get(_url(EndUser, "changelist")).content.decode()
    assert "bbbsecret" in client.get(reverse("admin:jobs_monitoring")).content.decode()
    for model in (TaskResult, PeriodicTask, IntervalSchedule, User):
        assert client.get(_url(model, "changelist")).status_code == 200


# --- writes -----------------------------------------------------------------


def _staff_request(user: User, method: str = "get") -> Any:
    request = getattr(RequestFactory(), method)("/admin/")
    request.user = user
    return request


def _widget_data(name: str, widget: Any, value: Any) -> dict[str, list[str]]:
    """What a browser sends for one field: read back from the widget's own rendering context."""
    if isinstance(widget, RelatedFieldWidgetWrapper):
        widget = widget.widget
    out: dict[str, list[str]] = {}
    context = widget.get_context(name, value, {})["widget"]
    for sub in context.get("subwidgets") or [context]:
        if "optgroups" in sub:
            chosen = [str(o["value"]) for _, opts, _ in sub["optgroups"] for o in opts if o["selected"]]
            out[sub["name"]] = chosen
        elif sub.get("type") == "checkbox":
            if sub["attrs"].get("checked"):
                out[sub["name"]] = ["on"]
        elif sub.get("value") is not None:
            out[sub["name"]] = [str(sub["value"])]
    return out


def _form_data(form_class: Any, row: Any, prefix: str = "") -> dict[str, list[str]]:
    form = form_class(instance=row, prefix=prefix or None)
    data: dict[str, list[str]] = {}
    for bound in form:
        data.update(_widget_data(bound.html_name, bound.field.widget, bound.value()))
    return data


def _management_data(model_admin: admin.ModelAdmin, request: Any, obj: Any) -> dict[str, str]:
    data = {}
    for formset, _inline in model_admin.get_formsets_with_inlines(request, obj):
        prefix = formset.get_default_prefix()
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
        data.update({f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"})
    return data


def _retarget(
    data: dict[str, list[str]], form_class: Any, tenant: Tenant, b: Tenant, prefix: str = ""
) -> bool:
    """Point the tenant field at ``tenant`` and every other foreign key at a row of B; True if any."""
    from django.forms import ModelChoiceField

    other = False
    for name, field in form_class.base_fields.items():
        if not isinstance(field, ModelChoiceField):
            continue
        key = f"{prefix}-{name}" if prefix else name
        target = field.queryset.model
        if target is Tenant:
            data[key] = [str(tenant.pk)]
            continue
        b_rows = [r for r in _rows(target) if _is_b(target, r, b)]
        if b_rows:
            data[key] = [str(b_rows[0].pk)]
            other = True
    return other


def _template_row(model: type[models.Model], b: Tenant) -> Any:
    rows = _rows(model)
    return next((r for r in rows if _is_b(model, r, b)), rows[0] if rows else model())


def test_no_write_reaches_tenant_b(client_a: Client, staff_a: User, two_tenants: Any) -> None:
    a, b = two_tenants
    request = _staff_request(staff_a)
    before = _db_state()
    tried = 0
    for model, model_admin in admin.site._registry.items():
        b_rows = [r for r in _rows(model) if _is_b(model, r, b)]
        for row in b_rows:
            # change, delete and every action, each aimed at B's row
            change = _form_data(model_admin.get_form(request, row, change=True), row)
            client_a.post(_url(model, "change", row.pk), {**change, "_save": "Save"})
            client_a.post(_url(model, "delete", row.pk), {"post": "yes"})
            for action in model_admin.get_actions(request) or {"delete_selected": None}:
                payload = {"action": action, "_selected_action": [row.pk], "post": "yes", "index": 0}
                client_a.post(_url(model, "changelist"), payload)
            tried += 1
        if b_rows and model_admin.list_editable:
            form_class = model_admin.get_changelist_form(request)
            rows = _form_data(form_class, b_rows[0], prefix="form-0")
            rows["form-0-id"] = [str(b_rows[0].pk)]
            counts = {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MAX_NUM_FORMS": "1000"}
            client_a.post(
                _url(model, "changelist"), {**rows, **counts, "form-MIN_NUM_FORMS": "0", "_save": "Save"}
            )
        if not model_admin.has_add_permission(request):
            continue
        # adds: one for tenant B, one for tenant A naming B's related rows
        form_class = model_admin.get_form(request, None, change=False)
        for tenant in (b, a):
            data = _form_data(form_class, _template_row(model, b))
            if not _retarget(data, form_class, tenant, b) and tenant is a:
                continue
            response = client_a.post(
                _url(model, "add"), {**data, **_management_data(model_admin, request, None)}
            )
            assert response.status_code in (200, 403), (model, tenant, response.status_code)
            tried += 1
    assert tried > 15
    assert _db_state() == before


def test_the_write_walk_can_write_tenant_a(client_a: Client, staff_a: User, two_tenants: Any) -> None:
    # The same form data, aimed at A's own rows, is accepted: the refusals above are the scoping's.
    a, _ = two_tenants
    request = _staff_request(staff_a)
    schedule = TenantSchedule.objects.get(tenant=a)
    model_admin = admin.site._registry[TenantSchedule]
    data = _form_data(model_admin.get_form(request, schedule, change=True), schedule)
    data["retrain_every_hours"] = ["12"]
    response = client_a.post(_url(TenantSchedule, "change", schedule.pk), {**data, "_save": "Save"})
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.retrain_every_hours == 12
    key_admin = admin.site._registry[ApiKey]
    form_class = key_admin.get_form(request, None, change=False)
    data = _form_data(form_class, ApiKey.objects.get(tenant=a, name="aaa-key"))
    response = client_a.post(_url(ApiKey, "add"), data)
    assert "api-key-secret" in response.content.decode()
    assert ApiKey.objects.filter(tenant=a, name="aaa-key").count() == 2


def test_a_form_refuses_a_related_row_of_another_tenant_naming_the_field(
    client_a: Client, two_tenants: Any
) -> None:
    a, b = two_tenants
    TenantSchedule.objects.filter(tenant=b).delete()  # else "tenant" is refused as taken
    response = client_a.post(_url(TenantSchedule, "add"), {"tenant": b.pk, "retrain_every_hours": 1})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "tenant" in errors
    assert not TenantSchedule.objects.filter(tenant=b, retrain_every_hours=1).exists()


def test_list_filters_name_only_the_operators_tenants(client_a: Client, staff_a: User) -> None:
    # A filter with a single choice is not drawn: give the operator a second tenant.
    c = TenantFactory(slug="tenant-c", domain="ecommerce")
    TenantMembership.objects.create(tenant=c, user=staff_a)
    ApiKeyFactory(tenant=c, name="ccc-key")
    html = client_a.get(_url(ApiKey, "changelist")).content.decode()
    filters = html[html.index('id="changelist-filter"') :]
    assert f"?tenant__id__exact={c.pk}" in filters and "tenant-a" in filters and "tenant-c" in filters
    assert "tenant-b" not in filters


def test_celery_models_are_superuser_only(client_a: Client, two_tenants: Any) -> None:
    for model in (TaskResult, PeriodicTask, IntervalSchedule):
        assert client_a.get(_url(model, "changelist")).status_code == 403
        assert client_a.get(_url(model, "add")).status_code == 403
    row = PeriodicTask.objects.get(name="bbbsecret-periodic")
    assert client_a.post(_url(PeriodicTask, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert PeriodicTask.objects.filter(pk=row.pk).exists()


def test_an_inline_save_cannot_touch_another_tenants_row(staff_a: User, two_tenants: Any) -> None:
    from types import SimpleNamespace

    from django.core.exceptions import PermissionDenied

    from platform_core.plugins.models import TenantConfig, TenantConfigChange

    a, b = two_tenants
    model_admin = admin.site._registry[TenantConfig]
    parent = SimpleNamespace(instance=TenantConfig.unscoped.get(tenant=a))
    saved: list[Any] = []

    def formset_of(row: Any) -> Any:
        inline_form = SimpleNamespace(instance=row, has_changed=lambda: True)
        return SimpleNamespace(forms=[inline_form], save=lambda: saved.append(row))

    foreign = TenantConfigChange.unscoped.get(tenant=b)
    with pytest.raises(PermissionDenied):
        model_admin.save_formset(_staff_request(staff_a), parent, formset_of(foreign), True)
    new = TenantConfigChange(config=parent.instance)
    model_admin.save_formset(_staff_request(staff_a), parent, formset_of(new), True)
    assert saved == [new] and new.tenant_id == a.pk  # a new inline row takes its parent's tenant
