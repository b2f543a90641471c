"""Console pages for tenants, API keys and memberships."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from platform_core.catalog.models import EndUser, Item
from platform_core.console.scoping import SuperuserOnlyAdmin, TenantScopedAdmin
from platform_core.events.models import Event
from platform_core.tenancy.models import ApiKey, ApiKeyScope, Tenant, TenantMembership
from platform_core.tenancy.services import (
    TENANT_EDITABLE,
    api_key_create,
    api_key_revoke,
    tenant_create,
    tenant_field_errors,
    tenant_update,
)


def _count_of(model: type, field: str = "tenant") -> Coalesce:
    # unscoped: one correlated count per listed tenant, filtered by OuterRef.
    sub = (
        model.unscoped.filter(**{field: OuterRef("pk")})  # type: ignore[attr-defined]
        .order_by()
        .values(field)
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(sub, output_field=IntegerField()), 0)


class MembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ()


def _domain_choices() -> list[tuple[str, str]]:
    from domains.registry import plugin_list

    return sorted((p.id, f"{p.id} ({p.label})" if p.label else p.id) for p in plugin_list())


class TenantForm(forms.ModelForm):
    """A tenant's fields, checked by the rules ``tenant_create``/``tenant_update`` apply."""

    domain = forms.ChoiceField(choices=_domain_choices, help_text="The tenant's domain plugin.")

    class Meta:
        model = Tenant
        fields = TENANT_EDITABLE

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "slug" in data and "domain" in data:
            errors = tenant_field_errors(slug=data["slug"], domain=data["domain"], tenant_pk=self.instance.pk)
            for name, rules in errors.items():
                self.add_error(name, rules)
        return data


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_field = "pk"  # a tenant is its own scope
    form = TenantForm
    list_display = ("slug", "name", "domain", "n_users", "n_items", "n_events", "n_keys", "created_at")
    search_fields = ("slug", "name")
    list_filter = ("domain",)
    readonly_fields = ("created_at",)
    inlines = (MembershipInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                users_count=_count_of(EndUser),
                items_count=_count_of(Item),
                events_count=_count_of(Event),
                keys_count=Count("api_keys", distinct=True),
            )
        )

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if request.user.is_superuser else ()

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in TENANT_EDITABLE if name in form.cleaned_data}
        if change:
            tenant_update(tenant=obj, changes={k: v for k, v in values.items() if k in form.changed_data})
            return
        created = tenant_create(**values)
        # The admin goes on with ``obj`` (inlines, log entry, redirect): make it the saved row.
        obj.pk, obj.created_at, obj._state.adding = created.pk, created.created_at, False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    @admin.display(description="users", ordering="users_count")
    def n_users(self, obj: Tenant) -> int:
        return obj.users_count  # type: ignore[attr-defined]

    @admin.display(description="items", ordering="items_count")
    def n_items(self, obj: Tenant) -> int:
        return obj.items_count  # type: ignore[attr-defined]

    @admin.display(description="events", ordering="events_count")
    def n_events(self, obj: Tenant) -> int:
        return obj.events_count  # type: ignore[attr-defined]

    @admin.display(description="API keys", ordering="keys_count")
    def n_keys(self, obj: Tenant) -> int:
        return obj.keys_count  # type: ignore[attr-defined]


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple, initial=["ingest", "read"]
    )

    class Meta:
        model = ApiKey
        fields = ("tenant", "name", "scopes")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ("prefix", "tenant", "name", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "tenant__slug")
    actions = ("revoke",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("tenant", "name", "scopes")
        return ("tenant", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("tenant", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        created = api_key_create(tenant=obj.tenant, scopes=form.cleaned_data["scopes"], name=obj.name)
        # The admin goes on with ``obj`` (log entry, redirect): make it the saved row.
        obj.__dict__.update({k: v for k, v in created.api_key.__dict__.items() if k != "_state"})
        obj._state.adding = False
        obj._state.db = created.api_key._state.db
        # Held on the request only, to render once in response_add; never stored.
        request._new_api_key_secret = created.raw_key  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None) -> HttpResponse:
        raw_key = getattr(request, "_new_api_key_secret", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "api_key": obj,
            "raw_key": raw_key,
            "changelist_url": reverse("admin:tenancy_apikey_changelist"),
            "title": "API key created",
        }
        response = TemplateResponse(request, "console/api_key_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        n = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=key)
            n += 1
        self.message_user(request, f"Revoked {n} API key(s).", messages.SUCCESS)


@admin.register(TenantMembership)
class TenantMembershipAdmin(SuperuserOnlyAdmin, admin.ModelAdmin):
    """Who may act for which tenant: granting it is a superuser's decision."""

    list_display = ("user", "tenant", "created_at")
    list_filter = ("tenant",)
    search_fields = ("user__username", "tenant__slug")
