"""Online feedback on served recommendations and per-model-version online metrics."""

from __future__ import annotations

from django.db import models

from platform_core.common.scoping import TenantOwnedModel


class FeedbackAction(models.TextChoices):
    CLICK = "click", "click"
    CONVERT = "convert", "convert"
    DISMISS = "dismiss", "dismiss"


class RecommendationFeedback(TenantOwnedModel):
    """What a user did with one item of one served recommendation list.

    Cascades from ``EndUser`` so erasing a user erases their feedback too. A
    similar-items list requested without a user gives feedback without one; its
    ``source_item_external_id`` names the item whose list it was.
    """

    user = models.ForeignKey(
        "catalog.EndUser",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="recommendation_feedback",
    )
    source_item_external_id = models.CharField(max_length=255, blank=True, default="")
    model_version = models.ForeignKey(
        "jobs.ModelVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # SHA-256 of the signed recommendation_id: one list, without storing the token.
    recommendation_key = models.CharField(max_length=64)
    item_external_id = models.CharField(max_length=255)
    rank = models.PositiveIntegerField()
    action = models.CharField(max_length=16, choices=FeedbackAction.choices)
    served_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "recommendation_key", "item_external_id", "action"],
                name="feedback_once_per_item_action",
            )
        ]
        indexes = [models.Index(fields=["tenant", "model_version"], name="feedback_tenant_version")]
        verbose_name = "recommendation feedback"
        verbose_name_plural = "recommendation feedback"

    def __str__(self) -> str:
        return f"{self.action} {self.item_external_id} (rank {self.rank})"


class ModelVersionServingStats(TenantOwnedModel):
    """Online counters of one model version: lists served, items shown, clicks, conversions.

    ``items_shown`` is counted in process and flushed every few seconds (no
    write per request); feedback increments the action counters.
    """

    model_version = models.OneToOneField(
        "jobs.ModelVersion", on_delete=models.CASCADE, related_name="serving_stats"
    )
    lists_served = models.PositiveBigIntegerField(default=0)
    items_shown = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    conversions = models.PositiveBigIntegerField(default=0)
    dismissals = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "online metrics of a model version"
        verbose_name_plural = "online metrics of model versions"

    def __str__(self) -> str:
        return f"online metrics of v{self.model_version_id}"

    @property
    def ctr(self) -> float | None:
        """Clicks per item shown."""
        return self.clicks / self.items_shown if self.items_shown else None

    @property
    def conversion_rate(self) -> float | None:
        """Conversions per item shown."""
        return self.conversions / self.items_shown if self.items_shown else None
