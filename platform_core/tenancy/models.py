from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def tenant_domain_error(domain: str) -> str | None:
    """Why ``domain`` cannot be a tenant's domain (no registered plugin has that id), or None."""
    from domains.registry import PluginError, plugin_get

    try:
        plugin_get(domain)
    except PluginError as exc:
        return str(exc)
    return None


class Tenant(models.Model):
    """One customer of the platform; owns every other row through ``tenant``."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=64, help_text="Id of the tenant's domain plugin.")
    # False: events naming an unknown user or item are refused instead of
    # creating the user/item on the fly.
    auto_create_entities = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """Field checks, and the domain must name a registered plugin.

        Plugins are code, not rows, so no database constraint can say it; a
        tenant whose domain has no plugin fails every API call it makes.
        """
        errors: dict[str, Any] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if "domain" not in errors and "domain" not in (exclude or ()):
            problem = tenant_domain_error(self.domain)
            if problem:
                errors["domain"] = [problem]
        if errors:
            raise ValidationError(errors)


class ApiKeyScope(models.TextChoices):
    INGEST = "ingest", "ingest"
    READ = "read", "read"
    ADMIN = "admin", "admin"


class ApiKey(models.Model):
    """A client credential of one tenant. Only a hash of the secret is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public lookup part of the key.")
    secret_hash = models.CharField(max_length=64, help_text="SHA-256 of the whole key.")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.tenant.slug}:{self.prefix}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class TenantMembership(models.Model):
    """Limits a staff user of the console to the tenants they belong to."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="tenant_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant}"
