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
