from django.apps import AppConfig


class PluginsConfig(AppConfig):
    """Loads and checks the domain plugins at start-up."""

    name = "platform_core.plugins"
    label = "plugins"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from domains.registry import plugins_load

        plugins_load(paths=list(settings.DOMAIN_PLUGINS))
