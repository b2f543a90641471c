"""The console form of a tenant's config, generated from the plugin's config spec."""

from __future__ import annotations

from typing import Any

from django import forms

from domains.base import ConfigParam, DomainPlugin
from platform_core.plugins.models import TenantConfig
from platform_core.plugins.selectors import config_values_tolerant


def config_formfield(param: ConfigParam) -> forms.Field:
    """One typed, bounded form field for a config parameter."""
    common: dict[str, Any] = {
        "label": param.label or param.name.replace("_", " ").capitalize(),
        "help_text": param.help,
        "initial": param.default,
    }
    if param.type == "int":
        return forms.IntegerField(min_value=param.min, max_value=param.max, **common)
    if param.type == "float":
        return forms.FloatField(min_value=param.min, max_value=param.max, **common)
    if param.type == "bool":
        return forms.BooleanField(required=False, **common)
    if param.type == "choice":
        return forms.TypedChoiceField(
            choices=[(c, str(c)) for c in param.choices],
            coerce=lambda v, _c=param.choices: next((c for c in _c if str(c) == v), v),
            **common,
        )
    return forms.CharField(required=False, strip=True, **common)


class TenantConfigForm(forms.ModelForm):
    """Base of the generated forms; the subclass adds one field per parameter."""

    plugin: DomainPlugin

    class Meta:
        model = TenantConfig
        fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            current = config_values_tolerant(plugin=self.plugin, raw=self.instance.values)
            for name, value in current.items():
                if name in self.fields:
                    self.fields[name].initial = value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The plugin's own check is the source of truth; the form fields only mirror it.
        _, errors = self.plugin.config_clean(self.config_values())
        for name, rules in errors.items():
            self.add_error(name if name in self.fields else None, "; ".join(rules))
        return data

    def config_values(self) -> dict[str, Any]:
        return {
            p.name: self.cleaned_data.get(p.name) for p in self.plugin.config if p.name in self.cleaned_data
        }


def config_form_class(plugin: DomainPlugin) -> type[TenantConfigForm]:
    """A ModelForm class for ``plugin``'s config spec."""
    attrs: dict[str, Any] = {p.name: config_formfield(p) for p in plugin.config}
    attrs["plugin"] = plugin
    return type(f"{type(plugin).__name__}ConfigForm", (TenantConfigForm,), attrs)


class TenantConfigAddForm(forms.ModelForm):
    """Adding a config row: pick the tenant; values start at the plugin's defaults."""

    class Meta:
        model = TenantConfig
        fields = ("tenant",)
