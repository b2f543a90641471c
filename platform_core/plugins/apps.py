from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class PluginsConfig(AppConfig):
    """Loads and checks the domain plugins at start-up."""

    name = "platform_core.plugins"
    label = "plugins"
    verbose_name = "Domain plugins"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from domains.registry import PluginError, plugins_load

        try:
            plugins_load(
                paths=list(settings.DOMAIN_PLUGINS),
                entry_point_group=getattr(settings, "DOMAIN_PLUGIN_ENTRY_POINT_GROUP", None) or None,
            )
        except PluginError as exc:
            # A bad plugin stops start-up: every process (web, worker, manage.py) refuses to run.
            raise ImproperlyConfigured(str(exc)) from exc
