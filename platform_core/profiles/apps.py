from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "platform_core.profiles"
    label = "profiles"
    default_auto_field = "django.db.models.BigAutoField"
