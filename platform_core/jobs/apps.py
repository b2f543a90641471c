from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "platform_core.jobs"
    label = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from platform_core.catalog.signals import user_erasing
        from platform_core.jobs.erasure import erasure_share

        user_erasing.connect(erasure_share, dispatch_uid="jobs-erasure-share")
