from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "platform_core.jobs"
    label = "jobs"
    default_auto_field = "django.db.models.BigAutoField"
