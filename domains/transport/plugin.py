"""Placeholder until the domains issue fills it in."""

from domains.base import DomainPlugin, EventType


class TransportPlugin(DomainPlugin):
    id = "transport"
    label = "transport"
    event_types = (EventType(name="view", weight=1.0), EventType(name="purchase", weight=3.0))
