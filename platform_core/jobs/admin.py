"""The operators' console for jobs: live progress, actions, version charts, monitoring."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from platform_core.common.errors import ServiceError
from platform_core.console.scoping import TenantScopedAdmin, tenant_ids_for_request
from platform_core.jobs import services
from platform_core.jobs.charts import line_chart_svg
from platform_core.jobs.models import (
    JobKind,
    JobStatus,
    ModelVersion,
    TenantSchedule,
    TrainingJob,
    VersionState,
)
from platform_core.tenancy.models import Tenant

_STATUS_COLORS = {
    JobStatus.PENDING: "#6b7280",
    JobStatus.RUNNING: "#2563eb",
    JobStatus.SUCCEEDED: "#16a34a",
    JobStatus.FAILED: "#dc2626",
    JobStatus.CANCELLED: "#a16207",
}


def _request(modeladmin: admin.ModelAdmin, request: HttpRequest, tenants: set[Tenant], kind: str) -> None:
    for tenant in sorted(tenants, key=lambda t: t.slug):
        try:
            job = services.training_job_request(
                tenant=tenant, kind=kind, requested_by=f"console:{request.user}"
            )
            modeladmin.message_user(request, f"{tenant.slug}: {kind} job {job.pk} queued.", messages.SUCCESS)
        except ServiceError as exc:
            modeladmin.message_user(request, f"{tenant.slug}: {exc.message}", messages.WARNING)


@admin.register(TrainingJob)
class TrainingJobAdmin(TenantScopedAdmin):
    list_select_related = ("tenant",)
    list_display = (
        "id",
        "tenant",
        "kind",
        "status_badge",
        "progress_bar",
        "duration",
        "created_at",
        "worker",
        "short_error",
    )
    list_filter = ("status", "kind", "tenant")
    search_fields = ("tenant__slug", "error", "requested_by")
    ordering = ("-created_at",)
    actions = ("retrain_now", "rebuild_profiles_now", "cancel")
    change_list_template = "admin/jobs/trainingjob/change_list.html"
    readonly_fields = (
        "tenant",
        "kind",
        "status",
        "requested_by",
        "config",
        "progress",
        "result",
        "error",
        "worker",
        "task_id",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, job: TrainingJob) -> str:
        return format_html(
            '<b style="color:{}">{}</b>', _STATUS_COLORS.get(job.status, "#000"), job.get_status_display()
        )

    @admin.display(description="progress")
    def progress_bar(self, job: TrainingJob) -> str:
        p = job.progress or {}
        done, total = p.get("epoch"), p.get("epochs")
        label = p.get("message") or p.get("stage") or ""
        if p.get("metric") is not None:
            label += (
                f" metric={p['metric']:.4f}" if isinstance(p["metric"], float) else f" metric={p['metric']}"
            )
        if p.get("eta_seconds") is not None and job.status == JobStatus.RUNNING:
            label += f" ETA {int(p['eta_seconds'])}s"
        if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total:
            return format_html(
                '<progress value="{}" max="{}"></progress> {}/{} {}', done, total, done, total, label
            )
        return label or "—"

    @admin.display(description="duration")
    def duration(self, job: TrainingJob) -> str:
        seconds = job.duration_seconds
        if seconds is None:
            return "—"
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes}m {secs:02d}s"

    @admin.display(description="error")
    def short_error(self, job: TrainingJob) -> str:
        return (job.error.splitlines() or [""])[0][:120]

    @admin.action(description="Retrain now (the selected jobs' tenants)")
    def retrain_now(self, request: HttpRequest, queryset: QuerySet[TrainingJob]) -> None:
        _request(self, request, {j.tenant for j in queryset}, JobKind.TRAIN)

    @admin.action(description="Rebuild profiles now (the selected jobs' tenants)")
    def rebuild_profiles_now(self, request: HttpRequest, queryset: QuerySet[TrainingJob]) -> None:
        _request(self, request, {j.tenant for j in queryset}, JobKind.PROFILES)

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[TrainingJob]) -> None:
        for job in queryset:
            try:
                services.training_job_cancel(job=job, reason=f"cancelled by {request.user}")
                self.message_user(request, f"Job {job.pk} cancelled.", messages.SUCCESS)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.WARNING)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        extra_context["has_unfinished"] = (
            self.get_queryset(request).filter(status__in=[JobStatus.PENDING, JobStatus.RUNNING]).exists()
        )
        extra_context["refresh_seconds"] = 3
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[Any]:
        extra = [
            path("monitoring/", self.admin_site.admin_view(self.monitoring_view), name="jobs_monitoring"),
        ]
        return extra + super().get_urls()

    def monitoring_view(self, request: HttpRequest) -> TemplateResponse:
        from platform_core.jobs.monitoring import celery_status_get, celery_status_scope

        if not self.has_view_permission(request):
            raise PermissionDenied
        status = celery_status_scope(
            status=celery_status_get(timeout=1.0), tenant_ids=tenant_ids_for_request(request)
        )
        jobs = self.get_queryset(request).select_related("tenant")
        superuser = request.user.is_superuser  # Celery's own tables are theirs alone
        context = {
            **self.admin_site.each_context(request),
            "title": "Workers and queues",
            "status": status,
            "running": jobs.filter(status=JobStatus.RUNNING),
            "pending": jobs.filter(status=JobStatus.PENDING).count(),
            "failed_recent": jobs.filter(status=JobStatus.FAILED)[:10],
            "task_results_url": superuser and reverse("admin:django_celery_results_taskresult_changelist"),
            "periodic_url": superuser and reverse("admin:django_celery_beat_periodictask_changelist"),
            "refresh_seconds": 5,
        }
        return TemplateResponse(request, "jobs/monitoring.html", context)


@admin.register(ModelVersion)
class ModelVersionAdmin(TenantScopedAdmin):
    list_select_related = ("tenant", "job")
    list_display = (
        "id",
        "tenant",
        "algorithm",
        "state_badge",
        "metric_value",
        "gate_passed",
        "created_at",
        "activated_at",
        "job",
    )
    list_filter = ("state", "tenant", "algorithm", "gate_passed")
    ordering = ("-created_at",)
    actions = ("promote", "rollback")
    change_list_template = "admin/jobs/modelversion/change_list.html"
    readonly_fields = (
        "tenant",
        "job",
        "algorithm",
        "artifact_path",
        "metrics",
        "validation_metric",
        "data_window",
        "state",
        "gate_passed",
        "gate_reason",
        "created_at",
        "activated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="state", ordering="state")
    def state_badge(self, version: ModelVersion) -> str:
        color = {"active": "#16a34a", "candidate": "#2563eb"}.get(version.state, "#6b7280")
        return format_html('<b style="color:{}">{}</b>', color, version.state)

    @admin.display(description="validation metric")
    def metric_value(self, version: ModelVersion) -> str:
        value = version.primary_metric()
        return f"{version.validation_metric}={value:.4f}" if value is not None else "—"

    @admin.action(description="Promote the selected version (make it active)")
    def promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for version in queryset:
            try:
                services.model_version_promote(version=version)
                self.message_user(
                    request, f"{version.tenant.slug}: version {version.pk} is active.", messages.SUCCESS
                )
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description="Roll back the selected versions' tenants to their previous version")
    def rollback(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for tenant in sorted({v.tenant for v in queryset}, key=lambda t: t.slug):
            try:
                version = services.model_version_rollback(tenant=tenant)
                self.message_user(request, f"{tenant.slug}: back to version {version.pk}.", messages.SUCCESS)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    def get_urls(self) -> list[Any]:
        extra = [path("chart/", self.admin_site.admin_view(self.chart_view), name="jobs_modelversion_chart")]
        return extra + super().get_urls()

    def chart_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        versions = self.get_queryset(request).select_related("tenant").order_by("created_at")
        tenants = sorted({v.tenant for v in versions}, key=lambda t: t.slug)
        slug = request.GET.get("tenant") or (tenants[0].slug if tenants else "")
        charts = []
        for tenant in tenants if slug == "*" else [t for t in tenants if t.slug == slug]:
            charts.append(_tenant_chart(tenant, [v for v in versions if v.tenant_id == tenant.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Model metrics over time",
            "tenants": tenants,
            "selected": slug,
            "charts": charts,
        }
        return TemplateResponse(request, "jobs/metrics_chart.html", context)


def _tenant_chart(tenant: Tenant, versions: list[ModelVersion]) -> dict[str, Any]:
    """One SVG per tenant: each algorithm's validation metric at each version's creation."""
    metric = next((v.validation_metric for v in reversed(versions) if v.validation_metric), "")
    series: dict[str, list] = defaultdict(list)
    for v in versions:
        for algorithm, values in (v.metrics or {}).items():
            value = values.get(metric) if isinstance(values, dict) else None
            if isinstance(value, (int, float)):
                series[algorithm].append((v.created_at, float(value)))
    markers = [v.activated_at for v in versions if v.activated_at]
    svg = line_chart_svg(series, title=f"{tenant.slug}: {metric or 'metric'} per version", markers=markers)
    active = next((v for v in versions if v.state == VersionState.ACTIVE), None)
    return {
        "tenant": tenant,
        "svg": mark_safe(svg),
        "active": active,
        "n_versions": len(versions),
    }  # built with escape()


@admin.register(TenantSchedule)
class TenantScheduleAdmin(TenantScopedAdmin):
    list_select_related = ("tenant", "updated_by")
    list_display = (
        "tenant",
        "enabled",
        "retrain_every_hours",
        "profiles_every_hours",
        "updated_at",
        "updated_by",
    )
    list_editable = ("enabled", "retrain_every_hours", "profiles_every_hours")
    readonly_fields = ("updated_at", "updated_by")
    actions = ("retrain_now", "rebuild_profiles_now")

    def save_model(self, request: HttpRequest, obj: TenantSchedule, form: Any, change: bool) -> None:
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Retrain now")
    def retrain_now(self, request: HttpRequest, queryset: QuerySet[TenantSchedule]) -> None:
        _request(self, request, {s.tenant for s in queryset}, JobKind.TRAIN)

    @admin.action(description="Rebuild profiles now")
    def rebuild_profiles_now(self, request: HttpRequest, queryset: QuerySet[TenantSchedule]) -> None:
        _request(self, request, {s.tenant for s in queryset}, JobKind.PROFILES)
