"""Placeholder until the domains issue fills it in."""

from domains.base import DomainPlugin, EventType


class EcommercePlugin(DomainPlugin):
    id = "ecommerce"
    label = "ecommerce"
    event_types = (EventType(name="view", weight=1.0), EventType(name="purchase", weight=3.0))
