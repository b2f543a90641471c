"""The one tenant-limited admin: staff users see and edit only the tenants they belong to.

Superusers see everything. Other staff need Django's model permissions as
usual *and* a ``TenantMembership``. Every admin of a tenant-owned model
subclasses :class:`TenantScopedAdmin` (inlines :class:`TenantScopedInline`),
which limits, in one place:

- the queryset (another tenant's row is "not found", as a missing one);
- foreign-key choices (a form cannot name another tenant's row);
- list filters (their choices come from the limited queryset, so they never
  name another tenant);
- saves and deletes (form errors naming the field first, then a 403 as a
  last line for any path that skips the form).

Models that are not tenant data at all (Celery's results and schedules,
users, groups, memberships) use :class:`SuperuserOnlyAdmin` instead.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from platform_core.tenancy.models import Tenant, TenantMembership

FOREIGN_TENANT = "belongs to a tenant you are not a member of"
MIXED_TENANTS = "belongs to another tenant than this row"


def tenants_for_request(request: HttpRequest) -> QuerySet[Tenant] | None:
    """The tenants this console user may act on; None means all (superuser)."""
    from platform_core.tenancy.selectors import tenant_list_for_staff

    user = request.user
    if getattr(user, "is_superuser", False):
        return None
    return tenant_list_for_staff(user=user)


def tenant_ids_for_request(request: HttpRequest) -> frozenset[int] | None:
    """Ids of :func:`tenants_for_request`, computed once per request; None means all."""
    cached = getattr(request, "_console_tenant_ids", False)
    if cached is False:
        allowed = tenants_for_request(request)
        cached = None if allowed is None else frozenset(allowed.values_list("pk", flat=True))
        request._console_tenant_ids = cached  # type: ignore[attr-defined]
    return cached


def tenant_id_of(obj: Any) -> int | None:
    """The tenant a row belongs to (a tenant belongs to itself); None if it has none."""
    if isinstance(obj, Tenant):
        return obj.pk
    return getattr(obj, "tenant_id", None)


def _tenant_fk(model: type[models.Model]) -> bool:
    try:
        field = model._meta.get_field("tenant")
    except FieldDoesNotExist:
        return False
    return getattr(field, "related_model", None) is Tenant


def rows_for_tenants(qs: QuerySet[Any], allowed: QuerySet[Tenant] | None) -> QuerySet[Any]:
    """``qs`` limited to rows of ``allowed`` tenants, whatever the model.

    Tenants by pk, tenant-owned rows by their ``tenant``, users by membership;
    other models hold no tenant data and pass unchanged.
    """
    if allowed is None:
        return qs
    model = qs.model
    if model is Tenant:
        return qs.filter(pk__in=allowed)
    if _tenant_fk(model):
        return qs.filter(tenant__in=allowed)
    if model is get_user_model():
        return qs.filter(pk__in=TenantMembership.objects.filter(tenant__in=allowed).values("user"))
    return qs


class TenantFormCheck(forms.BaseForm):
    """Mixed into every scoped admin form: related rows must be of the row's own, allowed tenant."""

    allowed_tenant_ids: frozenset[int] | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        own = data.get("tenant") or getattr(self, "instance", None)
        own_id, allowed = tenant_id_of(own), self.allowed_tenant_ids
        for name, value in list(data.items()):
            rows = value if isinstance(value, QuerySet | list) else [value]
            tids = {tenant_id_of(row) for row in rows if isinstance(row, models.Model)} - {None}
            if allowed is not None and tids - allowed:
                self.add_error(name, FOREIGN_TENANT)
            elif name != "tenant" and own_id is not None and tids - {own_id}:
                self.add_error(name, MIXED_TENANTS)
        return data


def scoped_form(form: type[forms.BaseForm], request: HttpRequest) -> type[forms.BaseForm]:
    """``form`` with :class:`TenantFormCheck` bound to this request's tenants."""
    attrs = {"allowed_tenant_ids": tenant_ids_for_request(request), "__module__": form.__module__}
    return type(form.__name__, (TenantFormCheck, form), attrs)


class ScopedAllValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """Values of a field across a relation, taken from the admin's limited queryset.

    Django's own filter reads them from every row of the related table.
    """

    def __init__(
        self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any, field_path: str
    ):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = (
            model_admin.get_queryset(request)
            .order_by(field_path)
            .values_list(field_path, flat=True)
            .distinct()
        )


def _scoped_filter(model: type[models.Model], entry: Any) -> Any:
    """A list_filter entry whose choices cannot name rows of another tenant."""
    if isinstance(entry, tuple) and issubclass(entry[1], admin.RelatedFieldListFilter):
        return (entry[0], admin.RelatedOnlyFieldListFilter)
    if not isinstance(entry, str):
        return entry
    fields = get_fields_from_path(model, entry)
    last = fields[-1]
    if last.is_relation:
        return (entry, admin.RelatedOnlyFieldListFilter)
    plain = not (last.choices or isinstance(last, models.BooleanField | models.DateField))
    if len(fields) > 1 and plain:
        return (entry, ScopedAllValuesFieldListFilter)
    return entry


class _TenantScope:
    """What admins and inlines share: the limited queryset, choices and permissions."""

    #: The path from this model to its tenant ("pk" for the Tenant model itself).
    tenant_field: str = "tenant"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)  # type: ignore[misc]
        allowed = tenants_for_request(request)
        if allowed is None:
            return qs
        return qs.filter(**{f"{self.tenant_field}__in": allowed})

    def _choices(self, db_field: models.Field, request: HttpRequest) -> QuerySet[Any]:
        # The related admin's ordering, as Django would use, limited to the user's tenants.
        related = self.get_field_queryset(None, db_field, request)  # type: ignore[attr-defined]
        if related is None:
            related = db_field.related_model._default_manager.all()
        return rows_for_tenants(related, tenants_for_request(request))

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> Any:
        kwargs.setdefault("queryset", self._choices(db_field, request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField, request: HttpRequest, **kwargs: Any
    ) -> Any:
        kwargs.setdefault("queryset", self._choices(db_field, request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def owns(self, request: HttpRequest, obj: Any) -> bool:
        """Whether ``obj`` (None: no particular row) is of one of the user's tenants."""
        allowed = tenant_ids_for_request(request)
        return obj is None or allowed is None or tenant_id_of(obj) in allowed

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.owns(request, obj) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.owns(request, obj) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.owns(request, obj) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class TenantScopedAdmin(_TenantScope, admin.ModelAdmin):
    """Base ModelAdmin of every tenant-owned model (see the module docstring)."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = scoped_form(kwargs.get("form", self.form), request)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs["form"] = scoped_form(kwargs.get("form", forms.ModelForm), request)
        return super().get_changelist_form(request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> Any:
        entries = super().get_list_filter(request)
        if tenant_ids_for_request(request) is None:
            return entries
        return [_scoped_filter(self.model, entry) for entry in entries]

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        # Every save path (add, change, list_editable) passes here, even in
        # admins whose save_model calls a service instead of obj.save().
        obj = super().save_form(request, form, change)
        if not self.owns(request, obj):
            raise PermissionDenied(f"tenant: {FOREIGN_TENANT}.")
        return obj

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        parent_tenant = tenant_id_of(form.instance)
        for inline_form in formset.forms:
            row = inline_form.instance
            if not inline_form.has_changed():
                continue
            if _tenant_fk(type(row)) and row.tenant_id is None:
                row.tenant_id = parent_tenant  # a new inline row is its parent's tenant's
            if not self.owns(request, row):
                raise PermissionDenied(f"tenant: {FOREIGN_TENANT}.")
        super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        if not self.owns(request, obj):
            raise PermissionDenied(f"tenant: {FOREIGN_TENANT}.")
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if queryset.exclude(pk__in=self.get_queryset(request).values("pk")).exists():
            raise PermissionDenied(f"tenant: {FOREIGN_TENANT}.")
        super().delete_queryset(request, queryset)


class TenantScopedInline(_TenantScope, InlineModelAdmin):
    """Base of inlines of tenant-owned rows: rows, choices and forms limited like the parent."""

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = scoped_form(kwargs.get("form", self.form), request)
        return super().get_formset(request, obj, **kwargs)


class ReadOnlyAdminMixin:
    """Derived or audit rows: shown, never added, changed or deleted in the console."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SuperuserOnlyAdmin:
    """Mixed into admins of models that are no tenant's data: only superusers reach them."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)
