"""Discovery (settings + entry points) and start-up checks of domain plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from domains import registry
from domains.base import ConfigParam, DomainPlugin, EventType, Field
from domains.registry import PluginError, plugin_check, plugins_load

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = [
    "domains.ecommerce.plugin.EcommercePlugin",
    "domains.social.plugin.SocialPlugin",
    "domains.education.plugin.EducationPlugin",
    "domains.finance_risk.plugin.FinanceRiskPlugin",
    "domains.healthcare.plugin.HealthcarePlugin",
    "domains.transport.plugin.TransportPlugin",
]


@pytest.fixture(autouse=True)
def _restore_registry():  # type: ignore[no-untyped-def]
    saved, sources = registry._PLUGINS, dict(registry._SOURCES)
    yield
    registry._PLUGINS = saved
    registry._SOURCES.clear()
    registry._SOURCES.update(sources)


class Good(DomainPlugin):
    id = "good"
    label = "Good"
    item_schema = (Field("size", "int", min=1, max=10),)
    event_types = (EventType("view", 1.0),)
    config = (ConfigParam("boost", "float", 0.5, min=0, max=1),)


def make(**attrs: object) -> type[DomainPlugin]:
    return type("Bad", (Good,), attrs)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"id": "Bad Id"}, "id: 'Bad Id' must match"),
        ({"label": ""}, "label: must be a non-empty string"),
        (
            {"config": (ConfigParam("boost", "float", 1.5, min=0, max=1),)},
            "config.boost.default: must be ≤ 1",
        ),
        (
            {"config": (ConfigParam("mode", "choice", "x"),)},
            "config.mode.choices: a choice parameter needs choices",
        ),
        (
            {"event_types": (EventType("view", -1.0),)},
            "event_types.view.weight: -1.0 must be a finite number ≥ 0",
        ),
        (
            {"event_types": (EventType("view", 1.0), EventType("view", 2.0))},
            "event_types.view: declared more than once",
        ),
        (
            {"event_types": (EventType("fraud", 0.0, is_label=True),)},
            "at least one non-label event type needs a weight > 0",
        ),
        (
            {"item_schema": (Field("size", "int", min=10, max=1),)},
            "item_schema.size.min: 10 is greater than max 1",
        ),
        (
            {"item_schema": (Field("kind", "choice"),)},
            "item_schema.kind.choices: a choice field needs choices",
        ),
        ({"user_schema": (Field("age", "decimal"),)}, "user_schema.age.type: 'decimal' is not one of"),
        ({"item_schema": (Field("name", "string", min=1),)}, "item_schema.name.min/max: bounds only apply"),
        (
            {"event_types": (EventType("buy", 1.0, (Field("amount", "float", min=5, max=1),)),)},
            "event_types.buy.context.amount.min: 5 is greater than max 1",
        ),
    ],
)
def test_a_malformed_plugin_is_refused_naming_plugin_and_field(attrs: dict, message: str) -> None:
    with pytest.raises(PluginError) as err:
        plugin_check(make(**attrs), "test")
    assert "domain plugin" in str(err.value)
    assert message in str(err.value)


def test_not_a_plugin_and_import_errors_are_named() -> None:
    with pytest.raises(PluginError, match="is not a subclass of domains.base.DomainPlugin"):
        plugin_check(dict, "settings path 'x'")
    with pytest.raises(PluginError, match="'domains.nowhere.Plugin': cannot be imported"):
        plugins_load(paths=["domains.nowhere.Plugin"])


def test_a_duplicate_id_is_refused() -> None:
    with pytest.raises(PluginError, match=r"domain plugin 'ecommerce' .*id: already used by settings path"):
        plugins_load(paths=[BUILTIN[0], "tests.domains.test_registry.Copycat"])


class Copycat(Good):
    id = "ecommerce"


def test_the_settings_list_loads_the_six_domains() -> None:
    loaded = plugins_load(paths=BUILTIN)
    assert list(loaded) == ["ecommerce", "social", "education", "finance_risk", "healthcare", "transport"]
    assert registry.plugin_source("social") == "settings path 'domains.social.plugin.SocialPlugin'"


def _install(site: Path, dist: str, module: str, source: str, entry: str) -> None:
    """A pip-installed package, as importlib.metadata sees it: a module plus its dist-info."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[platform.domains]\n{entry}\n")


THIRD_PARTY = """
    from domains.base import DomainPlugin, EventType, Field

    class LibraryPlugin(DomainPlugin):
        id = "library"
        label = "Library loans"
        item_schema = (Field("isbn", "string", required=True),)
        event_types = (EventType("loan", 2.0), EventType("reserve", 1.0))
"""
MALFORMED = """
    from domains.base import ConfigParam, DomainPlugin, EventType

    class BrokenPlugin(DomainPlugin):
        id = "broken"
        label = "Broken"
        event_types = (EventType("view", 1.0),)
        config = (ConfigParam("radius_km", "float", 50.0, min=0, max=10),)
"""


def test_a_third_party_plugin_is_discovered_through_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(
        tmp_path, "library_domain", "library_domain", THIRD_PARTY, "library = library_domain:LibraryPlugin"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = plugins_load(paths=BUILTIN, entry_point_group="platform.domains")
    assert "library" in loaded and loaded["library"].event_weights() == {"loan": 2.0, "reserve": 1.0}
    assert registry.plugin_source("library").startswith("entry point 'library'")
    # And through the app's start-up hook, which reads the settings.
    with override_settings(DOMAIN_PLUGINS=BUILTIN[:1]):
        apps.get_app_config("plugins").ready()
    assert {p.id for p in registry.plugin_list()} == {"ecommerce", "library"}


def test_a_malformed_entry_point_plugin_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(tmp_path, "broken_domain", "broken_domain", MALFORMED, "broken = broken_domain:BrokenPlugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImproperlyConfigured) as err:
        apps.get_app_config("plugins").ready()
    assert "domain plugin 'broken'" in str(err.value)
    assert "config.radius_km.default: must be ≤ 10" in str(err.value)


def test_manage_py_refuses_to_start_with_a_bad_plugin(tmp_path: Path) -> None:
    (tmp_path / "bad_plugin.py").write_text(textwrap.dedent(MALFORMED))
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "VAR_DIR": str(tmp_path / "var"),
        "DOMAIN_PLUGINS": "domains.ecommerce.plugin.EcommercePlugin,bad_plugin.BrokenPlugin",
    }
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr
    assert (
        "domain plugin 'broken' (settings path 'bad_plugin.BrokenPlugin'): config.radius_km.default: must be ≤ 10"
        in proc.stderr
    )
