"""Discovery of domain plugins (settings list + entry-point group) and start-up checks.

Skeleton: the domains issue completes discovery through entry points and the
start-up validation. The public functions below are the API the core uses.
"""

from __future__ import annotations

from importlib import import_module

from domains.base import DomainPlugin

_PLUGINS: dict[str, DomainPlugin] | None = None


class PluginError(Exception):
    """A plugin is missing or malformed."""


def _load(paths: list[str]) -> dict[str, DomainPlugin]:
    plugins: dict[str, DomainPlugin] = {}
    for path in paths:
        module, _, name = path.rpartition(".")
        cls = getattr(import_module(module), name)
        plugins[cls.id] = cls()
    return plugins


def plugins_load(*, paths: list[str]) -> dict[str, DomainPlugin]:
    """Import, check and register the plugins; called from AppConfig.ready()."""
    global _PLUGINS
    _PLUGINS = _load(paths)
    return _PLUGINS


def plugin_list() -> list[DomainPlugin]:
    if _PLUGINS is None:
        raise PluginError("domain plugins are not loaded yet")
    return list(_PLUGINS.values())


def plugin_get(domain_id: str) -> DomainPlugin:
    """The plugin for a domain id; PluginError if none is registered."""
    if _PLUGINS is None:
        raise PluginError("domain plugins are not loaded yet")
    try:
        return _PLUGINS[domain_id]
    except KeyError:
        raise PluginError(f"no domain plugin with id {domain_id!r}; known: {sorted(_PLUGINS)}") from None
