from __future__ import annotations

from django.conf import settings
from django.db import models


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
