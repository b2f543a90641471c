"""Console pages of analytics: segments, edited through the same checks as the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from platform_core.analytics.models import Segment
from platform_core.analytics.segments import segment_compute_request, segment_input_check
from platform_core.common.errors import ValidationFailed
from platform_core.console.scoping import TenantScopedAdmin


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ("tenant", "name", "kind", "definition")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is None or self.errors:
            return data
        try:
            clean = segment_input_check(
                tenant=tenant, data=data, segment=self.instance if self.instance.pk else None
            )
        except ValidationFailed as exc:
            # "definition.events[0].op" is shown on the definition field, naming the key.
            for path, rules in exc.fields.items():
                target = path.split(".")[0].split("[")[0]
                target = target if target in self.fields else None
                for rule in rules:
                    self.add_error(target, f"{path}: {rule}" if target and path != target else rule)
            return data
        data["definition"] = clean["definition"]
        return data


@admin.register(Segment)
class SegmentAdmin(TenantScopedAdmin):
    form = SegmentForm
    list_display = ("name", "tenant", "kind", "size", "computed_at")
    list_filter = ("tenant", "kind")
    search_fields = ("name",)
    readonly_fields = ("size", "computed_at", "clusters")
    actions = ("recompute",)
    list_select_related = ("tenant",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The tenant is chosen once; moving a segment would orphan its members.
        return (*self.readonly_fields, "tenant") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        segment_compute_request(segment=obj)

    @admin.action(description="Recompute the selected segments")
    def recompute(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        rows = list(self.get_queryset(request).filter(pk__in=queryset.values("pk")))
        for segment in rows:
            segment_compute_request(segment=segment)
        self.message_user(request, f"{len(rows)} segment(s) will be recomputed shortly.", messages.SUCCESS)
