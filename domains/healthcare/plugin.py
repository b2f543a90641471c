"""Placeholder until the domains issue fills it in."""

from domains.base import DomainPlugin, EventType


class HealthcarePlugin(DomainPlugin):
    id = "healthcare"
    label = "healthcare"
    event_types = (EventType(name="view", weight=1.0), EventType(name="purchase", weight=3.0))
