from __future__ import annotations

from django.db import models

from platform_core.common.scoping import TenantOwnedModel


class Event(TenantOwnedModel):
    """One behaviour event. ``event_id`` is the client's idempotency key."""

    # Indexes are chosen by hand (Meta): each extra one costs every insert.
    # No database FK constraints (db_constraint=False): PostgreSQL checks them
    # one row at a time at commit (three lookups and locks per event, about a
    # third of the database's work on a batch). Writers resolve users and items
    # in one set-based locking SELECT instead, and triggers on the user and item
    # tables (migration 0003) delete what a concurrent delete could miss; the
    # ORM's CASCADE (and so erasure's per-model counts) is unchanged.
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    event_id = models.CharField(max_length=128)
    user = models.ForeignKey(
        "catalog.EndUser",
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    item = models.ForeignKey(
        "catalog.Item",
        on_delete=models.CASCADE,
        related_name="events",
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,
    )
    type = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    context = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "event_id"], name="event_tenant_event_id")]
        # Context fields a domain marks sensitive are shown in plaintext in the console only with this.
        permissions = [("view_sensitive_context", "Can see sensitive event context values")]
        indexes = [
            # A user (and an item) belongs to one tenant, so these serve the
            # tenant-scoped timeline scans and the cascades of erasure alike;
            # (tenant, event_id) and (tenant, timestamp) lead with the tenant.
            models.Index(fields=["user", "timestamp"], name="event_user_time"),
            models.Index(fields=["item", "timestamp"], name="event_item_ts"),
            models.Index(fields=["tenant", "timestamp"], name="event_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.user_id}→{self.item_id} @ {self.timestamp:%Y-%m-%d %H:%M}"
