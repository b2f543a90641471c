from django.apps import AppConfig
from django.db.models.signals import post_save


class AnalyticsConfig(AppConfig):
    name = "platform_core.analytics"
    label = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from platform_core.analytics.segments import SegmentDirectory
        from platform_core.analytics.services import (
            analytics_forget_on_erasure,
            analytics_forget_on_feedback,
            analytics_forget_on_ingest,
        )
        from platform_core.catalog.signals import user_erased
        from platform_core.events.signals import events_committed
        from platform_core.serving.models import RecommendationFeedback
        from platform_core.serving.segments import segment_directory_register

        # Cached answers over a time range drop when events land in that range (docs/analytics.md).
        events_committed.connect(analytics_forget_on_ingest, dispatch_uid="analytics-ingest")
        user_erased.connect(analytics_forget_on_erasure, dispatch_uid="analytics-erasure")
        # Serving (a lower app) asks segment membership through its own interface.
        segment_directory_register(SegmentDirectory())
        # Impact answers read feedback: a new one drops the answers over its served_at month.
        post_save.connect(
            analytics_forget_on_feedback, sender=RecommendationFeedback, dispatch_uid="analytics-feedback"
        )
