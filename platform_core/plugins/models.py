"""A tenant's domain-plugin configuration and its change log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from platform_core.common.scoping import TenantOwnedModel


class TenantConfig(TenantOwnedModel):
    """One row per tenant: the plugin's config values, validated, defaults filled in."""

    values = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="plugins_config_one_per_tenant")]
        verbose_name = "tenant configuration"

    def __str__(self) -> str:
        return f"config of {self.tenant}"


class ConfigChangeSource(models.TextChoices):
    ADMIN = "admin", "console"
    API = "api", "API"
    COMMAND = "command", "command"


class TenantConfigChange(TenantOwnedModel):
    """Who changed a tenant's config, when, and from what to what."""

    config = models.ForeignKey(TenantConfig, on_delete=models.CASCADE, related_name="changes")
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the log still says who after the account is deleted.
    changed_by_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(
        max_length=16, choices=ConfigChangeSource.choices, default=ConfigChangeSource.API
    )
    old_values = models.JSONField(default=dict, blank=True)
    new_values = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["tenant", "changed_at"], name="plugins_change_tenant_time")]
        verbose_name = "configuration change"

    def __str__(self) -> str:
        return f"{self.tenant} config change at {self.changed_at:%Y-%m-%d %H:%M}"

    @property
    def diff(self) -> dict[str, tuple[object, object]]:
        """``{name: (old, new)}`` for the values that changed."""
        keys = sorted(set(self.old_values) | set(self.new_values))
        return {
            k: (self.old_values.get(k), self.new_values.get(k))
            for k in keys
            if self.old_values.get(k) != self.new_values.get(k)
        }
