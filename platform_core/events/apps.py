from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "platform_core.events"
    label = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from platform_core.events.sensitive import event_contexts_rotate_on_signal
        from platform_core.plugins.signals import field_keys_rotating

        field_keys_rotating.connect(event_contexts_rotate_on_signal, dispatch_uid="events-rotate-contexts")
