"""Segments: named groups of a tenant's end users, by rule or by clustering (docs/analytics.md)."""

from __future__ import annotations

from django.db import models

from platform_core.common.scoping import TenantOwnedModel


class SegmentKind(models.TextChoices):
    RULE = "rule", "rule"
    CLUSTER = "cluster", "cluster"


class Segment(TenantOwnedModel):
    """A segment's definition and when its membership was last computed.

    ``definition`` is validated by ``segment_rules.definition_check`` before
    every write (API and console alike). A cluster segment's members each
    carry their cluster number; ``clusters`` describes each cluster.
    """

    name = models.SlugField(max_length=64)
    kind = models.CharField(max_length=16, choices=SegmentKind.choices, default=SegmentKind.RULE)
    definition = models.JSONField(default=dict)
    size = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(null=True, blank=True)
    # [{"cluster": 0, "size": 12, "top_categories": [{"category": "shoes", "share": 0.6}]}]
    clusters = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="segment_tenant_name")]
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class SegmentMember(TenantOwnedModel):
    """One user in one segment: a row per pair, so ``segment=`` and breakdowns are plain joins
    on both databases (an array column would need a PostgreSQL-only ``ANY`` and a JSON scan on
    SQLite). Cascades from ``EndUser``: erasing a user erases their memberships."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey("catalog.EndUser", on_delete=models.CASCADE, related_name="+")
    cluster = models.PositiveSmallIntegerField(null=True, blank=True)  # cluster segments only

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "user"], name="segment_member_unique")]
        # The user → segments direction: breakdowns and the user.segment filter term.
        indexes = [models.Index(fields=["tenant", "user"], name="segment_member_user")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.segment_id}"
