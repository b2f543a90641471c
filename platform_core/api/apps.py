from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "platform_core.api"
    label = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the Api-Key scheme with drf-spectacular (import has the side effect).
        from platform_core.api import schema  # noqa: F401
