"""Discovery of domain plugins (settings list + entry-point group) and start-up checks.

Plain Python: :func:`plugins_load` raises :class:`PluginError` naming the
plugin and the field; ``platform_core.plugins.apps`` turns that into Django's
``ImproperlyConfigured`` so a bad plugin stops start-up.

A pip-installed package adds a domain by declaring, in its packaging metadata::

    [project.entry-points."platform.domains"]
    retail_plus = "retail_plus.plugin:RetailPlusPlugin"
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from importlib import import_module, metadata
from typing import Any

from domains.base import FIELD_TYPES, ConfigParam, DomainPlugin, EventType, Field

_PLUGINS: dict[str, DomainPlugin] | None = None
_SOURCES: dict[str, str] = {}

ID_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CONFIG_TYPES = ("int", "float", "bool", "choice", "string")


class PluginError(Exception):
    """A plugin is missing or malformed."""


# --------------------------------------------------------------------------- discovery
def _import_path(path: str) -> Any:
    module, _, name = path.replace(":", ".").rpartition(".")
    if not module:
        raise PluginError(f"domain plugin {path!r}: expected 'package.module.ClassName'")
    try:
        return getattr(import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"domain plugin {path!r}: cannot be imported ({exc})") from exc


def _entry_point_classes(group: str) -> list[tuple[str, Any]]:
    found = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        source = f"entry point {ep.name!r} ({ep.value}) in group {group!r}"
        try:
            found.append((source, ep.load()))
        except Exception as exc:  # a broken third-party package must name itself
            raise PluginError(f"domain plugin {source}: cannot be loaded ({exc})") from exc
    return found


def plugins_discover(*, paths: Iterable[str], entry_point_group: str | None = None) -> list[tuple[str, Any]]:
    """``(source, class)`` for every plugin in ``paths`` then in the entry-point group."""
    found = [(f"settings path {p!r}", _import_path(p)) for p in paths]
    if entry_point_group:
        seen = {cls for _, cls in found}
        found += [(src, cls) for src, cls in _entry_point_classes(entry_point_group) if cls not in seen]
    return found


# --------------------------------------------------------------------------- checks
def _check_field(f: Any, where: str) -> list[str]:
    if not isinstance(f, Field):
        return [f"{where}: is {type(f).__name__}, expected domains.base.Field"]
    out = []
    at = f"{where}.{f.name}" if isinstance(f.name, str) else where
    if not isinstance(f.name, str) or not NAME_RE.match(f.name):
        out.append(f"{where}: field name {f.name!r} is not an identifier")
    if f.type not in FIELD_TYPES:
        out.append(f"{at}.type: {f.type!r} is not one of {list(FIELD_TYPES)}")
    if f.type == "choice" and not f.choices:
        out.append(f"{at}.choices: a choice field needs choices")
    if (f.min is not None or f.max is not None) and f.type not in ("int", "float"):
        out.append(f"{at}.min/max: bounds only apply to int and float fields")
    for bound in ("min", "max"):
        value = getattr(f, bound)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        ):
            out.append(f"{at}.{bound}: {value!r} is not a finite number")
    if isinstance(f.min, (int, float)) and isinstance(f.max, (int, float)) and f.min > f.max:
        out.append(f"{at}.min: {f.min} is greater than max {f.max}")
    if f.max_length is not None and (not isinstance(f.max_length, int) or f.max_length < 1):
        out.append(f"{at}.max_length: must be a positive integer")
    return out


def _check_schema(schema: Any, where: str) -> list[str]:
    if not isinstance(schema, (tuple, list)):
        return [f"{where}: must be a tuple of Field"]
    out: list[str] = []
    names = [getattr(f, "name", None) for f in schema]
    for name in {n for n in names if names.count(n) > 1}:
        out.append(f"{where}.{name}: declared more than once")
    for f in schema:
        out += _check_field(f, where)
    return out


def _check_event_type(e: Any, where: str) -> list[str]:
    if not isinstance(e, EventType):
        return [f"{where}: is {type(e).__name__}, expected domains.base.EventType"]
    at = f"{where}.{e.name}"
    out = []
    if not isinstance(e.name, str) or not NAME_RE.match(e.name):
        out.append(f"{where}: event type name {e.name!r} is not an identifier")
    if (
        isinstance(e.weight, bool)
        or not isinstance(e.weight, (int, float))
        or not math.isfinite(e.weight)
        or e.weight < 0
    ):
        out.append(f"{at}.weight: {e.weight!r} must be a finite number ≥ 0")
    out += _check_schema(e.context, f"{at}.context")
    return out


def _check_config(params: Any, plugin_cls: type[DomainPlugin]) -> list[str]:
    if not isinstance(params, (tuple, list)):
        return ["config: must be a tuple of ConfigParam"]
    out: list[str] = []
    names = [getattr(p, "name", None) for p in params]
    for name in {n for n in names if names.count(n) > 1}:
        out.append(f"config.{name}: declared more than once")
    for p in params:
        if not isinstance(p, ConfigParam):
            out.append(f"config: {p!r} is not a domains.base.ConfigParam")
            continue
        if p.type not in CONFIG_TYPES:
            out.append(f"config.{p.name}.type: {p.type!r} is not one of {list(CONFIG_TYPES)}")
        elif p.type == "choice" and not p.choices:
            out.append(f"config.{p.name}.choices: a choice parameter needs choices")
        elif p.min is not None and p.max is not None and p.min > p.max:
            out.append(f"config.{p.name}.min: {p.min} is greater than max {p.max}")
    if out:
        return out
    try:
        _, errors = plugin_cls.config_clean({})
    except Exception as exc:
        return [f"config: defaults cannot be checked ({exc})"]
    return [f"config.{name}.default: {'; '.join(msgs)}" for name, msgs in errors.items()]


def plugin_check(cls: Any, source: str = "") -> DomainPlugin:
    """Check one plugin class and return an instance; PluginError naming plugin and field."""
    label = source or repr(cls)
    if not isinstance(cls, type) or not issubclass(cls, DomainPlugin):
        raise PluginError(f"domain plugin {label}: {cls!r} is not a subclass of domains.base.DomainPlugin")
    pid = getattr(cls, "id", "")
    name = f"domain plugin {pid!r} ({label})" if pid else f"domain plugin {label}"
    problems: list[str] = []
    if not isinstance(pid, str) or not ID_RE.match(pid):
        problems.append(f"id: {pid!r} must match {ID_RE.pattern}")
    if not isinstance(cls.label, str) or not cls.label.strip():
        problems.append("label: must be a non-empty string")
    problems += _check_schema(cls.item_schema, "item_schema")
    problems += _check_schema(cls.user_schema, "user_schema")
    if not isinstance(cls.event_types, (tuple, list)) or not cls.event_types:
        problems.append("event_types: declare at least one EventType")
    else:
        names = [getattr(e, "name", None) for e in cls.event_types]
        for dup in {n for n in names if names.count(n) > 1}:
            problems.append(f"event_types.{dup}: declared more than once")
        for e in cls.event_types:
            problems += _check_event_type(e, "event_types")
        if all(getattr(e, "is_label", False) or getattr(e, "weight", 0) == 0 for e in cls.event_types):
            problems.append("event_types: at least one non-label event type needs a weight > 0")
    problems += _check_config(cls.config, cls)
    for hook in ("profile_features", "rerank", "risk_score", "sample_data"):
        if not callable(getattr(cls, hook, None)):
            problems.append(f"{hook}: must be a method")
    if problems:
        raise PluginError(f"{name}: " + "; ".join(problems))
    try:
        return cls()
    except Exception as exc:
        raise PluginError(f"{name}: cannot be instantiated ({exc})") from exc


def plugins_load(*, paths: list[str], entry_point_group: str | None = None) -> dict[str, DomainPlugin]:
    """Import, check and register the plugins; called from AppConfig.ready().

    Args:
        paths: dotted class paths from settings (``DOMAIN_PLUGINS``).
        entry_point_group: also load every class published in this
            entry-point group (``DOMAIN_PLUGIN_ENTRY_POINT_GROUP``).

    Raises:
        PluginError: a plugin can't be imported, is malformed, or reuses an id.
    """
    global _PLUGINS
    plugins: dict[str, DomainPlugin] = {}
    sources: dict[str, str] = {}
    for source, cls in plugins_discover(paths=paths, entry_point_group=entry_point_group):
        plugin = plugin_check(cls, source)
        if plugin.id in plugins:
            raise PluginError(
                f"domain plugin {plugin.id!r} ({source}): id: already used by {sources[plugin.id]}"
            )
        plugins[plugin.id] = plugin
        sources[plugin.id] = source
    _PLUGINS = plugins
    _SOURCES.clear()
    _SOURCES.update(sources)
    return plugins


def plugin_source(domain_id: str) -> str:
    """Where a registered plugin came from (settings path or entry point)."""
    return _SOURCES.get(domain_id, "")


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
