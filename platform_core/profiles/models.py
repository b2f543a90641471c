"""The persona of one end user, derived from their events."""

from __future__ import annotations

import numpy as np
from django.db import models

from platform_core.common.scoping import TenantOwnedModel


class UserProfile(TenantOwnedModel):
    """Interests, trajectory, activity, segment, domain features and embedding of one user.

    Cascades from ``EndUser`` so erasing a user erases their profile and
    embedding with it.
    """

    user = models.OneToOneField("catalog.EndUser", on_delete=models.CASCADE, related_name="profile")
    interests = models.JSONField(default=list, blank=True)  # [{"key": "category:books", "weight": 0.4}]
    trajectory = models.JSONField(default=dict, blank=True)  # {"recent_items", "sessions"}
    activity = models.JSONField(default=dict, blank=True)  # {"hours", "weekdays", "frequency", "recency"}
    segment = models.CharField(max_length=32, blank=True)
    features = models.JSONField(default=dict, blank=True)  # the plugin's profile_features
    n_events = models.PositiveIntegerField(default=0)
    # float32 little-endian bytes of the user's vector under ``model_version``; null before a model exists.
    embedding = models.BinaryField(null=True, blank=True)
    model_version = models.ForeignKey(
        "jobs.ModelVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    computed_at = models.DateTimeField(null=True, blank=True)
    embedded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "segment"], name="profile_tenant_segment")]

    def __str__(self) -> str:
        return f"profile of {self.user_id}"

    def embedding_vector(self) -> np.ndarray | None:
        if self.embedding is None:
            return None
        return np.frombuffer(bytes(self.embedding), dtype="<f4")


class ProfileRefreshOutbox(TenantOwnedModel):
    """A requested profile refresh, written in the ingestion's transaction (the outbox).

    The refresh task deletes the rows it served; a row still here after the
    debounce plus ``PROFILE_OUTBOX_RESEND_SECONDS`` (broker down, message
    lost) is sent again by the periodic drain, so a refresh is never lost.
    Cascades from ``EndUser``: erasing a user erases their pending refresh.
    """

    # No database constraint: a user deleted by raw SQL (the events' triggers allow it) must not
    # make the next commit fail; the drain deletes rows whose user is gone.
    user = models.ForeignKey(
        "catalog.EndUser", on_delete=models.CASCADE, db_constraint=False, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="profile_outbox_created")]

    def __str__(self) -> str:
        return f"refresh of {self.user_id} requested {self.created_at:%Y-%m-%d %H:%M:%S}"
