"""The model lifecycle: training/profile jobs, model versions, per-tenant schedules."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from platform_core.common.scoping import TenantOwnedModel


class JobKind(models.TextChoices):
    TRAIN = "train", "train model"
    PROFILES = "profiles", "build profiles"


class JobStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


# ``requested_by`` of the retrains started after erasures (jobs.erasure); the gate treats them apart.
ERASURE_REQUESTER = "erasure"

ACTIVE_STATUSES: tuple[str, ...] = (JobStatus.PENDING, JobStatus.RUNNING)
FINAL_STATUSES: tuple[str, ...] = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class TrainingJob(TenantOwnedModel):
    """One run of a pipeline (training or profile building) for one tenant.

    PENDING → RUNNING (claimed by one worker with a conditional UPDATE) →
    SUCCEEDED / FAILED / CANCELLED. A partial unique index allows one
    unfinished job per tenant and kind, so a second concurrent request fails
    in the database itself, not only in a check that could race.
    """

    kind = models.CharField(max_length=16, choices=JobKind.choices, default=JobKind.TRAIN)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    requested_by = models.CharField(
        max_length=150, blank=True, help_text="Who asked: user, api key, schedule."
    )
    config = models.JSONField(default=dict, blank=True)
    # {"stage", "epoch", "epochs", "loss", "metric", "eta_seconds", "message"}
    progress = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind"],
                condition=Q(status__in=["pending", "running"]),
                name="job_one_unfinished_per_tenant_kind",
            )
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


class VersionState(models.TextChoices):
    CANDIDATE = "candidate", "candidate"
    ACTIVE = "active", "active"
    RETIRED = "retired", "retired"


class ModelVersion(TenantOwnedModel):
    """A trained model's artifacts and metrics; at most one ACTIVE per tenant."""

    job = models.OneToOneField(
        TrainingJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="model_version"
    )
    algorithm = models.CharField(max_length=64)
    # Storage name prefix (``<tenant>/<job>``) of the artifact files in default storage.
    artifact_path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict, blank=True)  # {model: {metric: value}}
    validation_metric = models.CharField(max_length=64, blank=True)
    data_window = models.JSONField(default=dict, blank=True)  # {start, end, n_events, n_users, n_items}
    state = models.CharField(max_length=16, choices=VersionState.choices, default=VersionState.CANDIDATE)
    gate_passed = models.BooleanField(default=False)
    gate_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(state="active"), name="model_version_one_active_per_tenant"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.pk} {self.algorithm} ({self.state})"

    def primary_metric(self) -> float | None:
        """The validation metric of the primary algorithm, if recorded."""
        value = self.metrics.get(self.algorithm, {}).get(self.validation_metric)
        return float(value) if value is not None else None


class TenantSchedule(models.Model):
    """How often a tenant is retrained and its profiles rebuilt (0 = never).

    One beat entry (django-celery-beat) runs the fan-out task every few
    minutes; it starts the jobs of the tenants that are due.
    """

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="schedule")
    enabled = models.BooleanField(default=True)
    retrain_every_hours = models.PositiveIntegerField(default=24)
    profiles_every_hours = models.PositiveIntegerField(default=6)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = "schedule"

    def __str__(self) -> str:
        return f"{self.tenant.slug}: train/{self.retrain_every_hours}h profiles/{self.profiles_every_hours}h"
