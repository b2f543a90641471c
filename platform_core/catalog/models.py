from __future__ import annotations

from django.db import models

from platform_core.common.scoping import TenantOwnedModel


class EndUser(TenantOwnedModel):
    """A user of a tenant's app, known by the tenant's own id."""

    external_id = models.CharField(max_length=255)
    # Validated against the domain's user_schema; sensitive fields are sealed.
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="enduser_tenant_external_id")
        ]
        verbose_name = "end user"

    def __str__(self) -> str:
        return self.external_id


class Item(TenantOwnedModel):
    """Something users interact with: a product, post, lesson, route…"""

    external_id = models.CharField(max_length=255)
    attributes = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="item_tenant_external_id")
        ]

    def __str__(self) -> str:
        return self.external_id


class ErasureReceipt(TenantOwnedModel):
    """The audit record of one end user's erasure (``DELETE /users/{id}``); it outlives the user.

    It never holds the external id: ``subject_hash`` is an HMAC-SHA256 of it,
    keyed by the project's ``SECRET_KEY`` and the tenant, so the table alone
    cannot be reversed by hashing a list of candidate ids, and the same id of
    two tenants gives two hashes. ``model_versions`` are the ids of the model
    versions trained while the user had events (rule: docs/api.md, Erasure);
    when one of them was serving, a retrain is due by ``retrain_due_by`` and
    ``retrained_at`` records when a version trained without the user went live.
    """

    erased_at = models.DateTimeField(db_index=True)
    subject_hash = models.CharField(max_length=64)
    counts = models.JSONField(default=dict)  # {"events.Event": 12, "catalog.EndUser": 1, ...}
    # Plain ids, not foreign keys: the receipt must survive the versions it names.
    model_versions = models.JSONField(default=list)
    retrain_due_by = models.DateTimeField(null=True, blank=True)
    retrain_job_id = models.PositiveBigIntegerField(null=True, blank=True)
    retrained_at = models.DateTimeField(null=True, blank=True)
    retrained_version_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-erased_at", "-id"]
        indexes = [
            # The sweep reads the pending ones only.
            models.Index(
                fields=["retrain_due_by"],
                name="erasure_retrain_pending",
                condition=models.Q(retrained_at__isnull=True, retrain_due_by__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"erasure #{self.pk} {self.erased_at:%Y-%m-%d %H:%M}"

    @property
    def retrain_pending(self) -> bool:
        return self.retrain_due_by is not None and self.retrained_at is None
