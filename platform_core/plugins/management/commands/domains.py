"""``manage.py domains``: the registered domain plugins, their event types and config."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from domains.base import DomainPlugin, Field
from domains.registry import plugin_list, plugin_source


def _field(f: Field) -> str:
    bits = [f.type]
    if f.required:
        bits.append("required")
    if f.choices:
        bits.append("one of " + "/".join(map(str, f.choices)))
    if f.min is not None or f.max is not None:
        bits.append(f"[{'' if f.min is None else f.min}..{'' if f.max is None else f.max}]")
    if f.sensitive:
        bits.append("SENSITIVE")
    return f"{f.name} ({', '.join(bits)})"


def plugin_describe(plugin: DomainPlugin) -> dict[str, Any]:
    """A JSON-able description of a plugin (also used by the docs)."""
    return {
        "id": plugin.id,
        "label": plugin.label,
        "source": plugin_source(plugin.id),
        "description": plugin.description,
        "item_schema": [_field(f) for f in plugin.item_schema],
        "user_schema": [_field(f) for f in plugin.user_schema],
        "event_types": [
            {
                "name": e.name,
                "weight": e.weight,
                "is_label": e.is_label,
                "requires_item": e.requires_item,
                "context": [_field(f) for f in e.context],
            }
            for e in plugin.event_types
        ],
        "config": [
            {
                "name": p.name,
                "type": p.type,
                "default": p.default,
                "min": p.min,
                "max": p.max,
                "choices": list(p.choices),
                "help": p.help,
            }
            for p in plugin.config
        ],
        "risk_score": plugin.has_risk_score(),
        "datasets": sorted(plugin.dataset_adapters()),
    }


class Command(BaseCommand):
    help = "List the domain plugins with their event types and config."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        described = [plugin_describe(p) for p in plugin_list()]
        if options["json"]:
            self.stdout.write(json.dumps(described, indent=2, default=str))
            return
        for d in described:
            self.stdout.write(self.style.MIGRATE_HEADING(f"{d['id']} — {d['label']}"))
            self.stdout.write(f"  from: {d['source']}")
            self.stdout.write(f"  items: {', '.join(d['item_schema'])}")
            self.stdout.write(f"  users: {', '.join(d['user_schema']) or '—'}")
            self.stdout.write("  event types:")
            for e in d["event_types"]:
                flags = " [label]" if e["is_label"] else ""
                flags += "" if e["requires_item"] else " [no item]"
                ctx = "; ".join(e["context"]) or "—"
                self.stdout.write(f"    {e['name']:<14} weight {e['weight']:<5}{flags}  context: {ctx}")
            self.stdout.write("  config:")
            for p in d["config"]:
                bounds = (
                    f" [{'' if p['min'] is None else p['min']}..{'' if p['max'] is None else p['max']}]"
                    if p["min"] is not None or p["max"] is not None
                    else ""
                )
                self.stdout.write(f"    {p['name']:<28} {p['type']:<6} default {p['default']!r}{bounds}")
            extras = []
            if d["risk_score"]:
                extras.append("risk score")
            if d["datasets"]:
                extras.append("data sets: " + ", ".join(d["datasets"]))
            if extras:
                self.stdout.write("  " + "; ".join(extras))
