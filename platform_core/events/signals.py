"""Signals of the events app."""

from django.dispatch import Signal

#: Sent after an ingestion batch committed new events: ``tenant_id``, ``user_pks`` (keyword arguments).
events_committed = Signal()
