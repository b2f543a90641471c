"""The console's analytics page: one per tenant, a form per query, SVG charts and CSV downloads.

``/admin/tenancy/tenant/<id>/analytics/`` is added to the tenant admin by
:func:`analytics_page_register` (called from ``console/admin.py``, the top
layer): the tenant admin's own scoped queryset finds the tenant, so another
tenant's page is a 404 exactly like a missing one, and the page needs the
view permission on tenants. Each form is turned into the API's request body
and goes through the same serializer and selector as the API, so the page
and the API cannot disagree; a refusal becomes a form error naming the field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as DrfValidationError

from platform_core.analytics import apis_insight
from platform_core.analytics import selectors as sel
from platform_core.analytics import validation as v
from platform_core.analytics.console_views import CHARTS, TABLES
from platform_core.analytics.impact import impact_compute
from platform_core.analytics.trajectories import trajectory_compute, user_selection_all, user_selection_ids
from platform_core.common.errors import ServiceError
from platform_core.console.scoping import tenant_ids_for_request
from platform_core.tenancy.models import Tenant

URL_NAME = "tenancy_tenant_analytics"


# ---------------------------------------------------------------- forms
class _RangeForm(forms.Form):
    date_from = forms.DateTimeField(
        required=False, label="from (UTC)", help_text="Default: 30 days before 'to'."
    )
    date_to = forms.DateTimeField(required=False, label="to (UTC, exclusive)", help_text="Default: now.")

    def body(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {"from": d.get("date_from"), "to": d.get("date_to")}


class FunnelForm(_RangeForm):
    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 50}),
        initial="view\npurchase",
        help_text='One event type per line, optionally followed by: where <filter>, e.g. add_to_cart where category = "shoes".',
    )
    window = forms.CharField(initial="7d", max_length=32)
    breakdown = forms.CharField(
        required=False, max_length=200, help_text="user.<attribute> or item.<attribute>"
    )

    def body(self) -> dict[str, Any]:
        steps = []
        for line in self.cleaned_data["steps"].splitlines():
            type_, _, where = line.strip().partition(" where ")
            if type_:
                steps.append({"type": type_.strip(), **({"where": where.strip()} if where.strip() else {})})
        return {
            **super().body(),
            "steps": steps,
            "window": self.cleaned_data["window"],
            "breakdown": self.cleaned_data["breakdown"] or None,
        }


class RetentionForm(_RangeForm):
    period = forms.ChoiceField(choices=[(p, p) for p in ("day", "week", "month")], initial="week")
    start_type = forms.CharField(required=False, max_length=64, help_text="Blank: any event.")
    return_type = forms.CharField(required=False, max_length=64, help_text="Blank: any event.")

    def body(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            **super().body(),
            "period": d["period"],
            "start_type": d["start_type"] or None,
            "return_type": d["return_type"] or None,
        }


class PathsForm(_RangeForm):
    event = forms.CharField(max_length=64, initial="view")
    direction = forms.ChoiceField(choices=[("after", "after"), ("before", "before")])
    steps = forms.IntegerField(initial=3)
    k = forms.IntegerField(initial=10)
    session_gap = forms.CharField(initial="30m", max_length=32)
    by = forms.CharField(initial="type", max_length=200, help_text="type or item.<attribute>")

    def body(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            **super().body(),
            **{k: d[k] for k in ("event", "direction", "steps", "k", "session_gap", "by")},
        }


class TrendingForm(forms.Form):
    window = forms.CharField(initial="24h", max_length=32)
    k = forms.IntegerField(initial=10)
    periods = forms.IntegerField(initial=3)
    min_count = forms.IntegerField(initial=5)
    type = forms.CharField(required=False, max_length=64)
    category = forms.CharField(required=False, max_length=200)

    def body(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            **{k: d[k] for k in ("window", "k", "periods", "min_count")},
            "type": d["type"] or None,
            "category": d["category"] or None,
        }


class TrajectoriesForm(forms.Form):
    users = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 50}),
        help_text="User ids separated by spaces, commas or lines; blank: every user.",
    )
    months = forms.IntegerField(initial=6)
    date_to = forms.DateTimeField(
        required=False, label="to (UTC)", help_text="Its month is the last one; default now."
    )
    attribute = forms.CharField(required=False, max_length=200, help_text="Default: category.")
    compare_from = forms.CharField(required=False, max_length=7, help_text="YYYY-MM")
    compare_to = forms.CharField(required=False, max_length=7, help_text="YYYY-MM")

    def body(self) -> dict[str, Any]:
        d = self.cleaned_data
        ids = d["users"].replace(",", " ").split()
        return {
            "users": ids or None,
            "months": d["months"],
            "to": d["date_to"],
            "attribute": d["attribute"] or None,
            "compare_from": d["compare_from"] or None,
            "compare_to": d["compare_to"] or None,
        }


class ImpactForm(_RangeForm):
    conversion_type = forms.CharField(
        required=False, max_length=64, help_text="Default: purchase, else the heaviest event type."
    )

    def body(self) -> dict[str, Any]:
        return {**super().body(), "conversion_type": self.cleaned_data["conversion_type"] or None}


def _trajectories(tenant: Tenant, query: dict[str, Any]) -> dict[str, Any]:
    ids = query.pop("users")
    selection = user_selection_all() if ids is None else user_selection_ids(external_ids=ids)
    return trajectory_compute(tenant=tenant, selection=selection, query=query)


@dataclass(frozen=True)
class Query:
    form: type[forms.Form]
    serializer: type[serializers.Serializer]
    run: Callable[[Tenant, dict[str, Any]], dict[str, Any]]
    title: str


QUERIES: dict[str, Query] = {
    "funnel": Query(FunnelForm, v.FunnelInput, lambda t, q: sel.funnel_compute(tenant=t, query=q), "Funnel"),
    "retention": Query(
        RetentionForm, v.RetentionInput, lambda t, q: sel.retention_compute(tenant=t, query=q), "Retention"
    ),
    "paths": Query(PathsForm, v.PathsInput, lambda t, q: sel.paths_compute(tenant=t, query=q), "Paths"),
    "trending": Query(
        TrendingForm, v.TrendingInput, lambda t, q: sel.trending_list(tenant=t, query=q), "Trending items"
    ),
    "trajectories": Query(
        TrajectoriesForm, apis_insight.GroupTrajectoryInput, _trajectories, "Interest trajectories"
    ),
    "impact": Query(
        ImpactForm,
        apis_insight.ImpactInput,
        lambda t, q: impact_compute(tenant=t, query=q),
        "Recommendation impact",
    ),
}

#: API field names that are named differently in the forms.
_FORM_FIELD = {"from": "date_from", "to": "date_to"}


# ---------------------------------------------------------------- running a form
def _errors(detail: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A DRF error detail flattened to (``steps[1].type``, message) pairs."""
    if isinstance(detail, dict):
        return [
            e
            for key, value in detail.items()
            for e in _errors(value, f"{prefix}.{key}" if prefix else str(key))
        ]
    if isinstance(detail, list) and any(isinstance(x, dict | list) for x in detail):
        return [e for i, value in enumerate(detail) for e in _errors(value, f"{prefix}[{i}]")]
    if isinstance(detail, list):
        return [(prefix, str(x)) for x in detail]
    return [(prefix, str(detail))]


def _add_errors(form: forms.Form, pairs: list[tuple[str, str]]) -> None:
    """Each API error on the form field it came from (``steps[1].type`` → ``steps``), naming the API field."""
    for api_field, message in pairs:
        root = api_field.split("[")[0].split(".")[0]
        name = _FORM_FIELD.get(root, root)
        form.add_error(name if name in form.fields else None, f"{api_field}: {message}")


def analytics_query_run(*, tenant: Tenant, name: str, form: forms.Form) -> dict[str, Any] | None:
    """The query's answer for a bound form, or None with the form's errors set."""
    if not form.is_valid():
        return None
    spec = QUERIES[name]
    try:
        query = v.body_validate(spec.serializer, form.body())  # type: ignore[attr-defined]
        return spec.run(tenant, query)
    except ServiceError as exc:
        _add_errors(form, [(k, m) for k, rules in (exc.fields or {"": [exc.message]}).items() for m in rules])
    except DrfValidationError as exc:
        _add_errors(form, _errors(exc.detail))
    return None


def _csv_cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to a spreadsheet; labels are tenant data.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_response(*, tenant: Tenant, name: str, answer: dict[str, Any]) -> HttpResponse:
    header, rows = TABLES[name](answer)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([[_csv_cell(c) for c in row] for row in rows])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{tenant.slug}-{name}.csv"'
    return response


# ---------------------------------------------------------------- the admin page
class TenantAnalyticsPage:
    """Mixed into the tenant admin: the analytics page and a link to it."""

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.analytics_view)  # type: ignore[attr-defined]
        return [path("<path:object_id>/analytics/", view, name=URL_NAME), *super().get_urls()]  # type: ignore[misc]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return (*fields, "analytics_page") if obj is not None else fields

    @admin.display(description="analytics")
    def analytics_page(self, obj: Tenant) -> str:
        return format_html(
            '<a href="{}">Behaviour analytics of {}</a>',
            reverse(f"admin:{URL_NAME}", args=[obj.pk]),
            obj.slug,
        )

    def analytics_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        # Not get_object(): the tenant admin's queryset counts every event of the tenant.
        # Another tenant's id is "not found", exactly as a missing one.
        allowed = tenant_ids_for_request(request)
        tenant = Tenant.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if tenant is None or (allowed is not None and tenant.pk not in allowed):
            raise Http404("No such tenant.")
        chosen = request.GET.get("q")
        forms_ = {}
        answer = None
        for name, spec in QUERIES.items():
            bound = name == chosen
            forms_[name] = spec.form(request.GET if bound else None, prefix=name)
            if bound:
                answer = analytics_query_run(tenant=tenant, name=name, form=forms_[name])
        if answer is not None and request.GET.get("format") == "csv":
            return csv_response(tenant=tenant, name=chosen, answer=answer)  # type: ignore[arg-type]
        result = None
        if answer is not None:
            header, rows = TABLES[chosen](answer)  # type: ignore[index]
            csv_query = request.GET.copy()
            csv_query["format"] = "csv"
            result = {
                "header": header,
                "rows": rows,
                "svg": mark_safe(CHARTS[chosen](answer)),  # type: ignore[index]  # built with escape()
                "csv_url": "?" + csv_query.urlencode(),
            }
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"Behaviour analytics: {tenant.slug}",
            "tenant": tenant,
            "sections": [{"name": n, "title": s.title, "form": forms_[n]} for n, s in QUERIES.items()],
            "chosen": chosen,
            "result": result,
        }
        return TemplateResponse(request, "analytics/console.html", context)


def analytics_page_register(site: admin.AdminSite) -> None:
    """Re-register the tenant admin with :class:`TenantAnalyticsPage` mixed in first."""
    model_admin = site._registry.get(Tenant)
    if model_admin is None or isinstance(model_admin, TenantAnalyticsPage):
        return
    cls = type(model_admin)
    site.unregister(Tenant)
    site.register(Tenant, type(cls.__name__, (TenantAnalyticsPage, cls), {"__module__": cls.__module__}))
