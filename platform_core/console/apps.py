from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "platform_core.console"
    label = "console"
    default_auto_field = "django.db.models.BigAutoField"
