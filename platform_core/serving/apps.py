from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "platform_core.serving"
    label = "serving"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from platform_core.catalog.signals import user_erased
        from platform_core.events.signals import events_committed
        from platform_core.serving.user_state import (
            user_states_forget_on_erasure,
            user_states_forget_on_ingest,
        )

        # This process drops the user at once; the others hear it from PostgreSQL's notification.
        events_committed.connect(user_states_forget_on_ingest, dispatch_uid="serving-user-states")
        user_erased.connect(user_states_forget_on_erasure, dispatch_uid="serving-user-states-erased")
