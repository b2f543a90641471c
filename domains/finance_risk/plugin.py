"""Placeholder until the domains issue fills it in."""

from domains.base import DomainPlugin, EventType


class FinanceRiskPlugin(DomainPlugin):
    id = "finance_risk"
    label = "finance_risk"
    event_types = (EventType(name="view", weight=1.0), EventType(name="purchase", weight=3.0))
